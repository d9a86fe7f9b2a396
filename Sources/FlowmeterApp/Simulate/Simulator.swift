public import FlowmeterCore
import Foundation
import Kafka
public import Logging
public import ServiceLifecycle
import Synchronization

/// What the simulator has done so far.
public struct SimulationSnapshot: Sendable, Hashable {
    /// Records handed to the producer, by topic (dead-letter topics included).
    public var produced: [String: Int] = [:]
    /// Dead-letter copies not written because the broker never acknowledged their original.
    public var skippedDeadLetters = 0
    /// Records the broker acknowledged, and records it refused.
    public var delivered = 0
    public var failed = 0
    /// Records each simulated subscriber group processed (and committed, within a second).
    public var consumed: [String: Int] = [:]
    /// Groups that have stalled.
    public var stalled: Set<String> = []

    /// All records produced.
    public var producedTotal: Int { produced.values.reduce(0, +) }
    /// Dead-letter copies produced.
    public var deadLetters: Int {
        produced.filter { !LearnFlowCatalog.topics.contains($0.key) }.values.reduce(0, +)
    }
}

/// Simulated LearnFlow traffic on a Kafka cluster: a producer that writes what ``TrafficGenerator`` plans, when
/// it is due, as Dapr sidecars write it; and one consumer per LearnFlow subscriber group that consumes and
/// commits like a Dapr sidecar (marking each handled record, auto-committing every second), slowly or stalling
/// where asked.
public final class Simulator: Sendable {
    /// The seed in use.
    public let seed: UInt64
    /// The generator's parameters.
    public let parameters: SimulationParameters
    /// The settings.
    public let settings: SimulationSettings

    private let estimate: TrafficGenerator.Estimate
    private let kafka: KafkaClientConfig
    private let logger: Logger
    private let state = Mutex(SimulationSnapshot())

    /// Prepares a simulation; nothing connects until its services run.
    ///
    /// - Parameters:
    ///   - settings: The simulator's options.
    ///   - bootstrapServers: The cluster.
    ///   - kafkaProperties: librdkafka properties (TLS, SASL, …) for the producer and the subscriber groups.
    ///   - logger: The logger.
    public init(
        settings: SimulationSettings,
        bootstrapServers: String,
        kafkaProperties: [(key: String, value: String)] = [],
        logger: Logger
    ) {
        let seed = settings.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        self.seed = seed
        self.settings = settings
        // Slow and stalled groups do not enter the estimate, so it can be made before the parameters.
        let estimate = TrafficGenerator.estimate(
            SimulationParameters(
                learners: settings.learners,
                rate: settings.rate,
                seed: seed,
                failureRate: settings.failureRate
            )
        )
        self.estimate = estimate
        self.parameters = settings.parameters(seed: seed, estimate: estimate)
        self.kafka = KafkaClientConfig(bootstrapServers: bootstrapServers, properties: kafkaProperties)
        self.logger = logger
    }

    /// What has been done so far.
    public var snapshot: SimulationSnapshot { state.withLock { $0 } }

    /// The services, in start order: one subscriber per group, then the producer (so that shutdown, which runs in
    /// reverse, stops producing first and flushes).
    ///
    /// - Throws: A Kafka error if a client cannot be created (for example a rejected property).
    public func services() throws -> [any Service] {
        var services: [any Service] = []
        for (group, topics) in LearnFlowCatalog.groups {
            let mode: SimulatedSubscriber.Mode
            if let after = settings.stalledGroups.first(where: { $0.name == group })?.after {
                mode = .stall(after: after)
            } else if let rate = parameters.slowGroups[group] {
                mode = .slow(perSecond: rate)
            } else {
                mode = .normal
            }
            services.append(
                try SimulatedSubscriber(
                    group: group,
                    topics: topics,
                    mode: mode,
                    kafka: kafka,
                    logger: logger,
                    onProcessed: { [self] count in update { $0.consumed[group, default: 0] += count } },
                    onStall: { [self] in update { $0.stalled.insert(group) } }
                )
            )
        }
        services.append(try TrafficProducer(simulator: self, kafka: kafka, logger: logger))
        return services
    }

    /// A one-line description of the simulated platform.
    public var summary: String {
        var parts = [
            "\(parameters.learners) learners", "\(formatNumber(parameters.rate)) records/s",
            "failure rate \(formatNumber(parameters.failureRate))", "seed \(seed)",
        ]
        for group in settings.slowGroups {
            parts.append("slow \(group.name) (\(formatNumber(parameters.slowGroups[group.name] ?? 0))/s)")
        }
        for group in settings.stalledGroups {
            parts.append("\(group.name) stalls after \(DurationSyntax.format(group.after))")
        }
        return parts.joined(separator: ", ")
    }

    fileprivate func makeGenerator(epochMs: Int64) -> TrafficGenerator {
        TrafficGenerator(parameters: parameters, epochMs: epochMs, recordsPerAction: estimate.recordsPerAction)
    }

    fileprivate func update(_ body: (inout SimulationSnapshot) -> Void) {
        state.withLock { body(&$0) }
    }

    // MARK: - flowmeter simulate

    /// Runs `flowmeter simulate`: the producer and the subscriber groups until `settings.duration` has passed or
    /// SIGTERM/SIGINT arrives, printing a line every `settings.reportInterval`; then stops producing, flushes,
    /// commits and leaves the groups.
    ///
    /// - Returns: What was done.
    /// - Throws: A Kafka error if a client cannot be created.
    @discardableResult
    public func run(printLine: @escaping @Sendable (String) -> Void) async throws -> SimulationSnapshot {
        let termination = TerminationSignals(exitOnStdinClose: false)
        var configurations = try services().map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        configurations.append(
            .init(
                service: SimulationReporter(simulator: self, interval: settings.reportInterval, printLine: printLine),
                successTerminationBehavior: .gracefullyShutdownGroup
            )
        )
        if let duration = settings.duration {
            configurations.append(
                .init(service: StopAfter(duration), successTerminationBehavior: .gracefullyShutdownGroup)
            )
        }
        var groupConfiguration = ServiceGroupConfiguration(services: configurations, logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(25)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        let logger = self.logger
        let watcher = Task {
            var signalled = false
            for await reason in termination.reasons {
                if signalled {
                    logger.warning("Second signal: exiting without flushing", metadata: ["reason": "\(reason)"])
                    exit(130)
                }
                signalled = true
                logger.info("Stopping", metadata: ["reason": "\(reason)"])
                await group.triggerGracefulShutdown()
            }
        }
        defer { watcher.cancel() }
        try await group.run()
        let final = snapshot
        printLine(SimulationReporter.finalLine(final))
        return final
    }
}

// MARK: - Producer

/// Writes the generator's records when they are due (record timestamp = the planned time), on a thread of its own.
final class TrafficProducer: Service {
    private let simulator: Simulator
    private let producer: KafkaProducer
    private let logger: Logger
    private let stopRequested = Mutex(false)
    /// Delivery results of originals that have dead-letter copies still to be written.
    private let originals = Mutex<[UInt64: OriginalDelivery]>([:])

    private enum OriginalDelivery {
        case pending(copies: Int)
        case delivered(partition: Int32, offset: Int64, copies: Int)
        case failed(copies: Int)
    }

    init(simulator: Simulator, kafka: KafkaClientConfig, logger: Logger) throws(KafkaError) {
        var config = KafkaClientConfig(bootstrapServers: kafka.value(for: "bootstrap.servers") ?? "")
        // Dapr's sarama producer partitions keyed records by FNV-1a (librdkafka's fnv1a matches it) and
        // null-keyed ones at random; it is called "sarama" unless the component sets clientId.
        config.set("partitioner", "fnv1a_random")
        config.set("client.id", "flowmeter-simulate")
        config.set("linger.ms", "5")
        for (key, value) in kafka.properties where key != "bootstrap.servers" { config.set(key, value) }
        self.simulator = simulator
        self.logger = logger
        self.producer = try KafkaProducer(config: config, logger: logger)
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let thread = Thread { [self] in
                        produceUntilStopped()
                        continuation.resume()
                    }
                    thread.name = "flowmeter-simulate-producer"
                    thread.start()
                }
            } onCancel: {
                stopRequested.withLock { $0 = true }
            }
        } onGracefulShutdown: {
            self.stopRequested.withLock { $0 = true }
        }
    }

    private func produceUntilStopped() {
        let epochMs = wallClockMs()
        var generator = simulator.makeGenerator(epochMs: epochMs)
        // Dead-letter copies whose original has no delivery report yet (they need its partition and offset);
        // they wait here, so a slow acknowledgement never holds up the rest of the traffic.
        var waiting: [(record: SimulatedRecord, deadline: ContinuousClock.Instant)] = []
        logger.info("Simulation started", metadata: ["simulate.seed": "\(simulator.seed)"])
        while !stopRequested.withLock({ $0 }) {
            if !waiting.isEmpty { waiting = sendWaitingCopies(waiting) }
            let wait = epochMs + generator.peekOffsetMs() - wallClockMs()
            if wait > 0 {
                Thread.sleep(forTimeInterval: Double(min(wait, waiting.isEmpty ? 50 : 5)) / 1000)
                continue
            }
            let record = generator.next()
            if record.deadLetter != nil, !sendCopy(record, giveUp: false) {
                waiting.append((record, ContinuousClock.now + .seconds(30)))
            } else if record.deadLetter == nil {
                send(record, headers: record.headers)
            }
        }
        var flushed = true
        do {
            try producer.flush(timeout: .seconds(10))
        } catch {
            flushed = false
            logger.warning("Producer flush incomplete", metadata: ["kafka.error": "\(error)"])
        }
        let counts = producer.deliveryCounts
        simulator.update {
            $0.skippedDeadLetters += waiting.count
            $0.delivered = counts.delivered
            $0.failed = counts.failed
        }
        producer.close(timeout: flushed ? .seconds(10) : .seconds(1))
    }

    /// Sends the waiting copies whose original is now acknowledged (or skips them); returns those still waiting.
    private func sendWaitingCopies(
        _ waiting: [(record: SimulatedRecord, deadline: ContinuousClock.Instant)]
    ) -> [(record: SimulatedRecord, deadline: ContinuousClock.Instant)] {
        let now = ContinuousClock.now
        return waiting.filter { entry in !sendCopy(entry.record, giveUp: now >= entry.deadline) }
    }

    /// Sends a dead-letter copy with its original's partition and offset (Dapr's `__partition` and `__offset`)
    /// once the original's delivery report is in. Returns false if the report is still outstanding (and
    /// `giveUp` is false); a copy whose original failed (or that gives up) is skipped and counted.
    private func sendCopy(_ record: SimulatedRecord, giveUp: Bool) -> Bool {
        guard let origin = record.deadLetter else { return true }
        let answer: (Int32, Int64)?? = originals.withLock { originals in
            switch originals[origin.originalPlanID] {
            case .delivered(let partition, let offset, let copies):
                originals[origin.originalPlanID] =
                    copies > 1 ? .delivered(partition: partition, offset: offset, copies: copies - 1) : nil
                return .some((partition, offset))
            case .failed(let copies):
                originals[origin.originalPlanID] = copies > 1 ? .failed(copies: copies - 1) : nil
                return .some(nil)
            case .pending(let copies):
                guard giveUp else { return nil }
                originals[origin.originalPlanID] = copies > 1 ? .pending(copies: copies - 1) : nil
                return .some(nil)
            case nil:
                return .some(nil)
            }
        }
        guard let answer else { return false }
        guard let (partition, offset) = answer else {
            simulator.update { $0.skippedDeadLetters += 1 }
            return true
        }
        send(record, headers: record.headers(originalPartition: partition, originalOffset: offset))
        return true
    }

    private func send(_ record: SimulatedRecord, headers: [RecordHeader]) {
        let message = ProducerMessage(
            topic: record.topic,
            key: record.key,
            value: record.value,
            headers: headers.map { KafkaHeader(name: $0.name, value: $0.value) },
            timestampMs: record.timestampMs
        )
        do {
            if record.deadLetterCopies > 0 {
                let planID = record.planID
                originals.withLock { $0[planID] = .pending(copies: record.deadLetterCopies) }
                try producer.send(message) { [self] result in
                    originals.withLock { originals in
                        guard case .pending(let copies) = originals[planID] else { return }
                        switch result {
                        case .success(let report):
                            originals[planID] = .delivered(
                                partition: report.partition,
                                offset: report.offset,
                                copies: copies
                            )
                        case .failure:
                            originals[planID] = .failed(copies: copies)
                        }
                    }
                }
            } else {
                try producer.send(message)
            }
            simulator.update {
                $0.produced[record.topic, default: 0] += 1
                let counts = producer.deliveryCounts
                $0.delivered = counts.delivered
                $0.failed = counts.failed
            }
        } catch {
            if record.deadLetterCopies > 0 {
                originals.withLock { $0[record.planID] = .failed(copies: record.deadLetterCopies) }
            }
            logger.warning(
                "Cannot produce a simulated record",
                metadata: ["kafka.topic": "\(record.topic)", "kafka.error": "\(error)"]
            )
        }
    }

}

private func wallClockMs() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
}

// MARK: - Subscriber groups

/// One LearnFlow app's Dapr subscription: a consumer group member that marks each record it handled and
/// auto-commits every second (sarama's behaviour in Dapr), normally, slowly, or stalling after a while (a poison
/// message in an infinite retry: no progress, no commits, still a member).
final class SimulatedSubscriber: Service {
    enum Mode: Sendable {
        case normal
        case slow(perSecond: Double)
        case stall(after: Duration)
    }

    private let group: String
    private let topics: [String]
    private let mode: Mode
    private let consumer: KafkaConsumer
    private let logger: Logger
    private let onProcessed: @Sendable (Int) -> Void
    private let onStall: @Sendable () -> Void
    private let stopRequested = Mutex(false)

    init(
        group: String,
        topics: [String],
        mode: Mode,
        kafka: KafkaClientConfig,
        logger: Logger,
        onProcessed: @escaping @Sendable (Int) -> Void,
        onStall: @escaping @Sendable () -> Void
    ) throws(KafkaError) {
        var config = KafkaClientConfig(bootstrapServers: kafka.value(for: "bootstrap.servers") ?? "")
        // Dapr: initialOffset oldest (LearnFlow's component), mark after handling, auto-commit every second.
        config.set("auto.offset.reset", "earliest")
        config.set("enable.auto.commit", "true")
        config.set("auto.commit.interval.ms", "1000")
        config.set("enable.auto.offset.store", "false")
        config.set("client.id", "flowmeter-simulate-\(group)")
        config.set("fetch.wait.max.ms", "100")
        for (key, value) in kafka.properties where key != "bootstrap.servers" { config.set(key, value) }
        self.group = group
        self.topics = topics
        self.mode = mode
        self.logger = logger
        self.onProcessed = onProcessed
        self.onStall = onStall
        self.consumer = try KafkaConsumer(config: config, groupID: group, logger: logger)
    }

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let thread = Thread { [self] in
                        do {
                            try consumeUntilStopped()
                            continuation.resume()
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                    thread.name = "flowmeter-simulate-\(group)"
                    thread.start()
                }
            } onCancel: {
                stopRequested.withLock { $0 = true }
            }
        } onGracefulShutdown: {
            self.stopRequested.withLock { $0 = true }
        }
    }

    private func consumeUntilStopped() throws {
        defer { consumer.close() }
        try consumer.subscribe(topics: topics)
        let started = ContinuousClock.now
        var stalled = false
        var paused: [TopicPartition] = []
        var nextSlot = ContinuousClock.now
        while !stopRequested.withLock({ $0 }) {
            switch mode {
            case .stall(let after) where !stalled && ContinuousClock.now - started >= after:
                stalled = true
                onStall()
                logger.info("Simulated group stalls", metadata: ["simulate.group": "\(group)"])
            default:
                break
            }
            if stalled {
                // Still a member (polling serves the group protocol), but nothing is handled or committed.
                let assignment = (try? consumer.assignment()) ?? []
                if assignment != paused {
                    try? consumer.pause(assignment)
                    paused = assignment
                }
                _ = try consumer.poll(timeout: .milliseconds(100))
                continue
            }
            if case .slow(let perSecond) = mode {
                let now = ContinuousClock.now
                if nextSlot > now {
                    Thread.sleep(forTimeInterval: min(0.1, Double((nextSlot - now).milliseconds) / 1000))
                    continue
                }
                guard let record = try consumer.poll(timeout: .milliseconds(100)) else { continue }
                try consumer.storeOffsets(processed: [record.topicPartition: record.offset])
                onProcessed(1)
                nextSlot = max(nextSlot, now - .seconds(1)) + .milliseconds(Int64((1000 / perSecond).rounded()))
                continue
            }
            let batch = try consumer.pollBatch(maxRecords: 500, timeout: .milliseconds(100))
            guard !batch.isEmpty else { continue }
            var last: [TopicPartition: Int64] = [:]
            for record in batch { last[record.topicPartition] = max(last[record.topicPartition] ?? -1, record.offset) }
            try consumer.storeOffsets(processed: last)
            onProcessed(batch.count)
        }
        if !stalled { try? consumer.commitStored() }
    }
}

extension Duration {
    fileprivate var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

// MARK: - Reporting and stopping

/// Prints what the simulation produced, every `interval`.
final class SimulationReporter: Service {
    private let simulator: Simulator
    private let interval: Duration
    private let printLine: @Sendable (String) -> Void

    init(simulator: Simulator, interval: Duration, printLine: @escaping @Sendable (String) -> Void) {
        self.simulator = simulator
        self.interval = interval
        self.printLine = printLine
    }

    func run() async throws {
        let simulator = self.simulator
        let interval = self.interval
        let printLine = self.printLine
        try? await cancelWhenGracefulShutdown {
            let started = ContinuousClock.now
            var previous = simulator.snapshot
            var previousTime = started
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                let now = ContinuousClock.now
                let current = simulator.snapshot
                printLine(Self.line(current, previous: previous, elapsed: now - started, window: now - previousTime))
                previous = current
                previousTime = now
            }
        }
    }

    static func line(
        _ current: SimulationSnapshot,
        previous: SimulationSnapshot,
        elapsed: Duration,
        window: Duration
    ) -> String {
        let seconds = max(0.001, Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18)
        let produced = current.producedTotal - previous.producedTotal
        var text = "[\(formatClock(elapsed))] produced \(produced) (\(formatNumber(Double(produced) / seconds))/s)"
        let topics = LearnFlowCatalog.topics.map {
            "\($0) \((current.produced[$0] ?? 0) - (previous.produced[$0] ?? 0))"
        }
        text += ": " + topics.joined(separator: ", ")
        text += ", dead letters \(current.deadLetters - previous.deadLetters)"
        let groups = LearnFlowCatalog.groupNames.map { group in
            let count = (current.consumed[group] ?? 0) - (previous.consumed[group] ?? 0)
            return "\(group) \(count)\(current.stalled.contains(group) ? " (stalled)" : "")"
        }
        text += " | consumed: " + groups.joined(separator: ", ")
        if current.failed > 0 { text += " | broker refused \(current.failed)" }
        return text
    }

    static func finalLine(_ snapshot: SimulationSnapshot) -> String {
        var text = "done: produced \(snapshot.producedTotal) records (\(snapshot.deadLetters) dead-letter copies); "
        text += "the broker acknowledged \(snapshot.delivered)"
        if snapshot.failed > 0 { text += ", refused \(snapshot.failed)" }
        let unacknowledged = snapshot.producedTotal - snapshot.delivered - snapshot.failed
        if unacknowledged > 0 { text += ", \(unacknowledged) unacknowledged" }
        if snapshot.skippedDeadLetters > 0 {
            text += "; \(snapshot.skippedDeadLetters) dead-letter copies skipped (original not acknowledged)"
        }
        return text
    }
}

/// Returns after `duration`, which (configured with `.gracefullyShutdownGroup`) shuts the group down.
final class StopAfter: Service {
    private let duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: self.duration)
        }
    }
}

/// `mm:ss` (or `h:mm:ss`).
func formatClock(_ duration: Duration) -> String {
    let total = duration.components.seconds
    func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return total >= 3600
        ? "\(total / 3600):\(two(total / 60 % 60)):\(two(total % 60))" : "\(two(total / 60)):\(two(total % 60))"
}

/// A number with at most one decimal, without a trailing `.0`.
func formatNumber(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
    if abs(value) < 1 { return String(format: "%.3g", value) }
    return String(format: "%.1f", value)
}
