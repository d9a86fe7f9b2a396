import FlowmeterCore
import Foundation
import Kafka
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The settings of `flowmeter demo`.
public struct DemoSettings: Sendable {
    /// The simulator's options.
    public var simulation: SimulationSettings
    /// PostgreSQL for rollups, or `nil` to skip them.
    public var postgresURL: String?
    /// The HTTP listen address (default 127.0.0.1:9464).
    public var httpAddress: HTTPAddress
    /// The rollup flush period.
    public var flushInterval: Duration
    /// The lag polling period.
    public var lagInterval: Duration
    /// How long to run; `nil`: until SIGTERM or SIGINT.
    public var duration: Duration?
    /// Partitions of each LearnFlow topic (dead-letter topics get 2).
    public var partitions: Int32 = 6

    /// Creates settings.
    public init(
        simulation: SimulationSettings,
        postgresURL: String?,
        httpAddress: HTTPAddress,
        flushInterval: Duration,
        lagInterval: Duration,
        duration: Duration?
    ) {
        self.simulation = simulation
        self.postgresURL = postgresURL
        self.httpAddress = httpAddress
        self.flushInterval = flushInterval
        self.lagInterval = lagInterval
        self.duration = duration
    }
}

/// A problem that stops `flowmeter demo`, worded for the user.
public struct DemoError: Error, CustomStringConvertible {
    public let description: String
}

/// `flowmeter demo`: everything on this machine. librdkafka's mock cluster in-process on loopback TCP with the
/// LearnFlow topics, the simulator writing to it and its subscriber groups reading from it, and the analyzer,
/// the very ``Runner`` of `flowmeter run` talking to the broker over TCP like any client, with a live summary
/// on the terminal.
public enum Demo {
    /// Runs the demo until `settings.duration` has passed or SIGTERM/SIGINT arrives.
    ///
    /// - Parameters:
    ///   - interactive: Whether standard output is a terminal: the summary then refreshes in place (ANSI)
    ///     every second; otherwise it is printed as plain lines every 5 seconds.
    ///   - write: Writes text to standard output.
    /// - Throws: ``DemoError`` (or the error of a failed service) when the demo cannot run.
    public static func run(
        settings: DemoSettings,
        logger: Logger,
        interactive: Bool,
        write: @escaping @Sendable (String) -> Void
    ) async throws {
        // Catch SIGTERM/SIGINT from now on; the runner picks up any that arrive while the broker starts.
        _ = TerminationSignals(exitOnStdinClose: false)
        let analyzers: AnalyzerSet
        do {
            analyzers = try AnalyzerLoader.load(.builtIn).set
        } catch {
            throw DemoError(description: "the built-in LearnFlow analyzers do not load: \(error)")
        }
        let cluster: MockKafkaCluster
        do {
            cluster = try MockKafkaCluster(brokerCount: 1, logger: logger)
            for topic in LearnFlowCatalog.topics {
                try cluster.createTopic(topic, partitions: settings.partitions)
            }
            for deadLetter in LearnFlowCatalog.deadLetterTopics {
                try cluster.createTopic(deadLetter.topic, partitions: 2)
            }
        } catch {
            throw DemoError(description: "cannot start the embedded Kafka-protocol broker: \(error)")
        }
        defer { cluster.close() }
        let bootstrap = cluster.bootstrapServers
        // A group of its own per run: offsets and waiting flow requests that an earlier demo stored in PostgreSQL
        // belong to a broker that is gone and must not be applied to this one.
        let group = "flowmeter-demo-\(Int64(Date().timeIntervalSince1970))"
        // Its flow repartition topic, created here: the mock cluster does not answer CreateTopics.
        do {
            try cluster.createTopic(FlowRepartition.topicName(group: group), partitions: settings.partitions)
        } catch {
            throw DemoError(description: "cannot create the flow repartition topic: \(error)")
        }

        var postgresLine = "skipped: no --postgres or FLOWMETER_POSTGRES_URL; live metrics only, no rollups for "
        postgresLine += "`flowmeter query`"
        if let url = settings.postgresURL {
            do {
                let result = try SchemaMigrator.migrate(url: url, logger: logger)
                postgresLine =
                    "\(Redaction.redactPostgres(url)): \(result.description); rollups every "
                    + DurationSyntax.format(settings.flushInterval)
            } catch {
                throw DemoError(description: "PostgreSQL: cannot migrate the schema: \(error)")
            }
        }
        let simulator = Simulator(settings: settings.simulation, bootstrapServers: bootstrap, logger: logger)
        let base = "http://\(settings.httpAddress)"
        write(
            """
            flowmeter demo: embedded Kafka-protocol broker, LearnFlow simulator and analyzer on this machine
            kafka      \(bootstrap)   (try: kcat -L -b \(bootstrap))
            metrics    \(base)/metrics
            health     \(base)/healthz   \(base)/readyz
            postgres   \(postgresLine)
            analyzer   group \(group), from the earliest offsets, lag every \(DurationSyntax.format(settings.lagInterval))
            simulator  \(simulator.summary)
            stop       Ctrl-C (SIGINT) or SIGTERM\(settings.duration.map { "; stops by itself after \(DurationSyntax.format($0))" } ?? "")


            """
        )
        let configuration = FlowmeterConfiguration(
            brokers: [bootstrap],
            postgresURL: settings.postgresURL,
            analyzers: .builtIn,
            httpAddress: settings.httpAddress,
            group: group,
            from: .earliest,
            flushInterval: settings.flushInterval,
            lagInterval: settings.lagInterval,
            retention: .seconds(30 * 86_400),
            // The mock broker does not wake a waiting fetch when records arrive: keep fetch waits short.
            kafkaProperties: [KafkaProperty(key: "fetch.wait.max.ms", value: "50", source: .default)]
        )
        let groups =
            analyzers.groups.compactMap { group -> String? in
                if case .name(let name) = group.group { return name }
                return nil
            } + [group]
        let context = Mutex<RunContext?>(nil)
        do {
            try await runAnalyzer(
                configuration: configuration,
                analyzers: analyzers,
                simulator: simulator,
                groups: groups,
                settings: settings,
                logger: logger,
                interactive: interactive,
                context: context,
                write: write
            )
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw DemoError(
                description: "HTTP: \(settings.httpAddress) is already in use; pass --http with another address"
            )
        }
        let snapshot = simulator.snapshot
        var line =
            "demo stopped: produced \(snapshot.producedTotal) records (\(snapshot.deadLetters) dead-letter copies); "
        if settings.postgresURL == nil {
            line += "no rollups (no PostgreSQL)"
        } else if let metrics = context.withLock({ $0 })?.metricsText() {
            // The intake has drained: what its last flush left behind.
            let samples = MetricSamples(parsing: metrics)
            let unflushed = Int(samples.sum("flowmeter_rollup_unflushed_records"))
            let rows = Int(samples.sum("flowmeter_rollup_rows_written_total"))
            line +=
                unflushed == 0
                ? "all rollups flushed to PostgreSQL (\(rows) rows written)"
                : "\(unflushed) analyzed records NOT flushed to PostgreSQL (FLOWMETER_LOG_LEVEL=warning shows why)"
        }
        write(line + "\n")
    }

    /// The analyzer (`flowmeter run`'s service group) with the simulator and the console as companions.
    private static func runAnalyzer(
        configuration: FlowmeterConfiguration,
        analyzers: AnalyzerSet,
        simulator: Simulator,
        groups: [String],
        settings: DemoSettings,
        logger: Logger,
        interactive: Bool,
        context box: borrowing Mutex<RunContext?>,
        write: @escaping @Sendable (String) -> Void
    ) async throws {
        try await Runner.run(
            configuration: configuration,
            analyzers: analyzers,
            logger: logger,
            companions: { context in
                box.withLock { $0 = context }
                var services = try simulator.services().map {
                    ServiceGroupConfiguration.ServiceConfiguration(service: $0)
                }
                services.append(
                    .init(
                        service: DemoConsole(
                            context: context,
                            simulator: simulator,
                            flows: analyzers.flows.map(\.name),
                            topics: LearnFlowCatalog.topics,
                            groups: groups,
                            postgres: settings.postgresURL != nil,
                            interactive: interactive,
                            write: write
                        )
                    )
                )
                if let duration = settings.duration {
                    services.append(
                        .init(service: StopAfter(duration), successTerminationBehavior: .gracefullyShutdownGroup)
                    )
                }
                return services
            }
        )
    }
}

/// Shows ``DemoSummary`` on the terminal: in place every second on a terminal, plain every 5 seconds otherwise.
final class DemoConsole: Service {
    private let context: RunContext
    private let simulator: Simulator
    private let flows: [String]
    private let topics: [String]
    private let groups: [String]
    private let postgres: Bool
    private let interactive: Bool
    private let write: @Sendable (String) -> Void

    init(
        context: RunContext,
        simulator: Simulator,
        flows: [String],
        topics: [String],
        groups: [String],
        postgres: Bool,
        interactive: Bool,
        write: @escaping @Sendable (String) -> Void
    ) {
        self.context = context
        self.simulator = simulator
        self.flows = flows
        self.topics = topics
        self.groups = groups
        self.postgres = postgres
        self.interactive = interactive
        self.write = write
    }

    /// The latency quantiles cover the observations of this window.
    static let latencyWindow: Duration = .seconds(30)
    /// Events per second cover this window.
    static let rateWindow: Duration = .seconds(5)

    func run() async throws {
        let refresh: Duration = interactive ? .seconds(1) : .seconds(5)
        try? await cancelWhenGracefulShutdown { [self] in
            let started = ContinuousClock.now
            var history: [(time: ContinuousClock.Instant, samples: MetricSamples)] = []
            var shownLines = 0
            while !Task.isCancelled {
                try await Task.sleep(for: refresh)
                let now = ContinuousClock.now
                let current = MetricSamples(parsing: context.metricsText())
                history.append((now, current))
                history.removeAll { now - $0.time > Self.latencyWindow + refresh }
                // The oldest snapshot within the rate window (at least one refresh back).
                let rateWindow = max(Self.rateWindow, refresh) + .milliseconds(500)
                let rateBase = history.first { now - $0.time <= rateWindow && $0.time != now }
                let latencyBase = history.first { $0.time != now }
                let summary = DemoSummary.make(
                    current: current,
                    rateBase: rateBase.map { ($0.samples, seconds(now - $0.time)) },
                    latencyBase: latencyBase?.samples,
                    elapsed: now - started,
                    flows: flows,
                    topics: topics,
                    groups: groups,
                    postgresEnabled: postgres,
                    now: Date()
                )
                let lines = summary.render(simulator: simulator.snapshot, latencyWindow: "last 30s")
                if interactive {
                    // Back to the first line of the previous summary, clear to the end of the screen, redraw.
                    let up = shownLines > 0 ? "\u{1B}[\(shownLines)F\u{1B}[J" : ""
                    write(up + lines.joined(separator: "\n") + "\n")
                    shownLines = lines.count
                } else {
                    write(lines.joined(separator: "\n") + "\n\n")
                }
            }
        }
    }
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
