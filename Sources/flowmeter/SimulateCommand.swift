import ArgumentParser
import FlowmeterApp
import Foundation

/// The simulator's own options, shared by `simulate` and `demo`.
struct SimulationOptions: ParsableArguments {
    @Option(help: "Concurrent learners (default 1000).")
    var learners: Int?

    @Option(help: "Records per second overall: requests, responses and dead-letter copies (default 200).")
    var rate: String?

    @Option(help: "Seed: the same seed and options give the same records (ids, types, latencies). Default: random.")
    var seed: String?

    @Option(help: "Fraction of deliveries a subscriber fails; Dapr dead-letters them (default 0.01).")
    var failureRate: String?

    @Option(
        name: .customLong("slow-group"),
        help: ArgumentHelp(
            "A subscriber group that processes at most RATE deliveries/s (default: half of its input); repeatable.",
            valueName: "NAME[:RATE]"
        )
    )
    var slowGroups: [String] = []

    @Option(
        name: .customLong("stall-group"),
        help: ArgumentHelp(
            "A subscriber group that stops processing and committing AFTER the start (default 20s); repeatable.",
            valueName: "NAME[:AFTER]"
        )
    )
    var stallGroups: [String] = []

    func settings(duration: String?, reportInterval: String?) throws -> SimulationSettings {
        do {
            return try SimulationSettings.parse(
                learners: learners,
                rate: rate,
                duration: duration,
                seed: seed,
                failureRate: failureRate,
                slowGroups: slowGroups,
                stallGroups: stallGroups,
                reportInterval: reportInterval
            )
        } catch {
            for problem in error.problems { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
            throw ExitCode(2)
        }
    }
}

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Produce realistic LearnFlow Dapr traffic into any Kafka, with simulated subscriber groups.",
        discussion: """
            Learners ask for lessons and submit exercises; course-agent, exercise-agent and progress-agent answer \
            with the request's trace-id after per-service latencies; failed deliveries are dead-lettered to \
            <topic>.dlq.<subscriber> with Dapr's headers. The subscriber groups course-agent, frontend, \
            exercise-agent and progress-agent consume and commit as Dapr does. Prints a line every \
            --report-interval; on SIGTERM or SIGINT (or after --duration) stops producing, flushes and exits 0.
            """
    )

    @Option(
        help: "Kafka bootstrap servers, comma-separated host:port. Env: FLOWMETER_BROKERS. Default: localhost:9092."
    )
    var brokers: String?

    @Option(
        name: .customLong("kafka-property"),
        help: ArgumentHelp(
            "A librdkafka property k=v (TLS, SASL, ...); repeatable. Env: FLOWMETER_KAFKA_PROPERTIES (k=v;k=v).",
            valueName: "k=v"
        )
    )
    var kafkaProperties: [String] = []

    @OptionGroup var simulation: SimulationOptions

    @Option(help: "How long to run, e.g. 30s or 10m. Default: until SIGTERM or SIGINT.")
    var duration: String?

    @Option(help: "How often to print what was produced (default 5s).")
    var reportInterval: String?

    func run() async throws {
        // Catch SIGTERM/SIGINT from the start: the simulator's own handler picks up any that arrive before it runs.
        _ = TerminationSignals(exitOnStdinClose: false)
        let settings = try simulation.settings(duration: duration, reportInterval: reportInterval)
        // Only the Kafka settings apply: other FLOWMETER_* variables are not this command's business.
        let relevant = [ConfigKey.brokers, .kafkaProperty].map(\.environmentVariable)
        let resolver = ConfigurationResolver(
            environment: ProcessInfo.processInfo.environment.filter { relevant.contains($0.key) },
            kafkaPropertyValidator: librdkafkaPropertyValidator
        )
        let configuration: FlowmeterConfiguration
        do {
            var values: [ConfigKey: String] = [:]
            values[.brokers] = brokers
            configuration = try resolver.resolve(
                CommandLineValues(values, kafkaProperties: kafkaProperties),
                for: .simulate
            )
        } catch {
            for problem in error.errors { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
            throw ExitCode(2)
        }
        let logger = makeLogger(label: "flowmeter.simulate")
        let simulator = Simulator(
            settings: settings,
            bootstrapServers: configuration.bootstrapServers,
            kafkaProperties: configuration.kafkaProperties.map { (key: $0.key, value: $0.value) },
            logger: logger
        )
        let printLine: @Sendable (String) -> Void = { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        printLine("simulate: \(simulator.summary) -> \(configuration.bootstrapServers)")
        let result: SimulationSnapshot
        do {
            result = try await simulator.run(printLine: printLine)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if result.producedTotal > 0, result.delivered == 0 {
            let message =
                "error: \(configuration.bootstrapServers) acknowledged none of the records (see the log above)\n"
            FileHandle.standardError.write(Data(message.utf8))
            throw ExitCode(1)
        }
    }
}
