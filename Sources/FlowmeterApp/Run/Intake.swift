import FlowmeterCore
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Synchronization

/// The analysis engine shared by the intake thread (which feeds it) and the HTTP handlers (which render it).
///
/// The intake holds the lock for one poll batch at a time, so a scrape waits at most for the analysis of one
/// batch, never for Kafka.
final class SharedEngine: Sendable {
    let engine: Mutex<AnalysisEngine>

    init(_ engine: AnalysisEngine) {
        self.engine = Mutex(engine)
    }
}

/// The last processed offset of every partition this replica has read, for commits.
final class Progress: Sendable {
    private let processed = Mutex<[TopicPartition: Int64]>([:])

    func record(_ partition: TopicPartition, offset: Int64) {
        processed.withLock { $0[partition] = offset }
    }

    /// Removes and returns the offsets of the given partitions (all if `nil`).
    func take(_ partitions: [TopicPartition]? = nil) -> [TopicPartition: Int64] {
        processed.withLock { processed in
            guard let partitions else {
                defer { processed.removeAll() }
                return processed
            }
            var taken: [TopicPartition: Int64] = [:]
            for partition in partitions { taken[partition] = processed.removeValue(forKey: partition) }
            return taken
        }
    }

    func restore(_ offsets: [TopicPartition: Int64]) {
        processed.withLock { processed in
            for (partition, offset) in offsets where (processed[partition] ?? -1) < offset {
                processed[partition] = offset
            }
        }
    }
}

/// Reads the analyzed topics in Flowmeter's own consumer group and feeds every record to the engine.
///
/// The poll loop runs on a thread of its own (librdkafka's calls block). Without PostgreSQL, processed offsets
/// are committed to Kafka every flush interval and before partitions are given up, so a restart resumes from
/// the group's commit.
final class Intake: Service {
    private let configuration: FlowmeterConfiguration
    private let subscriptions: [String]
    private let shared: SharedEngine
    private let status: RunStatus
    private let logger: Logger
    private let stopRequested = Mutex(false)

    init(
        configuration: FlowmeterConfiguration,
        subscriptions: [String],
        shared: SharedEngine,
        status: RunStatus,
        logger: Logger
    ) {
        self.configuration = configuration
        self.subscriptions = subscriptions
        self.shared = shared
        self.status = status
        self.logger = logger
    }

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let thread = Thread { [self] in
                        do {
                            try loop()
                            continuation.resume()
                        } catch {
                            status.intakeFailed("\(error)")
                            continuation.resume(throwing: error)
                        }
                    }
                    thread.name = "flowmeter-intake"
                    thread.start()
                }
            } onCancel: {
                stop()
            }
        } onGracefulShutdown: {
            self.status.draining()
            self.stop()
        }
    }

    private func stop() {
        stopRequested.withLock { $0 = true }
    }

    private func loop() throws {
        let progress = Progress()
        let consumerBox = ConsumerBox()
        let from = configuration.from
        let status = self.status
        let logger = self.logger
        let handler = RebalanceHandler(
            onAssign: { partitions in
                status.assigned(partitions)
                guard case .time(let date) = from, let consumer = consumerBox.consumer else { return [:] }
                return Self.startOffsets(for: partitions, at: date, consumer: consumer, logger: logger)
            },
            onRevoke: { partitions, lost in
                let offsets = progress.take(partitions)
                if !lost, let consumer = consumerBox.consumer, !offsets.isEmpty {
                    do {
                        try consumer.commit(processed: offsets)
                    } catch {
                        logger.warning("Commit before revocation failed", metadata: ["kafka.error": "\(error)"])
                    }
                }
                status.revoked(partitions)
            }
        )
        var properties: [(key: String, value: String)] = [
            ("auto.offset.reset", from == .earliest ? "earliest" : "latest"),
            ("client.id", "flowmeter"),
        ]
        properties += configuration.kafkaProperties.map { (key: $0.key, value: $0.value) }
        let consumer = try KafkaConsumer(
            config: KafkaClientConfig(bootstrapServers: configuration.bootstrapServers, properties: properties),
            groupID: configuration.group,
            rebalance: handler,
            logger: logger
        )
        consumerBox.set(consumer)
        defer {
            consumerBox.set(nil)
            consumer.close()
        }
        try consumer.subscribe(topics: subscriptions)
        logger.info(
            "Consuming",
            metadata: ["kafka.group": "\(configuration.group)", "kafka.subscriptions": "\(subscriptions)"]
        )

        let commitEveryMs =
            Int64(configuration.flushInterval.components.seconds * 1000)
            + configuration.flushInterval.components.attoseconds / 1_000_000_000_000_000
        var lastCommitMs = Self.nowMs()
        while !stopRequested.withLock({ $0 }) {
            let batch = try consumer.pollBatch(maxRecords: 2000, timeout: .milliseconds(100))
            let now = Self.nowMs()
            shared.engine.withLock { engine in
                if batch.isEmpty {
                    engine.advance(nowMs: now)
                    return
                }
                for record in batch {
                    Self.feed(record, to: &engine, receivedAtMs: now)
                }
            }
            for record in batch { progress.record(record.topicPartition, offset: record.offset) }
            if now - lastCommitMs >= commitEveryMs {
                commit(progress.take(), consumer: consumer, progress: progress)
                lastCommitMs = now
            }
        }
        commit(progress.take(), consumer: consumer, progress: progress)
        logger.info("Intake stopped")
    }

    private func commit(_ offsets: [TopicPartition: Int64], consumer: KafkaConsumer, progress: Progress) {
        guard !offsets.isEmpty else { return }
        do {
            try consumer.commit(processed: offsets)
        } catch {
            progress.restore(offsets)
            logger.warning("Kafka commit failed; retrying next interval", metadata: ["kafka.error": "\(error)"])
        }
    }

    static func feed(_ record: ConsumerRecord, to engine: inout AnalysisEngine, receivedAtMs: Int64) {
        let headers = record.headers.map { RecordHeader(name: $0.name, value: $0.value) }
        let type: TimestampType =
            switch record.timestampType {
            case .createTime: .createTime
            case .logAppendTime: .logAppendTime
            case .notAvailable: .unknown
            }
        if let value = record.value {
            value.withUnsafeBytes { buffer in
                engine.process(
                    topic: record.topic,
                    partition: record.partition,
                    offset: record.offset,
                    timestampMs: record.timestampMs,
                    timestampType: type,
                    headers: headers,
                    key: record.key,
                    value: buffer,
                    receivedAtMs: receivedAtMs
                )
            }
        } else {
            engine.process(
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                timestampMs: record.timestampMs,
                timestampType: type,
                headers: headers,
                key: record.key,
                value: nil,
                receivedAtMs: receivedAtMs
            )
        }
    }

    /// Partitions without a group commit start at the first record at or after `date`.
    static func startOffsets(
        for partitions: [TopicPartition],
        at date: Date,
        consumer: KafkaConsumer,
        logger: Logger
    ) -> [TopicPartition: Int64] {
        do {
            let committed = try consumer.committed(partitions)
            let fresh = partitions.filter { committed[$0] == nil || committed[$0]! == nil }
            guard !fresh.isEmpty else { return [:] }
            let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
            let found = try consumer.offsetsForTimes(Dictionary(uniqueKeysWithValues: fresh.map { ($0, millis) }))
            var starts: [TopicPartition: Int64] = [:]
            for partition in fresh {
                // No record at or after the time yet: start at the end (librdkafka's OFFSET_END is -1).
                starts[partition] = found[partition].flatMap { $0 } ?? -1
            }
            return starts
        } catch {
            logger.warning(
                "Cannot resolve --from time; those partitions start at the latest offset",
                metadata: ["kafka.error": "\(error)"]
            )
            return Dictionary(uniqueKeysWithValues: partitions.map { ($0, -1) })
        }
    }

    static func nowMs() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}

/// Lets the rebalance handler reach the consumer it belongs to (it is created before the consumer).
final class ConsumerBox: Sendable {
    private let value = Mutex<KafkaConsumer?>(nil)

    var consumer: KafkaConsumer? { value.withLock { $0 } }

    func set(_ consumer: KafkaConsumer?) {
        value.withLock { $0 = consumer }
    }
}

/// Checks every interval that the Kafka cluster answers a metadata request (`flowmeter_kafka_up`, `/readyz`).
final class KafkaHealth: Service {
    private let admin: KafkaAdmin
    private let interval: Duration
    private let status: RunStatus
    private let logger: Logger

    init(admin: KafkaAdmin, interval: Duration, status: RunStatus, logger: Logger) {
        self.admin = admin
        self.interval = interval
        self.status = status
        self.logger = logger
    }

    func run() async throws {
        let admin = self.admin
        let status = self.status
        let logger = self.logger
        let interval = self.interval
        // Graceful shutdown cancels the loop's sleep; that is how this service ends, not a failure.
        try? await cancelWhenGracefulShutdown {
            var wasUp: Bool?
            while !Task.isCancelled {
                do {
                    _ = try await admin.topics(timeout: .seconds(5))
                    status.kafka(up: true, problem: nil)
                    if wasUp != true { logger.info("Kafka reachable") }
                    wasUp = true
                } catch {
                    status.kafka(up: false, problem: "\(error)")
                    if wasUp != false { logger.warning("Kafka not reachable", metadata: ["kafka.error": "\(error)"]) }
                    wasUp = false
                }
                try await Task.sleep(for: min(interval, .seconds(5)))
            }
        }
        admin.close()
    }
}
