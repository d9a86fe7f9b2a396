import ArgumentParser
import FlowmeterApp
import FlowmeterCore

@main
struct Flowmeter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowmeter",
        abstract: "Analyze LearnFlow's Dapr event streams on Kafka: latency, dead letters, consumer lag.",
        version: flowmeterVersion,
        subcommands: [
            RunCommand.self, BackfillCommand.self, QueryCommand.self, MigrateCommand.self, CheckCommand.self,
            DevKafkaCommand.self, SimulateCommand.self, DemoCommand.self,
        ]
    )

    /// `run` catches SIGTERM and SIGINT from its first instant (before arguments are parsed), so that a
    /// signal sent while the daemon starts drains it instead of killing it.
    static func main() async {
        if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "run" {
            RunCommand.earlyTermination = TerminationSignals(exitOnStdinClose: false)
        }
        await main(nil)
    }
}
