import FlowmeterCore
import Foundation
import Kafka
import Logging
import Postgres
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

/// How the intake ends.
enum IntakeMode: Sendable {
    /// Until shutdown.
    case continuous
    /// Until every partition has reached the end offset captured at start (`backfill --until-end`).
    case untilEnd(FinishLine)
}

/// The end offsets a backfill reads to, set once they are captured: the intake joins its group meanwhile, and
/// cannot finish before they are set.
final class FinishLine: Sendable {
    private let offsets = Mutex<[TopicPartition: Int64]?>(nil)

    /// The end offsets, once set.
    var targets: [TopicPartition: Int64]? { offsets.withLock { $0 } }

    func set(_ targets: [TopicPartition: Int64]) {
        offsets.withLock { $0 = targets }
    }
}

/// Reads the analyzed topics in Flowmeter's own consumer group and feeds every record to the engine.
///
/// The poll loop runs on a thread of its own (librdkafka's and libpq's calls block). With PostgreSQL, the
/// rollup deltas and the next offset of every partition are written in one transaction every flush interval and
/// before partitions are given up; on assignment, partitions start at the offsets stored there. Without it,
/// processed offsets are committed to Kafka every flush interval, so a restart resumes from the group's commit.
final class Intake: Service {
    private let configuration: FlowmeterConfiguration
    private let analyzers: AnalyzerSet
    private let shared: SharedEngine
    private let status: RunStatus
    private let flushMetrics: FlushMetrics
    private let mode: IntakeMode
    private let progress: BackfillProgress?
    private let logger: Logger
    private let stopRequested = Mutex(false)
    /// The waiter of ``run()``, resumed once: when the intake thread ends, or by the close watchdog.
    private let waiter = Mutex<CheckedContinuation<Void, any Error>?>(nil)
    /// How long leaving the group may take after the last flush before ``run()`` returns without it.
    static let closeDeadline: Duration = .seconds(10)
    /// The intake's consumer while it runs (the lag monitor reads its cached watermarks).
    let consumerBox = ConsumerBox()

    init(
        configuration: FlowmeterConfiguration,
        analyzers: AnalyzerSet,
        shared: SharedEngine,
        status: RunStatus,
        flushMetrics: FlushMetrics,
        mode: IntakeMode = .continuous,
        progress: BackfillProgress? = nil,
        logger: Logger
    ) {
        self.configuration = configuration
        self.analyzers = analyzers
        self.shared = shared
        self.status = status
        self.flushMetrics = flushMetrics
        self.mode = mode
        self.progress = progress
        self.logger = logger
    }

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    waiter.withLock { $0 = continuation }
                    let thread = Thread { [self] in
                        setCurrentThreadName("fm-intake")
                        do {
                            let pipeline = try Pipeline(intake: self)
                            try pipeline.run(until: { self.stopRequested.withLock { $0 } })
                            finish(.success(()))
                        } catch {
                            status.intakeFailed("\(error)")
                            finish(.failure(error))
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

    func stop() {
        stopRequested.withLock { $0 = true }
    }

    private func finish(_ result: Result<Void, any Error>) {
        waiter.withLock { waiter in
            defer { waiter = nil }
            return waiter
        }?.resume(with: result)
    }

    /// Called once everything is flushed, before the consumer leaves the group. librdkafka's consumer close
    /// waits for queued commits and the group leave, for as long as the coordinator is unreachable: past the
    /// deadline ``run()`` returns without it, so a Kafka outage cannot hold shutdown up until the service group
    /// gives up (nothing is lost: the offsets are in PostgreSQL, or only a visibility commit is missed).
    fileprivate func drained() {
        let thread = Thread { [self] in
            Thread.sleep(forTimeInterval: Double(Self.closeDeadline.components.seconds))
            guard waiter.withLock({ $0 != nil }) else { return }
            logger.warning(
                "Leaving the consumer group takes too long (Kafka unreachable?); stopping without waiting for it",
                metadata: ["deadline": "\(Self.closeDeadline)"]
            )
            finish(.success(()))
        }
        thread.name = "flowmeter-close-watchdog"
        thread.start()
    }

    /// The intake thread's state. Everything here runs on that one thread: the loop, and the rebalance handler
    /// (librdkafka calls it from inside `poll`).
    private final class Pipeline: @unchecked Sendable {
        // @unchecked: confined to the intake thread (see above); the handler closures only run there.
        let intake: Intake
        let sink: RollupSink?
        var consumerBox: ConsumerBox { intake.consumerBox }
        var consumer: KafkaConsumer!
        let flushIntervalMs: Int64
        /// At most this many analyzed records wait for PostgreSQL before intake pauses
        /// (`FLOWMETER_MAX_UNFLUSHED_RECORDS`, default 1,000,000, and 4,000,000 for a backfill). A flush of a
        /// backlog costs about the same whatever its size (it mostly rewrites the pending-flow set), so larger
        /// flushes mean less work in all; a backfill's crash re-reads at most that many records.
        let maxUnflushedRecords: Int
        /// A flush starts before the interval is up once this many records are unflushed (half the pause bound): a
        /// backlog or a backfill is written in steady chunks instead of filling the bound and waiting, paused, for the
        /// interval. Not while a failed flush waits for its retry (`flushFailing`).
        var flushSizeRecords: Int { max(1, maxUnflushedRecords / 2) }
        var flushFailing = false
        /// The flush the flush thread is writing while intake goes on analyzing (at most one).
        var inFlight: FlushInFlight?
        let flusher = Flusher()

        /// Deltas and next offsets analyzed since the last successful flush.
        var pendingDelta = RollupDelta()
        var pendingNext: [TopicPartition: Int64] = [:]
        /// Changes to the pending flow requests since the last successful flush.
        var pendingFlows = PendingFlowChanges.empty
        /// Whether the engine holds the pending flow requests stored in PostgreSQL (read before the first record).
        var pendingRestored = false
        var unflushedRecords = 0
        var nextFlushAtMs: Int64 = 0
        var backoffMs: Int64 = 1000
        /// Intake paused because too much is unflushed (PostgreSQL down).
        var paused = false
        /// Unflushed state had to be dropped, or stored offsets could not be read on assignment: records are
        /// dropped and partitions paused until the engine and positions are re-read from PostgreSQL.
        var needsResync = false
        var resyncPaused = false
        var nextResyncAtMs: Int64 = 0
        /// Highest processed offset + 1 per partition, or the start offset chosen on assignment (for backfill
        /// completion: a partition whose stored offset is already its end never fetches anything).
        var reached: [TopicPartition: Int64] = [:]
        /// Backfill: the partitions whose target offset was not reached yet (built at the first check), and the
        /// partitions the last batch read, so that the last batch ends the backfill without waiting out an empty
        /// poll (100 ms).
        var targetsOpen: Set<TopicPartition>?
        var lastBatchPartitions: [TopicPartition] = []
        var records: Int64 = 0
        /// Monotonic nanoseconds spent polling since the first record, outside analyzing (waiting for Kafka, and
        /// librdkafka's per-message work), and when the first record arrived after the first assignment: the intake's
        /// log line at the end says whether a run was limited by Kafka or by the analysis.
        var pollNanoseconds: UInt64 = 0
        var firstRecordAt: UInt64?
        var assignedAt: UInt64?
        var nextWatermarkAtMs: Int64 = 0
        var nextWatermarkReportAtMs: Int64 = 0
        /// The latest record timestamp read from each partition.
        var latestTimestamp: [TopicPartition: Int64] = [:]
        /// Since when each partition has been read to its (cached) end.
        var atEndSinceMs: [TopicPartition: Int64] = [:]
        var lastErrorCount = 0
        var lastErrorAtMs: Int64 = .min / 2
        /// The repartition topic for flows across replicas (nil without flows, or when it cannot be had).
        let repartition: FlowRepartition?

        init(intake: Intake) throws {
            self.intake = intake
            let backfill = if case .untilEnd = intake.mode { true } else { false }
            maxUnflushedRecords =
                ProcessInfo.processInfo.environment["FLOWMETER_MAX_UNFLUSHED_RECORDS"].flatMap { Int($0) }.map {
                    max(1, $0)
                } ?? (backfill ? 4_000_000 : 1_000_000)
            self.sink = intake.configuration.postgresURL.map {
                RollupSink(url: $0, group: intake.configuration.group, logger: intake.logger)
            }
            let interval = intake.configuration.flushInterval.components
            flushIntervalMs = interval.seconds * 1000 + interval.attoseconds / 1_000_000_000_000_000
            if sink == nil { intake.flushMetrics.postgres(up: true, problem: nil) }
            // A backfill reads every partition itself and correlates in memory (run it alone in its group).
            if case .continuous = intake.mode {
                repartition = FlowRepartition.open(
                    configuration: intake.configuration,
                    analyzers: intake.analyzers,
                    logger: intake.logger
                )
            } else {
                repartition = nil
            }
        }

        var logger: Logger { intake.logger }

        func run(until stop: () -> Bool) throws {
            let backfill = if case .untilEnd = intake.mode { true } else { false }
            let handler = RebalanceHandler(
                onAssign: { [self] partitions in assigned(partitions) },
                onRevoke: { [self] partitions, lost in revoked(partitions, lost: lost) }
            )
            var properties: [(key: String, value: String)] = [
                ("auto.offset.reset", intake.configuration.from == .earliest ? "earliest" : "latest"),
                ("client.id", "flowmeter"),
            ]
            properties += intake.configuration.kafkaProperties.map { (key: $0.key, value: $0.value) }
            consumer = try KafkaConsumer(
                config: KafkaClientConfig(
                    bootstrapServers: intake.configuration.bootstrapServers,
                    properties: properties
                ),
                groupID: intake.configuration.group,
                rebalance: handler,
                // Backfill only: headers parsed and batches destroyed on a second thread while this one analyzes,
                // and the fetcher kept awake. A `run` test (100,000 records of a cardinality attack, with the flow
                // repartition topic) once stalled with it in CI, not understood yet; `run` keeps the plain consumer.
                readAhead: backfill,
                valueWork: backfill ? Intake.prescanWork(intake.shared.engine.withLock { $0.decoderOptions }) : nil,
                logger: logger
            )
            consumerBox.set(consumer)
            defer {
                consumerBox.set(nil)
                consumer.close()
                repartition?.close()
            }
            let subscriptions = intake.analyzers.subscriptionTopics() + (repartition.map { [$0.topic] } ?? [])
            try consumer.subscribe(topics: subscriptions)
            // Connect to PostgreSQL and migrate while librdkafka joins the group, not in the assignment callback
            // after it (73 ms with a fresh database in a traced backfill). A failure here is retried, and reported, there.
            if let sink { _ = try? sink.ready() }
            logger.info(
                "Consuming",
                metadata: [
                    "kafka.group": "\(intake.configuration.group)", "kafka.subscriptions": "\(subscriptions)",
                    "rollups": "\(sink == nil ? "off (no --postgres)" : "PostgreSQL")",
                ]
            )
            nextFlushAtMs = Intake.nowMs() + flushIntervalMs
            while !stop() {
                // Records are analyzed where librdkafka holds them (no copies); they are released after the batch.
                let pollStart = DispatchTime.now().uptimeNanoseconds
                var bodyNanoseconds: UInt64 = 0
                let (batchCount, now) = try consumer.pollBatch(maxRecords: 2000, timeout: .milliseconds(100)) { batch in
                    let bodyStart = DispatchTime.now().uptimeNanoseconds
                    defer { bodyNanoseconds = DispatchTime.now().uptimeNanoseconds - bodyStart }
                    if firstRecordAt == nil, batch.count > 0 { firstRecordAt = bodyStart }
                    let now = Intake.nowMs()
                    if needsResync {
                        resync(now: now)
                    } else {
                        analyze(batch, now: now)
                    }
                    return (batch.count, now)
                }
                if firstRecordAt != nil {
                    pollNanoseconds += DispatchTime.now().uptimeNanoseconds - pollStart - bodyNanoseconds
                }
                if sink != nil {
                    if inFlight != nil, let result = flusher.take() { finishInFlight(result, now: now) }
                    let unsent = unflushedRecords - (inFlight?.records ?? 0)
                    if now >= nextFlushAtMs || (!flushFailing && unsent >= flushSizeRecords) {
                        startFlush(now: now)
                    }
                    applyBackPressure()
                } else if now >= nextFlushAtMs {
                    sendProgress(now: now)
                    commitProcessedToKafka()
                    nextFlushAtMs = now + flushIntervalMs
                }
                publishBacklog()
                if case .untilEnd(let finish) = intake.mode, !needsResync, let targets = finish.targets,
                    batchCount == 0 || allTargetsReached(targets)
                {
                    if try backfillComplete(targets) { break }
                }
            }
            // Drain: the flush in flight, then one last flush (retried briefly) before the consumer leaves the group.
            waitForInFlight()
            if sink != nil, !needsResync {
                for attempt in 0..<5 where !flush(now: Intake.nowMs()) {
                    Thread.sleep(forTimeInterval: 0.2 * Double(attempt + 1))
                }
            } else if sink == nil {
                commitProcessedToKafka()
            }
            publishBacklog()
            let readAhead = consumer.readAheadStatistics
            var firstRecordDelay = "-"
            if let firstRecordAt, let assignedAt, firstRecordAt >= assignedAt {
                firstRecordDelay = "\((firstRecordAt - assignedAt) / 1_000_000)"
            }
            logger.info(
                "Intake stopped",
                metadata: [
                    "records": "\(records)", "read_ahead.batches": "\(readAhead.batches)",
                    "read_ahead.parsed": "\(readAhead.parsedAhead)",
                    "read_ahead.caller_waits": "\(readAhead.callerWaits)",
                    "read_ahead.fetch_wakeups": "\(readAhead.fetchWakeups)",
                    "intake.cpu_ms": "\(Intake.threadCPUMilliseconds())",
                    "intake.poll_ms": "\(pollNanoseconds / 1_000_000)",
                    "intake.first_record_after_assignment_ms": "\(firstRecordDelay)",
                ]
            )
            intake.drained()
        }

        // MARK: Analysis

        func analyze(_ batch: borrowing BorrowedRecordBatch, now: Int64) {
            if now >= nextWatermarkAtMs {
                nextWatermarkAtMs = now + 200
                let clock = repartition?.routing == true ? repartition?.markerClock() : watermark(now: now)
                if let clock {
                    intake.shared.engine.withLock { $0.advance(nowMs: clock) }
                }
            }
            guard !batch.isEmpty else { return }
            // A batch holds runs of one partition (a fetch is per partition): the per-partition maps (hashing a topic
            // name each time) are updated once per run, with the run's last offset and latest timestamp.
            var runs: [(partition: TopicPartition, next: Int64, latest: Int64)] = []
            let repartition = self.repartition
            let hops = intake.shared.engine.withLock { engine in
                // The current run in separate variables: a tuple holding the topic would be copied (a retain and a
                // release of the topic string) for every record.
                var runTopic: String?
                var runPartition: Int32 = 0
                var runNext: Int64 = 0
                var runLatest: Int64 = 0
                // One header array for the batch, refilled per record (its storage is allocated once).
                var headers: [RecordHeader] = []
                batch.forEachRecord { record in
                    if let repartition, record.topic == repartition.topic {
                        repartition.receive(record, engine: &engine)
                    } else {
                        Intake.feed(record, to: &engine, receivedAtMs: now, headers: &headers)
                    }
                    let stamp = record.timestampMs > 0 ? record.timestampMs : now
                    if runPartition == record.partition, runTopic == record.topic {
                        runNext = record.offset + 1
                        runLatest = max(runLatest, stamp)
                    } else {
                        if let topic = runTopic {
                            runs.append((TopicPartition(topic, runPartition), runNext, runLatest))
                        }
                        runTopic = record.topic
                        (runPartition, runNext, runLatest) = (record.partition, record.offset + 1, stamp)
                    }
                }
                if let topic = runTopic { runs.append((TopicPartition(topic, runPartition), runNext, runLatest)) }
                return engine.flowHopsWaiting > 0 ? engine.takeFlowHops() : []
            }
            if !hops.isEmpty, let repartition {
                do {
                    try repartition.send(hops)
                } catch {
                    // Queued hops that cannot be written: the work since the last flush is read again.
                    logger.warning(
                        "Cannot write flow hops; re-reading from stored offsets",
                        metadata: ["kafka.error": "\(error)"]
                    )
                    if sink != nil { dropUnflushed() }
                }
            }
            lastBatchPartitions.removeAll(keepingCapacity: true)
            for (partition, next, latest) in runs {
                lastBatchPartitions.append(partition)
                pendingNext[partition] = next
                reached[partition] = next
                if latest > latestTimestamp[partition] ?? .min {
                    latestTimestamp[partition] = latest
                }
            }
            unflushedRecords += batch.count
            records += Int64(batch.count)
            intake.progress?.advance(by: batch.count)
        }

        /// The event-time watermark that expires flow requests: the minimum over the assigned partitions of the
        /// latest timestamp read from each, where a partition read to the end offset librdkafka last saw counts as
        /// `now`. `nil` while some partition has neither (nothing read yet): its records may hold responses.
        ///
        /// A single "largest timestamp seen" clock would let a fast partition (a small topic read to its end
        /// first) expire requests whose responses are still unread in a slower one.
        func watermark(now: Int64) -> Int64? {
            let assignment = intake.status.state.withLock { $0.assignment }
            guard !assignment.isEmpty else { return nil }
            let known = contributions(of: Array(assignment), now: now)
            var result = Int64.max
            for partition in assignment {
                guard let contribution = known[partition] else {
                    if now >= nextWatermarkReportAtMs {
                        nextWatermarkReportAtMs = now + 10_000
                        logger.debug(
                            "Flow clock held back: a partition has no position or timestamp yet",
                            metadata: [
                                "kafka.partition": "\(partition)",
                                "kafka.high": "\(consumer.cachedWatermarks(partition).map { "\($0.high)" } ?? "none")",
                            ]
                        )
                    }
                    return nil
                }
                result = min(result, contribution)
            }
            return result == .min || result == .max ? nil : result
        }

        /// Each partition's contribution to the watermark (see ``watermark(now:)``); partitions with none yet are
        /// absent.
        func contributions(of assignment: [TopicPartition], now: Int64) -> [TopicPartition: Int64] {
            // librdkafka's cached end offsets go stale while fetches fail: after any Kafka error, no partition
            // counts as read to its end (now) until a quiet period has passed.
            let errors = consumer.errorsSeen
            if errors != lastErrorCount {
                lastErrorCount = errors
                lastErrorAtMs = now
            }
            let quiet = now - lastErrorAtMs >= Self.idleGraceMs
            var unknownPosition: [TopicPartition] = []
            var result: [TopicPartition: Int64] = [:]
            for partition in assignment {
                let high = consumer.cachedWatermarks(partition)?.high
                if let high, let next = reached[partition] {
                    result[partition] = atEnd(partition, next >= high, quiet: quiet, now: now)
                } else if high == 0 {
                    // An empty partition (librdkafka has no position for it until a record is read).
                    result[partition] = atEnd(partition, true, quiet: quiet, now: now)
                } else if high != nil {
                    unknownPosition.append(partition)
                } else if let latest = latestTimestamp[partition] {
                    result[partition] = latest
                }
            }
            if !unknownPosition.isEmpty, let positions = try? consumer.position(unknownPosition) {
                for partition in unknownPosition {
                    guard let position = positions[partition] ?? nil,
                        let high = consumer.cachedWatermarks(partition)?.high, position >= high
                    else { continue }
                    result[partition] = atEnd(partition, true, quiet: quiet, now: now)
                }
            }
            return result.filter { $0.value != .min }
        }

        /// While routing: tells every shard how far this replica has written the hops of its flow source partitions.
        func sendProgress(now: Int64) {
            guard let repartition, repartition.routing, !needsResync else { return }
            let entries = contributions(of: repartition.ownedSources, now: now).map {
                FlowProgressMarker.Entry(topic: $0.key.topic, partition: $0.key.partition, watermarkMs: $0.value)
            }
            repartition.sendProgress(entries.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }, now: now)
        }

        /// How long a partition must have been read to its end, with no Kafka error meanwhile, before it counts
        /// as `now` in the watermark (an idle partition must not hold flow expiry back forever, and a partition
        /// that only looks finished because its fetches fail must not push it forward).
        static let idleGraceMs: Int64 = 5_000

        /// A partition's contribution to the watermark: its latest timestamp, or `now` once it has been read to
        /// its end for the grace period in quiet conditions.
        func atEnd(_ partition: TopicPartition, _ isAtEnd: Bool, quiet: Bool, now: Int64) -> Int64 {
            // While intake is paused nothing is fetched: librdkafka's end offsets stop moving, so a partition that
            // looks read to its end may have records waiting (the responses of pending requests among them).
            guard isAtEnd, !paused, !resyncPaused else {
                atEndSinceMs.removeValue(forKey: partition)
                return latestTimestamp[partition] ?? .min
            }
            let since = atEndSinceMs[partition] ?? now
            atEndSinceMs[partition] = since
            if quiet && now - since >= Self.idleGraceMs { return now }
            return latestTimestamp[partition] ?? .min
        }

        // MARK: Flushing

        /// Writes everything unflushed and the next offsets in one transaction, then commits to Kafka, waiting for
        /// it (and for a flush already in flight first).
        /// - Returns: whether PostgreSQL has everything now.
        @discardableResult
        func flush(now: Int64) -> Bool {
            guard sink != nil else { return true }
            waitForInFlight()
            guard startFlush(now: now) else { return false }
            guard inFlight != nil else { return true }
            waitForInFlight()
            return !flushFailing
        }

        /// Starts a flush on the flush thread: what is unflushed now (rollups, next offsets, pending-flow changes,
        /// repartition marks) is handed over in one transaction, and intake goes on analyzing into fresh deltas
        /// meanwhile. Hops written since the last flush are acknowledged by Kafka first, here, so that they always
        /// leave before their source offsets are stored. The result is taken by ``finishInFlight(_:now:)``.
        /// - Returns: `false` if the flush could not start (it is retried after the backoff).
        @discardableResult
        func startFlush(now: Int64) -> Bool {
            guard let sink else { return true }
            guard inFlight == nil else { return true }
            sendProgress(now: now)
            let (delta, changes) = intake.shared.engine.withLock { ($0.takeRollupDelta(), $0.takePendingChanges()) }
            pendingDelta.merge(delta)
            pendingFlows.absorb(changes)
            let marks = repartition?.pendingMarks ?? []
            guard !pendingDelta.isEmpty || !pendingNext.isEmpty || !pendingFlows.isEmpty || !marks.isEmpty else {
                nextFlushAtMs = now + flushIntervalMs
                return true
            }
            if let repartition, repartition.hopsSinceFlush > 0 {
                switch repartition.deliver(timeout: .seconds(10)) {
                case .delivered:
                    break
                case .pending(let error):
                    intake.flushMetrics.failed("flow hops not acknowledged by Kafka: \(error)")
                    logger.warning(
                        "Flow hops not acknowledged yet; flush postponed",
                        metadata: ["kafka.error": "\(error)", "retry.in_ms": "\(backoffMs)"]
                    )
                    nextFlushAtMs = now + backoffMs
                    backoffMs = min(backoffMs * 2, 30_000)
                    flushFailing = true
                    return false
                case .failed(let count):
                    logger.warning(
                        "Flow hops refused by Kafka; re-reading from stored offsets",
                        metadata: ["flow.hops_failed": "\(count)"]
                    )
                    repartition.resetProducer()
                    dropUnflushed()
                    return false
                }
            }
            let writer: RollupWriter
            do throws(PQError) {
                writer = try sink.ready()
            } catch {
                flushFailed(error, now: now)
                return false
            }
            let job = FlushInFlight(
                delta: pendingDelta,
                next: pendingNext,
                flows: pendingFlows,
                marks: marks,
                records: unflushedRecords,
                started: .now
            )
            pendingDelta = RollupDelta()
            pendingNext = [:]
            pendingFlows = .empty
            // The marks and the acknowledged hops belong to the job now (put back if it fails).
            repartition?.flushed()
            inFlight = job
            nextFlushAtMs = now + flushIntervalMs
            let offsets = job.next.map {
                PartitionOffset(topic: $0.key.topic, partition: $0.key.partition, nextOffset: $0.value)
            }
            flusher.start { () throws(PQError) in
                try writer.write(job.delta, nextOffsets: offsets, pending: job.flows, marks: job.marks)
            }
            return true
        }

        /// Blocks until the flush thread is done with the in-flight flush (if any) and takes its result: before
        /// anything else uses the connection, and before unflushed work is flushed or dropped here.
        func waitForInFlight() {
            guard inFlight != nil else { return }
            finishInFlight(flusher.wait(), now: Intake.nowMs())
        }

        /// Takes the in-flight flush's result: on success its offsets are committed and its records leave the
        /// unflushed count; on failure its work goes back in front of what was analyzed since, for the next flush.
        func finishInFlight(_ result: Result<RollupWriteCounts, PQError>, now: Int64) {
            guard let job = inFlight else { return }
            inFlight = nil
            switch result {
            case .success(let counts):
                let elapsed = ContinuousClock.now - job.started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                intake.flushMetrics.flushed(seconds: seconds, rows: counts.total, at: Double(now) / 1000)
                // Kafka's commit follows PostgreSQL's, for visibility (Flowmeter's own lag) only.
                commitToKafka(job.next.mapValues { $0 - 1 })
                unflushedRecords -= job.records
                backoffMs = 1000
                flushFailing = false
                if paused, unflushedRecords < maxUnflushedRecords { setPaused(false) }
            case .failure(let error):
                var delta = job.delta
                delta.merge(pendingDelta)
                pendingDelta = delta
                pendingNext = job.next.merging(pendingNext) { _, later in later }
                var flows = job.flows
                flows.absorb(pendingFlows)
                pendingFlows = flows
                repartition?.requeue(job.marks)
                flushFailed(error, now: now)
            }
        }

        func flushFailed(_ error: PQError, now: Int64) {
            sink?.reset()
            intake.flushMetrics.failed("\(error)")
            logger.warning(
                "Rollup flush failed; retrying",
                metadata: [
                    "postgres.error": "\(error)", "retry.in_ms": "\(backoffMs)",
                    "rollup.unflushed_records": "\(unflushedRecords)",
                ]
            )
            nextFlushAtMs = now + backoffMs
            backoffMs = min(backoffMs * 2, 30_000)
            flushFailing = true
        }

        /// Never hold more than a bounded amount of unflushed data: pause fetching until a flush succeeds.
        func applyBackPressure() {
            if !paused, unflushedRecords >= maxUnflushedRecords {
                logger.warning(
                    "Pausing intake until PostgreSQL takes the backlog",
                    metadata: ["rollup.unflushed_records": "\(unflushedRecords)"]
                )
                setPaused(true)
            }
        }

        func setPaused(_ value: Bool) {
            do {
                let partitions = try consumer.assignment()
                if value { try consumer.pause(partitions) } else { try consumer.resume(partitions) }
                paused = value
                if !value { logger.info("Intake resumed") }
            } catch {
                logger.warning("Cannot pause or resume partitions", metadata: ["kafka.error": "\(error)"])
            }
        }

        func publishBacklog() {
            intake.flushMetrics.backlog(unflushed: unflushedRecords, paused: paused, resyncing: needsResync)
            if let repartition {
                intake.flushMetrics.repartition(
                    .init(
                        routing: repartition.routing,
                        shards: repartition.ownedShards.count,
                        sent: repartition.sent,
                        received: repartition.received,
                        duplicates: repartition.duplicates,
                        invalid: repartition.invalid
                    )
                )
            }
        }

        /// Queues a Kafka commit without waiting for it: a synchronous commit blocks for as long as the group
        /// coordinator is unreachable, which would stall flushes and graceful shutdown during a Kafka outage.
        /// PostgreSQL's offsets are the truth when rollups are on; without PostgreSQL a lost commit only means
        /// records are analyzed again after a restart. `wait` is for the revoke handler without PostgreSQL: there
        /// the commit is the hand-over to the next owner, and a revoke (unlike a loss) means the coordinator is up.
        func commitToKafka(_ processed: [TopicPartition: Int64], wait: Bool = false) {
            guard !processed.isEmpty else { return }
            do {
                try consumer.commit(processed: processed, wait: wait)
            } catch {
                logger.warning("Kafka commit failed", metadata: ["kafka.error": "\(error)"])
            }
        }

        /// Without PostgreSQL: commits what was processed.
        func commitProcessedToKafka() {
            let processed = pendingNext.mapValues { $0 - 1 }
            pendingNext = [:]
            unflushedRecords = 0
            _ = intake.shared.engine.withLock { ($0.takeRollupDelta(), $0.takePendingChanges()) }
            commitToKafka(processed)
        }

        // MARK: Rebalancing

        func assigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
            if assignedAt == nil { assignedAt = DispatchTime.now().uptimeNanoseconds }
            intake.status.assigned(partitions)
            if let repartition {
                repartition.assign(
                    (try? consumer.assignment()).map { Set($0).union(partitions) }.map(Array.init) ?? partitions
                )
                intake.shared.engine.withLock { $0.routesFlows = repartition.routing }
            }
            guard let sink else {
                guard case .time(let date) = intake.configuration.from else { return [:] }
                return Intake.startOffsets(for: partitions, at: date, consumer: consumer, logger: logger)
            }
            if needsResync { return [:] }
            waitForInFlight()
            do {
                let writer = try sink.ready()
                try restorePendingIfNeeded(writer)
                try loadMarks(writer)
                let stored = try writer.storedOffsets(for: partitions)
                intake.flushMetrics.postgres(up: true, problem: nil)
                var starts = stored
                if case .time(let date) = intake.configuration.from {
                    let fresh = partitions.filter { stored[$0] == nil }
                    for (partition, offset) in Intake.startOffsets(
                        for: fresh,
                        at: date,
                        consumer: consumer,
                        logger: logger
                    ) {
                        starts[partition] = offset
                    }
                }
                if let repartition {
                    // A partition with no stored offset is read from its beginning under --from earliest.
                    var reading = starts
                    if intake.configuration.from == .earliest {
                        for partition in partitions where reading[partition] == nil { reading[partition] = 0 }
                    }
                    repartition.started(at: reading)
                    let taken = repartition.takenAhead()
                    intake.shared.engine.withLock { $0.takenFlowHops = taken }
                }
                logger.info("Starting from offsets stored in PostgreSQL", metadata: ["partitions": "\(stored.count)"])
                for (partition, offset) in stored where (reached[partition] ?? -1) < offset {
                    reached[partition] = offset
                }
                if intake.configuration.from == .earliest || intake.configuration.from == .latest {
                    let unset = partitions.filter { starts[$0] == nil }
                    for (partition, offset) in Intake.committedStarts(
                        for: unset,
                        earliest: intake.configuration.from == .earliest,
                        consumer: consumer,
                        logger: logger
                    ) {
                        starts[partition] = offset
                    }
                }
                return starts
            } catch {
                sink.reset()
                intake.flushMetrics.failed("\(error)")
                logger.warning(
                    "Cannot read stored offsets; holding the new partitions until PostgreSQL answers",
                    metadata: ["postgres.error": "\(error)"]
                )
                needsResync = true
                resyncPaused = false
                return [:]
            }
        }

        func revoked(_ partitions: [TopicPartition], lost: Bool) {
            defer { intake.status.revoked(partitions) }
            guard sink != nil else {
                let processed = pendingNext.filter { partitions.contains($0.key) }.mapValues { $0 - 1 }
                for partition in partitions { pendingNext.removeValue(forKey: partition) }
                if !lost { commitToKafka(processed, wait: true) }
                return
            }
            if needsResync { return }
            // Everything analyzed must reach PostgreSQL before the partitions go: the next owner starts at the
            // stored offsets. If it cannot (or the partitions were lost), the unflushed work is dropped and the
            // remaining partitions are re-read from their stored offsets, so nothing is counted twice.
            if !lost {
                for attempt in 0..<3 {
                    if flush(now: Intake.nowMs()) {
                        handOver(partitions)
                        return
                    }
                    Thread.sleep(forTimeInterval: 0.5 * Double(attempt + 1))
                }
            }
            logger.warning(
                "Partitions given up with unflushed work; dropping it and re-reading from stored offsets",
                metadata: ["lost": "\(lost)", "rollup.unflushed_records": "\(unflushedRecords)"]
            )
            dropUnflushed()
        }

        /// After a successful flush on revoke, with flows across replicas: the pending flows are all stored, and the
        /// shards may change owner, so the engine forgets them and the next assignment restores those of its shards.
        func handOver(_ partitions: [TopicPartition]) {
            guard let repartition else { return }
            repartition.revoke(partitions)
            intake.shared.engine.withLock { $0.dropPendingFlows() }
            pendingRestored = false
        }

        /// Reads the de-duplication marks of the owned shards.
        func loadMarks(_ writer: RollupWriter) throws(PQError) {
            guard let repartition, !repartition.ownedShards.isEmpty else { return }
            repartition.load(try writer.repartitionMarks(shards: repartition.ownedShards.sorted()))
        }

        /// Puts the pending flow requests stored in PostgreSQL (and the flow clock) back into a fresh engine: all of
        /// them, or only those of the owned shards while flows are routed.
        func restorePendingIfNeeded(_ writer: RollupWriter) throws(PQError) {
            guard !pendingRestored else { return }
            var requests = try writer.loadPending()
            var earlyResponses = try writer.loadEarlyResponses()
            var clock = try writer.storedFlowClockMs() ?? .min
            if let repartition, repartition.routing {
                requests.removeAll { !repartition.owns(flow: $0.flow, key: $0.correlationKey) }
                earlyResponses.removeAll { !repartition.owns(flow: $0.flow, key: $0.correlationKey) }
                // The stored clock is the last writer's, any replica's: the progress markers set this one's.
                clock = .min
            }
            intake.shared.engine.withLock {
                $0.restorePending(requests, flowClockMs: clock, earlyResponses: earlyResponses)
            }
            pendingRestored = true
            if !requests.isEmpty || !earlyResponses.isEmpty {
                logger.info(
                    "Pending flow requests restored from PostgreSQL",
                    metadata: ["flows.pending": "\(requests.count)", "flows.early": "\(earlyResponses.count)"]
                )
            }
        }

        func dropUnflushed() {
            waitForInFlight()
            pendingRestored = false
            pendingFlows = .empty
            pendingDelta = RollupDelta()
            pendingNext = [:]
            unflushedRecords = 0
            let routing = repartition?.routing ?? false
            repartition?.dropUnflushed()
            intake.shared.engine.withLock {
                $0 = AnalysisEngine(analyzers: intake.analyzers, clock: .external)
                $0.routesFlows = routing
            }
            needsResync = true
            resyncPaused = false
        }

        /// Re-reads positions from PostgreSQL (then the group's commit, then --from) for every assigned partition.
        func resync(now: Int64) {
            guard let sink else {
                needsResync = false
                return
            }
            guard let assignment = try? consumer.assignment() else { return }
            if !resyncPaused {
                try? consumer.pause(assignment)
                resyncPaused = true
            }
            guard now >= nextResyncAtMs else { return }
            waitForInFlight()
            do {
                let writer = try sink.ready()
                try restorePendingIfNeeded(writer)
                try loadMarks(writer)
                let stored = try writer.storedOffsets(for: assignment)
                var targets: [TopicPartition: Int64] = stored
                let missing = assignment.filter { stored[$0] == nil }
                if !missing.isEmpty {
                    let committed = try consumer.committed(missing)
                    for partition in missing {
                        if let offset = committed[partition] ?? nil {
                            targets[partition] = offset
                        } else {
                            // librdkafka's logical offsets: -2 beginning, -1 end.
                            targets[partition] = intake.configuration.from == .earliest ? -2 : -1
                        }
                    }
                }
                if !targets.isEmpty { try consumer.seek(targets) }
                if let repartition {
                    repartition.started(at: targets.filter { $0.value >= 0 })
                    let taken = repartition.takenAhead()
                    intake.shared.engine.withLock { $0.takenFlowHops = taken }
                }
                for (partition, offset) in targets where offset >= 0 { reached[partition] = offset }
                try consumer.resume(assignment)
                needsResync = false
                resyncPaused = false
                paused = false
                backoffMs = 1000
                intake.flushMetrics.postgres(up: true, problem: nil)
                logger.info(
                    "Positions re-read from PostgreSQL; intake resumed",
                    metadata: ["partitions": "\(targets.count)"]
                )
            } catch {
                sink.reset()
                intake.flushMetrics.failed("\(error)")
                nextResyncAtMs = now + backoffMs
                backoffMs = min(backoffMs * 2, 30_000)
            }
        }

        // MARK: Backfill

        /// Whether every partition has been read up to its target offset, from the partitions the last batch read
        /// (cheap after every batch; ``backfillComplete(_:)`` then decides, as after an empty poll).
        func allTargetsReached(_ targets: [TopicPartition: Int64]) -> Bool {
            if targetsOpen == nil {
                targetsOpen = Set(targets.filter { (reached[$0.key] ?? -1) < $0.value }.keys)
            } else {
                for partition in lastBatchPartitions {
                    if let target = targets[partition], (reached[partition] ?? -1) >= target {
                        targetsOpen?.remove(partition)
                    }
                }
            }
            return targetsOpen?.isEmpty ?? false
        }

        func backfillComplete(_ targets: [TopicPartition: Int64]) throws -> Bool {
            let open = targets.filter { (reached[$0.key] ?? -1) < $0.value }
            if open.isEmpty { return true }
            let assignment = Set(try consumer.assignment())
            let positions = try consumer.position(Array(open.keys.filter { assignment.contains($0) }))
            for (partition, target) in open {
                guard assignment.contains(partition) else { return false }
                guard let position = positions[partition] ?? nil, position >= target else { return false }
            }
            return true
        }
    }

    /// Analyzes one record where librdkafka holds it: only its headers are copied (the engine's type for them).
    /// `headers` is scratch storage for the record's headers, reused from record to record.
    static func feed(
        _ record: BorrowedRecord,
        to engine: inout AnalysisEngine,
        receivedAtMs: Int64,
        headers: inout [RecordHeader]
    ) {
        // The non-generic visitor: `record.headers { … }` would run unspecialized across the module boundary.
        var count = 0
        record.forEachRawHeader { name, value in
            refill(&headers, at: count, name: name, value: value)
            count += 1
        }
        if headers.count > count { headers.removeLast(headers.count - count) }
        let type: TimestampType =
            switch record.timestampType {
            case .createTime: .createTime
            case .logAppendTime: .logAppendTime
            case .notAvailable: .unknown
            }
        engine.process(
            topic: record.topic,
            partition: record.partition,
            offset: record.offset,
            timestampMs: record.timestampMs,
            timestampType: type,
            headers: headers,
            keyBytes: record.key?.count,
            value: record.value,
            receivedAtMs: receivedAtMs,
            prescanned: record.prepared?.assumingMemoryBound(to: PrescannedMembers.self)
        )
    }

    /// The CPU time this thread has used, in milliseconds (`CLOCK_THREAD_CPUTIME_ID`): the intake thread's at its
    /// end, logged so that a run's analysis cost can be read apart from the waits for Kafka.
    static func threadCPUMilliseconds() -> Int {
        var spec = timespec()
        guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec) == 0 else { return -1 }
        return spec.tv_sec * 1000 + spec.tv_nsec / 1_000_000
    }

    /// The backfill consumer's read-ahead work: each value's top-level members (the decoder's first scan) found with
    /// the engine's limits, so that the decoder on the intake thread takes them instead of scanning the value.
    static func prescanWork(_ options: DecoderOptions) -> ReadAheadValueWork {
        // The two limits, not the options: the closure runs on the read-ahead thread.
        let (maxParseBytes, maxNestingDepth) = (options.maxParseBytes, options.maxNestingDepth)
        return ReadAheadValueWork(slotSize: MemoryLayout<PrescannedMembers>.size) { value, slot in
            guard let value,
                let members = PrescannedMembers.prescan(
                    value,
                    maxParseBytes: maxParseBytes,
                    maxNestingDepth: maxNestingDepth
                )
            else { return false }
            slot.initializeMemory(as: PrescannedMembers.self, to: members)
            return true
        }
    }

    /// Sets `headers[index]` (appending it when `index == headers.count`) to a header with `name` and `value`
    /// (``RecordHeader/refill(name:value:)``: no allocation per header in the steady state; the engine keeps no
    /// reference to the headers after a record).
    static func refill(
        _ headers: inout [RecordHeader],
        at index: Int,
        name: UnsafeRawBufferPointer,
        value: UnsafeRawBufferPointer?
    ) {
        guard index < headers.count else {
            headers.append(RecordHeader(name: String(decoding: name, as: UTF8.self), value: value.map { Array($0) }))
            return
        }
        headers[index].refill(name: name, value: value)
    }

    /// Where partitions with no offset stored in PostgreSQL start under `--from earliest` or `latest`: the group's
    /// Kafka commit, else the logical beginning (-2) or end (-1). That is where librdkafka starts a partition
    /// assigned without an offset (the commit, then `auto.offset.reset`, which the intake sets from `--from`),
    /// resolved here instead: librdkafka's own way (an OffsetFetch, then an offset reset per partition) put the
    /// first record of a 1,000,000-record backfill 110-122 ms after the assignment, this way 4-63 ms. If the
    /// commits cannot be read, the partitions are left to librdkafka as before (an empty result).
    static func committedStarts(
        for partitions: [TopicPartition],
        earliest: Bool,
        consumer: KafkaConsumer,
        logger: Logger
    ) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        do {
            var (starts, fresh) = try commits(of: partitions, consumer: consumer)
            // librdkafka's logical offsets: -2 beginning, -1 end.
            for partition in fresh { starts[partition] = earliest ? -2 : -1 }
            return starts
        } catch {
            logger.debug(
                "Cannot read the group's commits; librdkafka resolves the partitions' start",
                metadata: ["kafka.error": "\(error)"]
            )
            return [:]
        }
    }

    /// The group's Kafka commits of `partitions` (the next offsets to read), and the partitions without one.
    static func commits(
        of partitions: [TopicPartition],
        consumer: KafkaConsumer
    ) throws(KafkaError) -> (committed: [TopicPartition: Int64], fresh: [TopicPartition]) {
        let answers = try consumer.committed(partitions)
        var committed: [TopicPartition: Int64] = [:]
        var fresh: [TopicPartition] = []
        for partition in partitions {
            if let offset = answers[partition] ?? nil { committed[partition] = offset } else { fresh.append(partition) }
        }
        return (committed, fresh)
    }

    /// Partitions without a group commit start at the first record at or after `date`.
    static func startOffsets(
        for partitions: [TopicPartition],
        at date: Date,
        consumer: KafkaConsumer,
        logger: Logger
    ) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        do {
            let fresh = try commits(of: partitions, consumer: consumer).fresh
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

/// Records analyzed by a backfill, for its progress display.
final class BackfillProgress: Sendable {
    private let done = Mutex<Int64>(0)

    func advance(by count: Int) {
        done.withLock { $0 += Int64(count) }
    }

    var records: Int64 { done.withLock { $0 } }
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

extension PendingFlowChanges {
    /// Adds later changes to these (not yet written) ones: a request (or early response) added and then resolved is
    /// neither inserted nor deleted.
    mutating func absorb(_ later: PendingFlowChanges) {
        guard !later.isEmpty else { return }
        let resolved = Set(later.removed)
        let addedKeys = Set(added.map(\.key))
        added.removeAll { resolved.contains($0.key) }
        added += later.added
        removed += later.removed.filter { !addedKeys.contains($0) }
        let earlyResolved = Set(later.earlyRemoved)
        let earlyAddedKeys = Set(earlyAdded.map(\.key))
        earlyAdded.removeAll { earlyResolved.contains($0.key) }
        earlyAdded += later.earlyAdded
        earlyRemoved += later.earlyRemoved.filter { !earlyAddedKeys.contains($0) }
        flowClockMs = Swift.max(flowClockMs, later.flowClockMs)
    }
}

/// A flush handed to the flush thread: what it writes, and how many analyzed records it covers.
struct FlushInFlight: Sendable {
    var delta: RollupDelta
    var next: [TopicPartition: Int64]
    var flows: PendingFlowChanges
    var marks: [RepartitionMark]
    var records: Int
    var started: ContinuousClock.Instant
}

/// The flush thread: runs one rollup write at a time for the intake thread, which takes the result when it is
/// ready (``take()``) or waits for it (``wait()``).
final class Flusher: @unchecked Sendable {
    // @unchecked: `result` is guarded by `condition`.
    private let queue = DispatchQueue(label: "flowmeter.flush")
    private let condition = NSCondition()
    private var result: Result<RollupWriteCounts, PQError>?

    /// Runs `write` on the flush thread.
    func start(_ write: @escaping @Sendable () throws(PQError) -> RollupWriteCounts) {
        queue.async { [self] in
            let outcome: Result<RollupWriteCounts, PQError>
            do throws(PQError) {
                outcome = .success(try write())
            } catch {
                outcome = .failure(error)
            }
            condition.lock()
            result = outcome
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The finished write's result, once (nil while it runs).
    func take() -> Result<RollupWriteCounts, PQError>? {
        condition.lock()
        defer { condition.unlock() }
        let outcome = result
        result = nil
        return outcome
    }

    /// Waits for the started write and takes its result.
    func wait() -> Result<RollupWriteCounts, PQError> {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        let outcome = result!
        result = nil
        return outcome
    }
}
