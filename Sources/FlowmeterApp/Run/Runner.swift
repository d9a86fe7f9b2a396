public import FlowmeterCore
import Foundation
import Kafka
public import Logging
import ServiceLifecycle
import Synchronization

/// `flowmeter run`: consume, analyze, serve `/metrics`, `/healthz` and `/readyz` until SIGTERM or SIGINT, then
/// drain (stop intake, commit, leave the group) before the HTTP server goes.
public enum Runner {
    /// Runs the daemon.
    ///
    /// - Parameter onListening: called with the HTTP server's bound address.
    public static func run(
        configuration: FlowmeterConfiguration,
        analyzers: AnalyzerSet,
        logger: Logger,
        onListening: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws {
        if configuration.postgresURL == nil {
            logger.warning(
                "No --postgres given: serving live metrics only, no rollups; partitions start from the group's Kafka commit, then --from",
                metadata: ["from": "\(configuration.from)"]
            )
        }
        let shared = SharedEngine(AnalysisEngine(analyzers: analyzers))
        let status = RunStatus()
        let subscriptions = analyzers.subscriptionTopics()
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(
                bootstrapServers: configuration.bootstrapServers,
                properties: configuration.kafkaProperties.map { (key: $0.key, value: $0.value) }
            ),
            logger: logger
        )
        let endpoints = HTTPEndpoints(
            metrics: {
                var text = ""
                text.reserveCapacity(64 * 1024)
                shared.engine.withLock { $0.writeMetrics(into: &text) }
                SelfMetrics.write(status: status, postgresConfigured: configuration.postgresURL != nil, into: &text)
                return text
            },
            notReadyReasons: { status.notReadyReasons() }
        )
        let http = makeHTTPServer(
            host: configuration.httpAddress.host,
            port: configuration.httpAddress.port,
            endpoints: endpoints,
            logger: logger,
            onListening: onListening
        )
        let intake = Intake(
            configuration: configuration,
            subscriptions: subscriptions,
            shared: shared,
            status: status,
            logger: logger
        )
        let termination = TerminationSignals(exitOnStdinClose: false)
        let health = KafkaHealth(admin: admin, interval: configuration.lagInterval, status: status, logger: logger)
        // Shutdown runs in reverse order: intake drains first, HTTP goes last so /metrics stays up meanwhile.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: http),
                .init(service: health),
                .init(service: intake),
            ],
            logger: logger
        )
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

/// Flowmeter's own metrics that are not the engine's.
enum SelfMetrics {
    static func write(status: RunStatus, postgresConfigured: Bool, into text: inout String) {
        text += "# HELP flowmeter_build_info Flowmeter's version; always 1.\n"
        text += "# TYPE flowmeter_build_info gauge\n"
        text += "flowmeter_build_info{version=\"\(flowmeterVersion)\"} 1\n"
        text += "# HELP flowmeter_kafka_up 1 when the Kafka cluster answered the last metadata request, else 0.\n"
        text += "# TYPE flowmeter_kafka_up gauge\n"
        text += "flowmeter_kafka_up \(status.kafkaUp == true ? 1 : 0)\n"
        text += "# HELP flowmeter_assigned_partitions Partitions currently assigned to this replica.\n"
        text += "# TYPE flowmeter_assigned_partitions gauge\n"
        text += "flowmeter_assigned_partitions \(status.assignedPartitions)\n"
        _ = postgresConfigured
    }
}
