import ArgumentParser
import FlowmeterApp
import Foundation
import Logging

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Everything on this machine: embedded Kafka-protocol broker, LearnFlow simulator, analyzer, HTTP.",
        discussion: """
            Needs no Kafka and no configuration. Starts librdkafka's mock cluster in-process on loopback TCP with \
            the LearnFlow topics and their dead-letter topics (6 and 2 partitions), the simulator (as \
            `flowmeter simulate`) and the analyzer (the same service group as `flowmeter run`, over TCP), and shows \
            a live summary: in place on a terminal, as plain lines otherwise. With --postgres (or \
            FLOWMETER_POSTGRES_URL) it migrates the schema and flushes rollups there. Exits 0 on SIGTERM or SIGINT \
            (or after --duration) once everything has drained.
            """
    )

    @Option(help: "PostgreSQL for rollups (libpq URL or key=value). Env: FLOWMETER_POSTGRES_URL. Default: none.")
    var postgres: String?

    @Option(help: "HTTP listen address host:port. Env: FLOWMETER_HTTP_ADDR. Default: 127.0.0.1:9464.")
    var http: String?

    @Option(help: "Rollup flush period. Env: FLOWMETER_FLUSH_INTERVAL. Default: 5s.")
    var flushInterval: String?

    @Option(help: "Lag polling period. Env: FLOWMETER_LAG_INTERVAL. Default: 2s.")
    var lagInterval: String?

    @Option(help: "How long to run, e.g. 30s. Default: until SIGTERM or SIGINT.")
    var duration: String?

    @OptionGroup var simulation: SimulationOptions

    func run() async throws {
        let settings = try simulation.settings(duration: duration, reportInterval: nil)
        let relevant = [ConfigKey.postgres, .http, .flushInterval, .lagInterval].map(\.environmentVariable)
        let resolver = ConfigurationResolver(
            environment: ProcessInfo.processInfo.environment.filter { relevant.contains($0.key) }
        )
        var values: [ConfigKey: String] = [:]
        values[.postgres] = postgres
        values[.http] = http
        values[.flushInterval] = flushInterval
        values[.lagInterval] = lagInterval
        let configuration: FlowmeterConfiguration
        do {
            configuration = try resolver.resolve(CommandLineValues(values), for: .demo)
        } catch {
            for problem in error.errors { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
            throw ExitCode(2)
        }
        var logger = makeLogger(label: "flowmeter.demo")
        if ProcessInfo.processInfo.environment["FLOWMETER_LOG_LEVEL"] == nil {
            // The terminal belongs to the summary (which shows PostgreSQL's and Kafka's state); errors still show.
            logger.logLevel = .error
        }
        let demo = DemoSettings(
            simulation: settings,
            postgresURL: configuration.postgresURL,
            httpAddress: configuration.source(of: .http) == .default
                ? HTTPAddress(host: "127.0.0.1", port: 9464) : configuration.httpAddress,
            flushInterval: configuration.flushInterval,
            lagInterval: configuration.source(of: .lagInterval) == .default ? .seconds(2) : configuration.lagInterval,
            duration: settings.duration
        )
        do {
            try await Demo.run(settings: demo, logger: logger, interactive: isatty(STDOUT_FILENO) != 0) { text in
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
