import FlowmeterCore
import Foundation
import Kafka
import Logging

/// Flow correlation across replicas (DESIGN.md section 5): the repartition topic, its producer, and what the
/// intake knows about it. Confined to the intake thread, like the pipeline that owns it.
///
/// - A replica assigned every partition of the flows' topics and of the repartition topic correlates in memory.
/// - Otherwise it *routes*: its engine hands out flow events as hops, written here to the repartition partition of
///   their shard (flow and correlation key), and the owner of that partition correlates them. Every flush it also
///   writes a progress marker to every repartition partition, and the flow clock of a routing replica is the minimum
///   over all source partitions of the latest markers read (``markerClock()``), so a request never expires while its
///   response can still be on its way from another replica.
/// - Hops are written with an idempotent producer (in order, no duplicates from retries) and acknowledged before
///   the source offsets are stored; a source partition read again after a crash writes its hops again, and the
///   shard skips what it already took (``RepartitionMark``, stored with the shard's offset).
final class FlowRepartition {
    let topic: String
    let partitions: Int32
    private(set) var producer: KafkaProducer
    private let producerConfig: KafkaClientConfig
    private let flowTopics: Set<String>
    private let logger: Logger

    /// Whether this replica routes its flow events through the topic (set on every assignment).
    private(set) var routing = false
    /// The repartition partitions (shards) this replica owns.
    private(set) var ownedShards: Set<Int32> = []
    /// Every partition of the flows' topics, at the last assignment.
    private(set) var flowSourcePartitions: [TopicPartition] = []
    /// The flow source partitions this replica owns.
    private(set) var ownedSources: [TopicPartition] = []
    /// The last hop position taken per shard and source partition.
    private var marks: [RepartitionMark.Key: HopPosition] = [:]
    /// Marks raised since the last successful flush.
    private var changedMarks: [RepartitionMark.Key: HopPosition] = [:]
    /// The latest progress marker per shard and source partition.
    private var progress: [Int32: [TopicPartition: Int64]] = [:]
    /// Where this replica started reading each owned source partition (its stored offset at assignment).
    private var sourceStarts: [TopicPartition: Int64] = [:]
    /// Hops written since the last successful flush (they must be acknowledged before the offsets are stored).
    private(set) var hopsSinceFlush = 0
    private var failedBaseline = 0

    /// Counters for `/metrics`.
    private(set) var sent: Int64 = 0
    private(set) var received: Int64 = 0
    private(set) var duplicates: Int64 = 0
    private(set) var invalid: Int64 = 0

    /// The partition count used when Flowmeter creates the topic (`FLOWMETER_REPARTITION_PARTITIONS`, default 12).
    static var requestedPartitions: Int32 {
        ProcessInfo.processInfo.environment["FLOWMETER_REPARTITION_PARTITIONS"].flatMap { Int32($0) }.map {
            min(max($0, 1), 10_000)
        } ?? 12
    }

    /// The topic's name for a consumer group: `<group>.flow-repartition`, with characters Kafka does not allow in
    /// topic names replaced by `_`.
    static func topicName(group: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let safe = String(group.map { allowed.contains($0) ? $0 : "_" })
        return String((safe + ".flow-repartition").suffix(249))
    }

    /// Consumer-only librdkafka properties, not passed to the producer (which would log a warning for each).
    private static let consumerOnly: Set<String> = [
        "auto.offset.reset", "enable.auto.commit", "enable.auto.offset.store", "enable.partition.eof",
        "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "partition.assignment.strategy",
        "group.id", "group.instance.id", "isolation.level", "check.crcs", "auto.commit.interval.ms",
        "queued.min.messages", "queued.max.messages.kbytes", "fetch.wait.max.ms", "fetch.min.bytes",
        "fetch.max.bytes", "fetch.message.max.bytes", "max.partition.fetch.bytes", "fetch.error.backoff.ms",
        "allow.auto.create.topics", "coordinator.query.interval.ms", "group.protocol.type",
    ]

    /// Opens the producer and finds (or creates) the topic. Returns `nil`, after logging why, when the topic cannot be
    /// had: flows are then correlated by each replica on its own, as before.
    static func open(configuration: FlowmeterConfiguration, analyzers: AnalyzerSet, logger: Logger) -> FlowRepartition?
    {
        let flowTopics = Set(analyzers.flows.flatMap { [$0.from, $0.to] })
        guard !flowTopics.isEmpty else { return nil }
        let topic = topicName(group: configuration.group)
        var properties: [(key: String, value: String)] = configuration.kafkaProperties
            .filter { !consumerOnly.contains($0.key) }
            .map { (key: $0.key, value: $0.value) }
        properties += [
            ("client.id", "flowmeter-repartition"), ("enable.idempotence", "true"), ("linger.ms", "5"),
            // Never give up on a hop (0: no timeout): a hop that could not be written would leave a gap that the
            // shard's de-duplication mark would then skip over. A Kafka outage holds the flush up instead.
            ("message.timeout.ms", "0"),
        ]
        let config = KafkaClientConfig(bootstrapServers: configuration.bootstrapServers, properties: properties)
        do {
            let producer = try KafkaProducer(config: config, logger: logger)
            guard let partitions = try resolve(topic, producer: producer, logger: logger) else {
                logger.error(
                    "The flow repartition topic does not exist and cannot be created: flows whose request and response are read by different replicas will not be matched",
                    metadata: ["kafka.topic": "\(topic)"]
                )
                producer.close(timeout: .seconds(1))
                return nil
            }
            logger.info(
                "Flow repartition topic ready",
                metadata: ["kafka.topic": "\(topic)", "kafka.partitions": "\(partitions)"]
            )
            return FlowRepartition(
                topic: topic,
                partitions: partitions,
                producer: producer,
                producerConfig: config,
                flowTopics: flowTopics,
                logger: logger
            )
        } catch {
            logger.error(
                "Cannot open the flow repartition producer: flows across replicas will not be matched",
                metadata: ["kafka.error": "\(error)"]
            )
            return nil
        }
    }

    /// The topic's partition count: as it exists, else after creating it (CreateTopics with
    /// ``requestedPartitions``), else after asking for it by name (which creates it where the broker allows
    /// auto-creation, e.g. the mock cluster, whose CreateTopics never answers).
    private static func resolve(_ topic: String, producer: KafkaProducer, logger: Logger) throws(KafkaError) -> Int32? {
        if let count = try producer.partitionCounts()[topic] { return count }
        do {
            try producer.createTopic(topic, partitions: requestedPartitions, timeout: .seconds(2))
            logger.info("Created the flow repartition topic", metadata: ["kafka.topic": "\(topic)"])
        } catch {
            logger.info(
                "CreateTopics failed; asking the broker to create the topic on first use",
                metadata: ["kafka.topic": "\(topic)", "kafka.error": "\(error)"]
            )
        }
        for _ in 0..<10 {
            if let count = try producer.partitionCount(of: topic) { return count }
            Thread.sleep(forTimeInterval: 0.3)
        }
        return nil
    }

    private init(
        topic: String,
        partitions: Int32,
        producer: KafkaProducer,
        producerConfig: KafkaClientConfig,
        flowTopics: Set<String>,
        logger: Logger
    ) {
        self.topic = topic
        self.partitions = partitions
        self.producer = producer
        self.producerConfig = producerConfig
        self.flowTopics = flowTopics
        self.logger = logger
    }

    // MARK: Assignment

    /// Takes a new assignment (the whole of it: rebalances are eager): which shards and source partitions are
    /// owned, and whether to route.
    func assign(_ assignment: [TopicPartition]) {
        let counts = (try? producer.partitionCounts()) ?? [:]
        flowSourcePartitions = flowTopics.sorted().flatMap { topic in
            (0..<(counts[topic] ?? 0)).map { TopicPartition(topic, $0) }
        }
        let assigned = Set(assignment)
        ownedShards = Set(assignment.filter { $0.topic == topic }.map(\.partition))
        ownedSources = flowSourcePartitions.filter { assigned.contains($0) }
        let ownsEverything =
            ownedShards.count == Int(partitions) && ownedSources.count == flowSourcePartitions.count
        if routing != !ownsEverything || !ownsEverything {
            logger.info(
                ownsEverything
                    ? "Correlating flows in memory (this replica reads every partition)"
                    : "Routing flow events through the repartition topic (other replicas read some partitions)",
                metadata: [
                    "flow.shards": "\(ownedShards.count)/\(partitions)",
                    "flow.source_partitions": "\(ownedSources.count)/\(flowSourcePartitions.count)",
                ]
            )
        }
        routing = !ownsEverything
    }

    /// The offsets this replica starts reading its source partitions at (stored in PostgreSQL).
    func started(at offsets: [TopicPartition: Int64]) {
        for (partition, offset) in offsets where flowTopics.contains(partition.topic) {
            sourceStarts[partition] = offset
        }
    }

    /// While correlating in memory: the hops shards already took of records this replica reads again (at or after
    /// where it starts), so that the engine does not correlate those records a second time.
    func takenAhead() -> TakenFlowHops {
        guard !routing else { return TakenFlowHops() }
        var positions: [TakenFlowHops.Key: HopPosition] = [:]
        for (key, mark) in marks {
            guard let start = sourceStarts[key.source], mark.offset >= start else { continue }
            positions[TakenFlowHops.Key(shard: key.shard, topic: key.source.topic, partition: key.source.partition)] =
                mark
        }
        return TakenFlowHops(partitions: partitions, positions: positions)
    }

    /// Forgets the marks and progress of shards given up, and everything after unflushed work was dropped.
    func revoke(_ revoked: [TopicPartition]) {
        let shards = Set(revoked.filter { $0.topic == topic }.map(\.partition))
        marks = marks.filter { !shards.contains($0.key.shard) }
        changedMarks = changedMarks.filter { !shards.contains($0.key.shard) }
        for shard in shards { progress.removeValue(forKey: shard) }
        ownedShards.subtract(shards)
        let sources = Set(revoked)
        ownedSources.removeAll { sources.contains($0) }
        for source in revoked { sourceStarts.removeValue(forKey: source) }
    }

    /// Unflushed work was dropped: marks are re-read from PostgreSQL with the offsets.
    func dropUnflushed() {
        marks = [:]
        changedMarks = [:]
        progress = [:]
        sourceStarts = [:]
        hopsSinceFlush = 0
    }

    /// Takes the stored marks of owned shards.
    func load(_ stored: [RepartitionMark]) {
        for mark in stored where ownedShards.contains(mark.shard) {
            let known = marks[mark.key]
            if known == nil || known! < mark.position {
                marks[mark.key] = mark.position
            }
        }
    }

    /// Whether a stored pending request or early response belongs to this replica: all of them while it
    /// correlates in memory, those of its shards while it routes.
    func owns(flow: String, key: String) -> Bool {
        !routing || ownedShards.contains(FlowHop.shard(flow: flow, key: key, partitions: partitions))
    }

    // MARK: Reading

    /// Handles one record of the repartition topic: a hop is correlated (unless it is a replay), a progress
    /// marker remembered. Malformed records are counted and skipped.
    func receive(_ record: borrowing BorrowedRecord, engine: inout AnalysisEngine) {
        guard let value = record.value, let decoded = RepartitionCodec.decode(value) else {
            invalid += 1
            return
        }
        let shard = record.partition
        switch decoded {
        case .hop(let hop):
            let source = TopicPartition(hop.topic, hop.partition)
            // Correlating in memory, this replica reads the hop's record itself from where it started: a hop at or
            // after that was written by a replica that read the record before its offset was stored (then died,
            // or gave the partition up without storing it). Only hops before it are correlated from here.
            if !routing, let start = sourceStarts[source], hop.offset >= start {
                duplicates += 1
                return
            }
            let key = RepartitionMark.Key(shard: shard, source: source)
            if let mark = marks[key], hop.position <= mark {
                duplicates += 1
                return
            }
            marks[key] = hop.position
            changedMarks[key] = hop.position
            if engine.correlate(hop) {
                received += 1
            } else {
                invalid += 1
            }
        case .progress(let marker):
            var latest = progress[shard] ?? [:]
            for entry in marker.entries {
                let partition = TopicPartition(entry.topic, entry.partition)
                latest[partition] = max(latest[partition] ?? .min, entry.watermarkMs)
            }
            progress[shard] = latest
        }
    }

    /// The flow clock of a routing replica: the minimum, over the shards it owns and every flow source partition,
    /// of the latest progress marker; `nil` until every source partition has reported to every owned shard.
    func markerClock() -> Int64? {
        guard !ownedShards.isEmpty, !flowSourcePartitions.isEmpty else { return nil }
        var result = Int64.max
        for shard in ownedShards {
            guard let latest = progress[shard] else { return nil }
            for partition in flowSourcePartitions {
                guard let watermark = latest[partition] else { return nil }
                result = min(result, watermark)
            }
        }
        return result
    }

    /// The marks raised since the last successful flush, to store with it.
    var pendingMarks: [RepartitionMark] {
        changedMarks.map {
            RepartitionMark(shard: $0.key.shard, source: $0.key.source, offset: $0.value.offset, index: $0.value.index)
        }
    }

    // MARK: Writing

    /// Writes hops to their shards (queued; acknowledged by ``deliver(timeout:)``).
    func send(_ hops: [FlowHop]) throws(KafkaError) {
        for hop in hops {
            try producer.send(
                ProducerMessage(
                    topic: topic,
                    partition: hop.shard(partitions: partitions),
                    key: Array(hop.key.utf8),
                    value: RepartitionCodec.encode(hop),
                    timestampMs: hop.timeMs
                )
            )
        }
        hopsSinceFlush += hops.count
        sent += Int64(hops.count)
    }

    /// Writes a progress marker for the owned source partitions to every shard.
    func sendProgress(_ entries: [FlowProgressMarker.Entry], now: Int64) {
        guard !entries.isEmpty else { return }
        let value = RepartitionCodec.encode(FlowProgressMarker(entries: entries))
        do {
            for shard in 0..<partitions {
                try producer.send(ProducerMessage(topic: topic, partition: shard, value: value, timestampMs: now))
            }
        } catch {
            logger.warning("Cannot write flow progress markers", metadata: ["kafka.error": "\(error)"])
        }
    }

    enum Delivery {
        case delivered
        /// Not all acknowledged yet (Kafka slow or down): try again later.
        case pending(KafkaError)
        /// A hop was refused for good: the unflushed work must be dropped and the sources read again.
        case failed(Int)
    }

    /// Waits for every written hop to be acknowledged.
    func deliver(timeout: Duration) -> Delivery {
        do {
            try producer.flush(timeout: timeout)
        } catch {
            return .pending(error)
        }
        let failed = producer.deliveryCounts.failed
        guard failed == failedBaseline else {
            let count = failed - failedBaseline
            failedBaseline = failed
            return .failed(count)
        }
        return .delivered
    }

    /// When a flush takes the changed marks and the acknowledged hops (``requeue(_:)`` puts the marks back if it
    /// fails).
    func flushed() {
        changedMarks = [:]
        hopsSinceFlush = 0
    }

    /// Puts back the marks of a flush that failed (unless a later hop of the same shard and source moved past them).
    func requeue(_ failed: [RepartitionMark]) {
        for mark in failed where changedMarks[mark.key].map({ $0 < mark.position }) ?? true {
            changedMarks[mark.key] = mark.position
        }
    }

    /// Replaces the producer after a hop was refused (an idempotent producer that lost a record is unusable).
    func resetProducer() {
        producer.close(timeout: .seconds(1))
        do {
            producer = try KafkaProducer(config: producerConfig, logger: logger)
            failedBaseline = 0
        } catch {
            logger.error("Cannot reopen the flow repartition producer", metadata: ["kafka.error": "\(error)"])
        }
    }

    func close() {
        producer.close(timeout: .seconds(5))
    }
}
