public import FlowmeterCore
import Foundation
import Kafka
public import Logging
import Synchronization

/// What a backfill did.
public struct BackfillSummary: Sendable, CustomStringConvertible {
    /// Records analyzed.
    public var records: Int64
    /// Partitions read to their end.
    public var partitions: Int
    /// Wall time.
    public var seconds: Double
    /// Whether everything was flushed to PostgreSQL (always true without PostgreSQL).
    public var flushed: Bool
    /// The bound on pending flow requests and on early responses the backfill ran with.
    public var flowBound: Int = 0
    /// Pending flow requests and early responses evicted by that bound (their flows count as evicted, not matched).
    public var flowRequestsEvicted: Int64 = 0
    public var earlyResponsesEvicted: Int64 = 0

    /// Records per second.
    public var rate: Double { seconds > 0 ? Double(records) / seconds : 0 }

    public var description: String {
        let rate = Int(self.rate.rounded())
        return "backfill complete: \(records) records from \(partitions) partitions in "
            + "\(String(format: "%.1f", seconds)) s (\(rate) records/s)"
            + (flushed ? "" : "; WARNING: the last flush to PostgreSQL failed, run again to finish")
            + (flowRequestsEvicted + earlyResponsesEvicted == 0
                ? ""
                : "\nWARNING: the flow bound of \(flowBound) (--max-pending-flow-requests) evicted "
                    + "\(flowRequestsEvicted) flow requests and \(earlyResponsesEvicted) early responses: the backlog "
                    + "holds more unmatched requests or responses at once than that (partitions are read in the order "
                    + "librdkafka fetches them), and those flows count as evicted, not matched")
    }
}

/// `flowmeter backfill --until-end`: the `run` pipeline from the stored offsets (or `--from`, default `earliest`)
/// to the end offsets captured at start, then a summary.
public enum Backfill {
    /// Consumer settings of a backfill, unless `--kafka-property` sets them: `fetch.wait.max.ms` 10 (librdkafka's
    /// default is 500).
    ///
    /// A fetch whose partitions are all empty (empty dead-letter topics, typically) is held by the broker that long,
    /// and a broker answers the requests of a connection in order, so the offset lookups queued behind it wait too. In
    /// librdkafka's debug log of a backfill, the first fetch (for the empty dead-letter partitions, whose start offsets
    /// were known first) held the start-offset answers of the other 215 partitions for 0.5 s; records arrived 0.3-1.3 s
    /// after the assignment, 0.15-0.35 s with 10 ms (per-thread traces). A backfill reads a backlog: waiting for new
    /// records is of no use to it.
    ///
    /// The prefetch is librdkafka's (100,000 records or 64 MiB). Until the eighth session a backfill raised it to
    /// 1,000,000 records or 128 MiB, because librdkafka 2.0.2's fetcher sleeps up to 1 s once the queue is over either
    /// threshold and a fast reader emptied the queue before it woke; the consumer's fetcher wake-ups (see
    /// `KafkaConsumer(readAhead:)`) end those waits, and with them the deeper queue was no faster and cost ~100 MB of
    /// peak RSS (4 alternating runs of 1,000,000 records: 6.38-6.62 s and 303-318 MB with the defaults, 6.53-7.09 s and
    /// 382-420 MB with the deeper queue).
    static let consumerDefaults: [(key: String, value: String)] = [
        ("fetch.wait.max.ms", "10")
    ]

    /// The bound on pending flow requests (and, apart, on early responses) of a backfill, unless
    /// `--max-pending-flow-requests` sets it or the analyzer file's `limits.max_pending_flow_requests` is larger.
    ///
    /// A backlog is read in the order librdkafka fetches its partitions (about a megabyte of each in turn), not in
    /// event time, so a request and its response may be read hundreds of thousands of records apart. `run`'s default
    /// of 100,000 evicted, in one 1,000,000-record LearnFlow backfill, 82,806 of 166,667 `lesson` pairs and 133,989
    /// of 166,666 `submission-to-progress` pairs, left unmatched; with 1,000,000 every pair matched. By the sizes of
    /// its slot, key index, queue, heap and journal entries (not measured) a waiter costs about 250 bytes, so a full
    /// bound is ~250 MB each for requests and early responses; the memory is taken only as the backlog needs it.
    public static let flowBoundDefault = 1_000_000

    /// Runs a backfill.
    ///
    /// - Parameters:
    ///   - maxPendingFlowRequests: The bound on pending flow requests and on early responses (`nil`: the larger of
    ///     ``flowBoundDefault`` and the analyzer file's limit).
    ///   - report: Receives progress text: with `interactive`, a bar to redraw in place (no newline); otherwise
    ///     plain lines.
    public static func run(
        configuration: FlowmeterConfiguration,
        analyzers: AnalyzerSet,
        maxPendingFlowRequests: Int? = nil,
        logger: Logger,
        interactive: Bool,
        report: @escaping @Sendable (String) -> Void
    ) async throws -> BackfillSummary {
        let started = ContinuousClock.now
        var analyzers = analyzers
        analyzers.limits.maxPendingFlowRequests =
            maxPendingFlowRequests ?? max(analyzers.limits.maxPendingFlowRequests, flowBoundDefault)
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(
                bootstrapServers: configuration.bootstrapServers,
                properties: configuration.kafkaProperties.map { (key: $0.key, value: $0.value) }
            ),
            logger: logger
        )
        defer { admin.close() }
        var configuration = configuration
        for (key, value) in consumerDefaults where !configuration.kafkaProperties.contains(where: { $0.key == key }) {
            configuration.kafkaProperties.append(KafkaProperty(key: key, value: value, source: .default))
        }
        let shared = SharedEngine(AnalysisEngine(analyzers: analyzers, clock: .external))
        let status = RunStatus()
        let flushMetrics = FlushMetrics()
        let progress = BackfillProgress()
        let finish = FinishLine()
        let intake = Intake(
            configuration: configuration,
            analyzers: analyzers,
            shared: shared,
            status: status,
            flushMetrics: flushMetrics,
            mode: .untilEnd(finish),
            progress: progress,
            logger: logger
        )
        let termination = TerminationSignals(exitOnStdinClose: false)
        let stopper = Task {
            for await reason in termination.reasons {
                logger.warning("Backfill interrupted; flushing what was analyzed", metadata: ["reason": "\(reason)"])
                intake.stop()
            }
        }
        defer { stopper.cancel() }
        // The intake joins its group (3 s on the mock) while the end offsets are captured; it cannot finish before
        // they are set. (If the capture fails, leaving this scope cancels the intake, which stops it.)
        async let intakeRun: Void = intake.run()
        // The end offsets captured now are the finish line; records produced later are left for `run`.
        let topics = try await admin.topics().filter {
            analyzers.isAnalyzed(topic: $0.key) || analyzers.isDeadLetterTopic($0.key)
        }
        // Asked several at a time (one at a time took 40 ms for the benchmark's 216 partitions on loopback, and would
        // take seconds for thousands of partitions across a network).
        let partitions = topics.flatMap { topic, count in
            (0..<count).map { TopicPartition(topic, $0) }
        }
        let answers = await admin.watermarks(of: partitions, timeout: .seconds(10))
        var targets: [TopicPartition: Int64] = [:]
        var total: Int64 = 0
        for (partition, answer) in answers {
            let marks = try answer.get()
            if marks.high > marks.low {
                targets[partition] = marks.high
                total += marks.high - marks.low
            }
        }
        finish.set(targets)
        let span = total
        report("backfill: \(targets.count) non-empty partitions of \(topics.count) topics, up to \(span) records\n")
        let reporter = Task {
            var last = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(interactive ? 250 : 5000))
                let done = progress.records
                let elapsed = ContinuousClock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let rate = seconds > 0 ? Int(Double(done) / seconds) : 0
                if interactive {
                    let fraction = span > 0 ? min(1, Double(done) / Double(span)) : 1
                    let filled = Int(fraction * 30)
                    let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: 30 - filled)
                    report("\r[\(bar)] \(Int(fraction * 100))% \(done)/\(span) records, \(rate)/s ")
                } else if ContinuousClock.now - last >= .seconds(5) {
                    report("backfill: \(done) records analyzed, \(rate)/s\n")
                    last = ContinuousClock.now
                }
            }
        }
        defer { reporter.cancel() }
        try await intakeRun
        reporter.cancel()
        if interactive { report("\n") }
        let elapsed = ContinuousClock.now - started
        let flushed =
            configuration.postgresURL == nil
            || flushMetrics.state.withLock { $0.unflushedRecords == 0 && $0.postgresUp == true }
        let (requestsEvicted, responsesEvicted) = shared.engine.withLock {
            ($0.flowRequestsEvicted, $0.earlyResponsesEvicted)
        }
        return BackfillSummary(
            records: progress.records,
            partitions: targets.count,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            flushed: flushed,
            flowBound: analyzers.limits.maxPendingFlowRequests,
            flowRequestsEvicted: requestsEvicted,
            earlyResponsesEvicted: responsesEvicted
        )
    }
}
