public import FlowmeterCore
import Foundation
import Kafka
public import Logging
import Postgres
public import ServiceLifecycle
import Synchronization

/// What services that run beside the daemon (`flowmeter demo`'s simulator and terminal summary) can see of it.
public struct RunContext: Sendable {
    /// Renders the exposition that `GET /metrics` serves, now.
    public let metricsText: @Sendable () -> String
}

/// `flowmeter run`: consume, analyze, flush rollups, serve `/metrics`, `/healthz` and `/readyz` until SIGTERM or
/// SIGINT, then drain (stop intake, flush, commit, leave the group) before the HTTP server goes.
public enum Runner {
    /// Runs the daemon.
    ///
    /// - Parameters:
    ///   - termination: the signal handlers; create them as early as the process can, so that a SIGTERM sent
    ///     while the daemon is still starting drains it instead of killing it. Created here when not given.
    ///   - onListening: called with the HTTP server's bound address.
    ///   - companions: services to run in the same service group, after the daemon's own; they start last and
    ///     are shut down first (`flowmeter demo` adds its simulator and its terminal summary here).
    public static func run(
        configuration: FlowmeterConfiguration,
        analyzers: AnalyzerSet,
        logger: Logger,
        termination: TerminationSignals? = nil,
        onListening: @escaping @Sendable (String) -> Void = { _ in },
        companions: (RunContext) throws -> [ServiceGroupConfiguration.ServiceConfiguration] = { _ in [] }
    ) async throws {
        if configuration.postgresURL == nil {
            logger.warning(
                "No --postgres given: serving live metrics only, no rollups; partitions start from the group's Kafka commit, then --from",
                metadata: ["from": "\(configuration.from)"]
            )
        }
        let shared = SharedEngine(AnalysisEngine(analyzers: analyzers, clock: .external))
        let status = RunStatus()
        let flushMetrics = FlushMetrics()
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(
                bootstrapServers: configuration.bootstrapServers,
                properties: configuration.kafkaProperties.map { (key: $0.key, value: $0.value) }
            ),
            logger: logger
        )
        let intake = Intake(
            configuration: configuration,
            analyzers: analyzers,
            shared: shared,
            status: status,
            flushMetrics: flushMetrics,
            logger: logger
        )
        let consumerBox = intake.consumerBox
        let lag = try LagMonitor(
            analyzers: analyzers,
            ownGroup: configuration.group,
            kafka: KafkaClientConfig(
                bootstrapServers: configuration.bootstrapServers,
                properties: configuration.kafkaProperties.map { (key: $0.key, value: $0.value) }
            ),
            interval: configuration.lagInterval,
            logger: logger,
            assignment: { status.state.withLock { $0.assignment } },
            cachedWatermarks: { consumerBox.consumer?.cachedWatermarks($0) }
        )
        let postgres = configuration.postgresURL != nil
        // The last exposition's size: a scrape reserves that much at once instead of growing the text by copying
        // it over and over (7 MB with 20 groups × 1,000 partitions).
        let lastSize = SizeHint()
        let metricsText: @Sendable () -> String = {
            var text = ""
            text.reserveCapacity(lastSize.bytes.withLock { $0 } + 16 * 1024)
            defer { lastSize.bytes.withLock { $0 = text.utf8.count } }
            shared.engine.withLock { $0.writeMetrics(into: &text) }
            SelfMetrics.write(status: status, into: &text)
            lag.writeMetrics(into: &text)
            if postgres { flushMetrics.write(into: &text) }
            return text
        }
        let endpoints = HTTPEndpoints(
            metrics: metricsText,
            notReadyReasons: { status.notReadyReasons() + (postgres ? flushMetrics.notReadyReasons() : []) }
        )
        let http = makeHTTPServer(
            host: configuration.httpAddress.host,
            port: configuration.httpAddress.port,
            endpoints: endpoints,
            logger: logger,
            onListening: onListening
        )
        let termination = termination ?? TerminationSignals(exitOnStdinClose: false)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: http),
            .init(
                service: KafkaHealth(admin: admin, interval: configuration.lagInterval, status: status, logger: logger)
            ),
        ]
        services.append(.init(service: lag))
        if let url = configuration.postgresURL {
            services.append(.init(service: Retention(url: url, retention: configuration.retention, logger: logger)))
            services.append(.init(service: LagSampleWriter(url: url, monitor: lag, logger: logger)))
        }
        // Shutdown runs in reverse order: intake drains first, HTTP goes last so /metrics stays up meanwhile.
        services.append(.init(service: intake))
        services += try companions(RunContext(metricsText: metricsText))
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(25)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        // SIGTERM/SIGINT: the first drains gracefully, a second one exits at once.
        let watcher = Task {
            var signalled = false
            for await reason in termination.reasons {
                if signalled {
                    logger.warning("Second signal: exiting without draining", metadata: ["reason": "\(reason)"])
                    exit(130)
                }
                signalled = true
                logger.info("Draining", metadata: ["reason": "\(reason)"])
                await group.triggerGracefulShutdown()
            }
        }
        defer { watcher.cancel() }
        try await group.run()
        logger.info("Stopped", metadata: ["records": "\(shared.engine.withLock { $0.recordsProcessed })"])
    }
}

/// The size of the last `/metrics` exposition, to reserve the next one's text at once.
private final class SizeHint: Sendable {
    let bytes = Mutex(64 * 1024)
}

/// Flowmeter's own metrics that are not the engine's or the rollups'.
enum SelfMetrics {
    static func write(status: RunStatus, into text: inout String) {
        text += "# HELP flowmeter_build_info Flowmeter's version; always 1.\n"
        text += "# TYPE flowmeter_build_info gauge\n"
        text += "flowmeter_build_info{version=\"\(flowmeterVersion)\"} 1\n"
        text += "# HELP flowmeter_kafka_up 1 when the Kafka cluster answered the last metadata request, else 0.\n"
        text += "# TYPE flowmeter_kafka_up gauge\n"
        text += "flowmeter_kafka_up \(status.kafkaUp == true ? 1 : 0)\n"
        text += "# HELP flowmeter_assigned_partitions Partitions currently assigned to this replica.\n"
        text += "# TYPE flowmeter_assigned_partitions gauge\n"
        text += "flowmeter_assigned_partitions \(status.assignedPartitions)\n"
    }
}

/// Deletes rollup rows older than `--retention`, in small batches, every ten minutes (on a connection of its own).
final class Retention: Service {
    private let url: String
    private let retention: Duration
    private let logger: Logger

    init(url: String, retention: Duration, logger: Logger) {
        self.url = url
        self.retention = retention
        self.logger = logger
    }

    func run() async throws {
        let url = self.url
        let retention = self.retention
        let logger = self.logger
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(600))
                let deleted: Result<Int, PQError> = await withCheckedContinuation { continuation in
                    Thread.detachNewThread {
                        continuation.resume(
                            returning: Result { () throws(PQError) -> Int in
                                let connection = try PQConnection.connect(url: url, logger: logger)
                                defer { connection.close() }
                                let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds))
                                return try RollupWriter(connection: connection, group: "", logger: logger)
                                    .deleteOlderThan(cutoff)
                            }
                        )
                    }
                }
                switch deleted {
                case .success(let rows) where rows > 0:
                    logger.info("Retention deleted old rows", metadata: ["rows": "\(rows)"])
                case .success: break
                case .failure(let error):
                    logger.warning("Retention failed; retrying later", metadata: ["postgres.error": "\(error)"])
                }
            }
        }
    }
}
