import ArgumentParser
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
}
