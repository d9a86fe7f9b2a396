import Dispatch
public import FlowmeterCore
public import Foundation
public import Kafka
public import Logging
public import ServiceLifecycle
import Synchronization

/// Polls the lag of the watched consumer groups in the background and keeps the latest values for `/metrics`
/// and for the PostgreSQL writer. A scrape never talks to Kafka.
///
/// Each cycle (every `interval`, start to start):
/// 1. Resolves the watched groups: names as written; patterns through ListGroups. Where the broker cannot
///    list groups, it says so once (notice) and watches the named groups only. Flowmeter's own group is always
///    watched, on every partition assigned to this replica.
/// 2. Shards: a group watching topic `T` is polled on `(T, p)` only when `(T, p)` is in this replica's own
///    assignment, so replicas divide the work and no partition is reported by two replicas.
/// 3. Per group, fetches the committed offsets of all its partitions here in **one** OffsetFetch request (the
///    request ListConsumerGroupOffsets sends) with explicit partitions, through `rd_kafka_committed` on a
///    non-joining consumer with the group's id (librdkafka 2.0.2's admin call can abort the process when a
///    broker connection drops; see `committedOffsets(group:partitions:)`).
/// 4. Then the watermarks: librdkafka's cached ones for partitions this process reads (when their end is not
///    behind a commit), else `query_watermark_offsets` through ``KafkaAdmin/watermarks(_:timeout:)`` (bounded
///    concurrency, watchdog).
/// 5. Time lag: the timestamp Flowmeter itself saw at exactly the group's position, else the record read
///    there by a ``KafkaRecordReader`` (cached per partition and position, so an unchanged position is not
///    read again). Never interpolated.
/// 6. Status per partition (``PartitionStatusTracker``) and per group (worst partition).
///
/// A group whose values could not be refreshed (timeouts, a broker down) is marked stale and keeps its last
/// values; a broker's explicit error for a group or partition makes its status `error`. Series of groups that
/// are no longer resolved (a pattern stops matching) are dropped after `limits.vanishedGroupRetention`;
/// partitions that left this replica's assignment are dropped at once, because their new owner reports them.
///
/// Group-level series (`_status`, `_lag_stale`) describe this replica's share of the group: with several
/// replicas, aggregate with `max by (group)`.
public final class LagMonitor: Service, Sendable {
    private let analyzers: AnalyzerSet
    private let ownGroup: String
    private let interval: Duration
    private let requestTimeout: Duration
    private let readTimeout: Duration
    private let logger: Logger
    private let assignment: @Sendable () -> Set<TopicPartition>
    private let cachedWatermarks: @Sendable (TopicPartition) -> Watermarks?
    private let seenTimestamp: @Sendable (TopicPartition, Int64) -> Int64?
    private let now: @Sendable () -> Date
    private let admin: KafkaAdmin
    private let reader: KafkaRecordReader
    private let kafka: KafkaClientConfig
    private let describesGroups: Bool
    private let offsetClients = Mutex<[String: KafkaConsumer]>([:])
    private let state = Mutex(MonitorState())
    private let closed = Mutex(false)

    /// Creates a monitor and its Kafka clients (an admin client and a record reader).
    ///
    /// - Parameters:
    ///   - analyzers: the watched groups (`groups`), the status window (`limits.statusWindow`) and the grace
    ///     period of vanished groups (`limits.vanishedGroupRetention`).
    ///   - ownGroup: Flowmeter's own consumer group, always watched.
    ///   - kafka: the client configuration (bootstrap servers, security properties).
    ///   - interval: the polling period (`--lag-interval`, default 5 s).
    ///   - requestTimeout: how long one committed-offsets or watermark request may take before the group is
    ///     marked stale.
    ///   - readTimeout: how long reading the record at a group's position may take.
    ///   - logger: the logger.
    ///   - assignment: this replica's current assignment in its own group.
    ///   - cachedWatermarks: librdkafka's cached watermarks for partitions this process reads, if any.
    ///   - seenTimestamp: the timestamp of the record Flowmeter itself read at exactly that offset, if it
    ///     remembers one.
    ///   - describesGroups: whether to ask the broker (DescribeGroups) which groups with waiting records have no
    ///     members, which makes them `stopped` at once. Off by default: in librdkafka 2.0.2 DescribeGroups, like
    ///     every coordinator admin request, can abort the process when a broker connection drops mid-request
    ///     (librdkafka issues 3663 and 4605), and brokers without ListGroups (the mock) cannot answer it anyway.
    ///   - now: the wall clock (injectable for tests).
    /// - Throws: A ``KafkaError`` if a client cannot be created.
    public init(
        analyzers: AnalyzerSet,
        ownGroup: String,
        kafka: KafkaClientConfig,
        interval: Duration = .seconds(5),
        requestTimeout: Duration = .seconds(5),
        readTimeout: Duration = .seconds(2),
        logger: Logger,
        assignment: @escaping @Sendable () -> Set<TopicPartition>,
        cachedWatermarks: @escaping @Sendable (TopicPartition) -> Watermarks? = { _ in nil },
        seenTimestamp: @escaping @Sendable (TopicPartition, Int64) -> Int64? = { _, _ in nil },
        describesGroups: Bool = false,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(KafkaError) {
        self.analyzers = analyzers
        self.ownGroup = ownGroup
        self.interval = interval
        self.requestTimeout = requestTimeout
        self.readTimeout = readTimeout
        self.logger = logger
        self.assignment = assignment
        self.cachedWatermarks = cachedWatermarks
        self.seenTimestamp = seenTimestamp
        self.now = now
        self.kafka = kafka
        self.describesGroups = describesGroups
        self.admin = try KafkaAdmin(config: kafka, logger: logger)
        do {
            self.reader = try KafkaRecordReader(config: kafka, logger: logger)
        } catch {
            admin.close()
            throw error
        }
    }

    deinit {
        close()
    }

    // MARK: - Service

    /// Polls every `interval` until cancelled or the service group shuts down gracefully, then closes the
    /// Kafka clients.
    public func run() async throws {
        defer { close() }
        // Graceful shutdown cancels the sleep; that is how this service ends, not a failure.
        try? await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                let started = ContinuousClock.now
                await pollOnce()
                let next = started + interval
                if next > ContinuousClock.now { try await Task.sleep(until: next) }
            }
        }
    }

    /// Releases the Kafka clients. Idempotent; ``run()`` calls it when it returns.
    public func close() {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        reader.close()
        admin.close()
        let clients = offsetClients.withLock { clients in
            defer { clients.removeAll() }
            return clients
        }
        for client in clients.values { client.close() }
    }

    // MARK: - One cycle

    /// Runs one polling cycle and updates the snapshot that ``writeMetrics(into:)`` and ``samples`` read.
    public func pollOnce() async {
        let started = ContinuousClock.now
        let assigned = assignment()
        let plan = await makePlan(assigned: assigned)
        let noMembers = await groupsWithoutMembers(plan.keys)

        // Committed offsets: one OffsetFetch request per group, all groups at once.
        // (Answers are stored by the children, not returned: see `KafkaAdmin.watermarks(of:timeout:)`.)
        let committedAnswers = TaskAnswers<String, Result<[TopicPartition: Int64?], KafkaError>>()
        await withTaskGroup(of: Void.self) { tasks in
            for (group, partitions) in plan where !partitions.isEmpty {
                tasks.addTask { [self] in
                    committedAnswers.store(await committedOffsets(group: group, partitions: partitions), for: group)
                }
            }
            await tasks.waitForAll()
        }
        let committed = committedAnswers.all

        // Watermarks of every partition some group has fresh commits for, after the commits.
        var highestCommit: [TopicPartition: Int64] = [:]
        for case .success(let offsets) in committed.values {
            for (partition, offset) in offsets {
                highestCommit[partition] = max(highestCommit[partition] ?? -1, offset ?? -1)
            }
        }
        let watermarks = await fetchWatermarks(highestCommit)

        // The offsets of every group and partition with fresh values, and the positions whose first waiting
        // record is not known yet: read all of them at once, in one batched read.
        var polled: [String: [(TopicPartition, PartitionOffsets)]] = [:]
        var waiting: [ReadKey: WaitingRecord?] = [:]
        var toRead: [TopicPartition: RecordPositions] = [:]
        for (group, partitions) in plan {
            guard case .success(let offsets) = committed[group] else { continue }
            for partition in partitions {
                guard case .some(.success(let marks)) = watermarks[partition] else { continue }
                let partitionOffsets = PartitionOffsets(
                    committed: offsets[partition] ?? nil,
                    logStart: marks.low,
                    end: marks.high
                )
                polled[group, default: []].append((partition, partitionOffsets))
                guard partitionOffsets.mayHaveWaitingRecords, let position = partitionOffsets.position else { continue }
                let key = ReadKey(partition: partition, position: position)
                guard waiting[key] == nil else { continue }
                if let known = knownWaitingRecord(key, partitionOffsets) {
                    waiting[key] = .some(known)
                } else {
                    toRead[partition, default: RecordPositions(positions: [], end: marks.high)]
                        .positions.insert(position)
                }
            }
        }
        let reads = await readWaitingRecords(toRead)
        for (partition, positions) in reads.found {
            for (position, record) in positions {
                waiting[ReadKey(partition: partition, position: position)] = .some(
                    record.map { WaitingRecord(offset: $0.offset, timestampMs: $0.timestampMs) }
                )
            }
        }

        // Per group and partition: lag, time lag, status.
        var updates: [String: GroupUpdate] = [:]
        for (group, partitions) in plan {
            var update = GroupUpdate(partitions: Set(partitions))
            switch committed[group] {
            case .failure(let error):
                update.stale = true
                update.groupError = !Self.isUnanswered(error)
                logger.warning(
                    "Cannot refresh consumer group lag",
                    metadata: ["lag.group": "\(group)", "kafka.error": "\(error)"]
                )
            case .success:
                var noEnd: [(partition: TopicPartition, error: KafkaError?)] = []
                for partition in partitions {
                    guard case .some(.success) = watermarks[partition] else {
                        var failure: KafkaError?
                        if case .some(.failure(let error)) = watermarks[partition] {
                            failure = error
                            if !Self.isUnanswered(error) { update.brokerErrors.insert(partition) }
                        }
                        noEnd.append((partition, failure))
                        update.stale = true
                        continue
                    }
                }
                if let first = noEnd.first {
                    // Stale for want of end offsets: say so, as for the other two reasons (it was silent).
                    logger.warning(
                        "Cannot read end offsets; lag kept from the last cycle",
                        metadata: [
                            "lag.group": "\(group)", "lag.partition": "\(first.partition)",
                            "lag.partitions": "\(noEnd.count)",
                            "kafka.error": "\(first.error.map { "\($0)" } ?? "no answer within \(requestTimeout)")",
                        ]
                    )
                }
                var unread: [TopicPartition] = []
                for (partition, partitionOffsets) in polled[group] ?? [] {
                    var record: WaitingRecord?
                    if partitionOffsets.mayHaveWaitingRecords, let position = partitionOffsets.position {
                        guard let found = waiting[ReadKey(partition: partition, position: position)] else {
                            unread.append(partition)
                            continue
                        }
                        record = found
                    }
                    let sampledAt = now()
                    let lag = LagMath.lag(offsets: partitionOffsets, firstWaiting: record, nowMs: sampledAt.ms)
                    update.fresh[partition] = FreshPartition(offsets: partitionOffsets, lag: lag, at: sampledAt)
                }
                if let first = unread.first {
                    update.stale = true
                    let reason = reads.errors[first].map { "\($0)" } ?? "no record within the read timeout"
                    logger.warning(
                        "Cannot read the first waiting record",
                        metadata: [
                            "lag.group": "\(group)", "lag.partition": "\(first)", "lag.partitions": "\(unread.count)",
                            "kafka.error": "\(reason)",
                        ]
                    )
                }
            case .none:
                break
            }
            updates[group] = update
        }

        let elapsed = ContinuousClock.now - started
        let window = analyzers.limits.statusWindow
        let retention = analyzers.limits.vanishedGroupRetention
        let cycleEnd = ContinuousClock.now
        let changes = state.withLock { state in
            defer {
                state.pollSeconds = elapsed.seconds
                state.cycles += 1
            }
            return state.apply(
                updates,
                noMembers: noMembers,
                window: window,
                retention: retention,
                now: cycleEnd
            )
        }
        for change in changes {
            logger.notice(
                "Consumer group status changed",
                metadata: [
                    "lag.group": "\(change.group)", "lag.status.from": "\(change.from)", "lag.status": "\(change.to)",
                    "lag.messages": "\(change.lagMessages)",
                ]
            )
        }
    }

    /// Timeouts and transport failures: the broker did not answer, so values are stale, not wrong.
    private static func isUnanswered(_ error: KafkaError) -> Bool {
        error.code == .timedOut || error.code == .closed || error.isRetriable
    }

    /// A group's committed offsets for explicit partitions, in one OffsetFetch request (what
    /// ListConsumerGroupOffsets sends), through `rd_kafka_committed` on a consumer that carries the group's id
    /// and never joins it.
    ///
    /// Not through ``KafkaAdmin/committedOffsets(group:partitions:timeout:)``: in librdkafka 2.0.2 that admin
    /// call aborts the whole process (`rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0`) when
    /// the coordinator connection drops during the request, which a broker outage does (librdkafka issue 3663,
    /// still open). The consumer-group path has no such bug; it costs one idle client per watched group.
    private func committedOffsets(
        group: String,
        partitions: [TopicPartition]
    ) async -> Result<[TopicPartition: Int64?], KafkaError> {
        let client: KafkaConsumer
        do throws(KafkaError) {
            client = try offsetClients.withLock { clients throws(KafkaError) in
                if let existing = clients[group] { return existing }
                let created = try KafkaConsumer(config: kafka, groupID: group, logger: logger)
                clients[group] = created
                return created
            }
        } catch {
            return .failure(error)
        }
        let timeout = requestTimeout
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do throws(KafkaError) {
                    continuation.resume(returning: .success(try client.committed(partitions, timeout: timeout)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
    }

    private func makePlan(assigned: Set<TopicPartition>) async -> [String: [TopicPartition]] {
        var topicsByGroup: [String: Set<String>] = [:]
        var patterns: [(TopicPattern, [String])] = []
        for watched in analyzers.groups {
            switch watched.group {
            case .name(let name): topicsByGroup[name, default: []].formUnion(watched.topics)
            case .pattern(let pattern): patterns.append((pattern, watched.topics))
            }
        }
        if !patterns.isEmpty {
            for (group, topics) in await resolvePatterns(patterns) {
                topicsByGroup[group, default: []].formUnion(topics)
            }
        }
        var plan: [String: [TopicPartition]] = [:]
        for (group, topics) in topicsByGroup where group != ownGroup {
            plan[group] = assigned.filter { topics.contains($0.topic) }.sorted()
        }
        plan[ownGroup] = assigned.sorted()
        return plan
    }

    private func resolvePatterns(_ patterns: [(TopicPattern, [String])]) async -> [String: Set<String>] {
        let listing: BrokerSupport<[ConsumerGroupListing]>
        do {
            listing = try await admin.listGroups(timeout: requestTimeout)
        } catch {
            logger.warning("Cannot list consumer groups; keeping the last match", metadata: ["kafka.error": "\(error)"])
            return state.withLock { $0.patternGroups }
        }
        switch listing {
        case .unsupported(let reason):
            let first = state.withLock { state in
                defer { state.patternNoticeLogged = true }
                return !state.patternNoticeLogged
            }
            if first {
                logger.notice(
                    "The broker cannot list consumer groups: group patterns are not watched, named groups are",
                    metadata: [
                        "lag.patterns": "\(patterns.map(\.0.glob).joined(separator: ","))",
                        "kafka.reason": "\(reason)",
                    ]
                )
            }
            return [:]
        case .supported(let groups):
            var result: [String: Set<String>] = [:]
            for group in groups {
                for (pattern, topics) in patterns where pattern.matches(group.groupID) {
                    result[group.groupID, default: []].formUnion(topics)
                }
            }
            state.withLock { $0.patternGroups = result }
            return result
        }
    }

    /// Groups the broker describes as having no members, among those with records waiting at the last poll.
    /// Empty where the broker cannot describe groups.
    private func groupsWithoutMembers(_ groups: some Collection<String>) async -> Set<String> {
        guard describesGroups else { return [] }
        let waiting = state.withLock { state in
            groups.filter { state.groups[$0]?.hasWaitingRecords == true }
        }
        guard !waiting.isEmpty else { return [] }
        guard case .supported(let descriptions) = try? await admin.describeGroups(waiting, timeout: requestTimeout)
        else { return [] }
        return Set(descriptions.filter { $0.memberCount == 0 && $0.error == nil }.map(\.groupID))
    }

    private func fetchWatermarks(
        _ highestCommit: [TopicPartition: Int64]
    ) async -> [TopicPartition: Result<Watermarks, KafkaError>] {
        var results: [TopicPartition: Result<Watermarks, KafkaError>] = [:]
        var toQuery: [TopicPartition] = []
        for (partition, commit) in highestCommit {
            if let cached = cachedWatermarks(partition), cached.low >= 0, cached.high >= commit {
                results[partition] = .success(cached)
            } else {
                toQuery.append(partition)
            }
        }
        let queried = await admin.watermarks(of: toQuery, timeout: requestTimeout)
        results.merge(queried) { $1 }
        return results
    }

    /// The first waiting record at a position when Flowmeter saw the record there itself or read it before
    /// (and the cached answer still holds for this end offset); `nil` when it must be read.
    private func knownWaitingRecord(_ key: ReadKey, _ offsets: PartitionOffsets) -> WaitingRecord?? {
        if let seen = seenTimestamp(key.partition, key.position) {
            return .some(WaitingRecord(offset: key.position, timestampMs: seen))
        }
        switch state.withLock({ $0.reads[key] }) {
        case .record(let record) where record.offset < offsets.end:
            return .some(record)
        case .nothingBefore(let end) where end == offsets.end:
            return .some(nil)
        default:
            return nil
        }
    }

    /// Reads the first waiting record at every position in `requests` with one batched read
    /// (``KafkaRecordReader/timestamps(_:timeout:)``) and caches what it found.
    private func readWaitingRecords(_ requests: [TopicPartition: RecordPositions]) async -> RecordReads {
        guard !requests.isEmpty else { return RecordReads() }
        let reader = self.reader
        let timeout = readTimeout
        let reads: RecordReads = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do throws(KafkaError) {
                    continuation.resume(returning: try reader.timestamps(requests, timeout: timeout))
                } catch {
                    var failed = RecordReads()
                    for partition in requests.keys { failed.errors[partition] = error }
                    continuation.resume(returning: failed)
                }
            }
        }
        state.withLock { state in
            for (partition, positions) in reads.found {
                for (position, record) in positions {
                    let key = ReadKey(partition: partition, position: position)
                    state.reads[key] =
                        record.map { .record(WaitingRecord(offset: $0.offset, timestampMs: $0.timestampMs)) }
                        ?? .nothingBefore(end: requests[partition]?.end ?? -1)
                    state.recordReads += 1
                }
            }
        }
        return reads
    }

    // MARK: - Output

    /// The latest sample of every group and partition this replica reports, sorted by group, topic and
    /// partition: the rows of `flowmeter.consumer_lag` (DESIGN.md 3.4) for the PostgreSQL writer.
    public var samples: [LagSample] {
        state.withLock { state in
            var rows: [LagSample] = []
            for group in state.groups.keys.sorted() {
                guard let groupState = state.groups[group] else { continue }
                for partition in groupState.partitions.keys.sorted() {
                    guard let entry = groupState.partitions[partition] else { continue }
                    rows.append(
                        LagSample(
                            sampledAtMs: entry.sampledAt.ms,
                            groupID: group,
                            topic: partition.topic,
                            partition: partition.partition,
                            committedOffset: entry.offsets.committed,
                            logStartOffset: entry.offsets.logStart,
                            endOffset: entry.offsets.end,
                            lagMessages: entry.lag.messages,
                            lagSeconds: entry.lag.seconds,
                            status: entry.tracker.status
                        )
                    )
                }
            }
            return rows
        }
    }

    /// Whether the group's last refresh failed (its values are the last good ones); `nil` for an unknown group.
    public func isStale(group: String) -> Bool? {
        state.withLock { $0.groups[group]?.stale }
    }

    /// The group's status (worst partition); `nil` for an unknown group.
    public func status(group: String) -> LagStatus? {
        state.withLock { $0.groups[group]?.status }
    }

    /// Completed polling cycles.
    public var cycles: Int { state.withLock { $0.cycles } }

    /// Records read by the record reader so far (positions Flowmeter had not seen itself and had not read
    /// before).
    public var recordReads: Int { state.withLock { $0.recordReads } }

    /// Appends the lag metrics of DESIGN.md 3.3 in the Prometheus text format.
    ///
    /// With thousands of groups × partitions this is most of a scrape, so the label set of each group and
    /// partition is built (and escaped) once per scrape and shared by the four per-partition families, and lines
    /// are appended piece by piece instead of through string interpolation.
    public func writeMetrics(into text: inout String) {
        state.withLock { state in
            let groups = state.groups.sorted { $0.key < $1.key }
            // `{group="…",topic="…",partition="…"} ` and the lag of every group and partition, in output order.
            // The sorted partitions and their labels are kept between scrapes while a group's partitions stay
            // the same (sorting and building 20,000 label sets cost more than the rest of a scrape).
            var rows: [(labels: String, lag: PartitionLag)] = []
            rows.reserveCapacity(groups.reduce(0) { $0 + $1.value.partitions.count })
            var topicLabels: [String: String] = [:]
            for (group, groupState) in groups {
                var cached = state.labels[group] ?? []
                if cached.count != groupState.partitions.count
                    || !cached.allSatisfy({ groupState.partitions[$0.partition] != nil })
                {
                    let groupLabel = "{group=\"" + escape(group) + "\",topic=\""
                    cached = groupState.partitions.keys.sorted().map { partition in
                        let topicLabel: String
                        if let known = topicLabels[partition.topic] {
                            topicLabel = known
                        } else {
                            topicLabel = escape(partition.topic) + "\",partition=\""
                            topicLabels[partition.topic] = topicLabel
                        }
                        return (partition, groupLabel + topicLabel + String(partition.partition) + "\"} ")
                    }
                    state.labels[group] = cached
                }
                for (partition, labels) in cached {
                    if let entry = groupState.partitions[partition] { rows.append((labels, entry.lag)) }
                }
            }
            state.labels = state.labels.filter { state.groups[$0.key] != nil }
            func family(_ name: String, _ help: String, _ body: () -> Void) {
                text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
                body()
            }
            func line(_ name: String, _ labels: String, _ value: String) {
                text += name
                text += labels
                text += value
                text += "\n"
            }
            family(
                "flowmeter_consumergroup_lag_messages",
                "Data records the group has not consumed (transaction markers excluded)."
            ) {
                for row in rows {
                    guard let messages = row.lag.messages else { continue }
                    line("flowmeter_consumergroup_lag_messages", row.labels, String(messages))
                }
            }
            family(
                "flowmeter_consumergroup_lag_seconds",
                "Now minus the timestamp of the first unconsumed record, at the last poll; 0 when caught up."
            ) {
                for row in rows {
                    guard let seconds = row.lag.seconds else { continue }
                    line("flowmeter_consumergroup_lag_seconds", row.labels, format(seconds))
                }
            }
            family(
                "flowmeter_consumergroup_no_commit",
                "1 where the group has no commit on the partition (no lag series then)."
            ) {
                for row in rows {
                    line("flowmeter_consumergroup_no_commit", row.labels, row.lag.noCommit ? "1" : "0")
                }
            }
            family(
                "flowmeter_consumergroup_lost_messages",
                "Log start minus committed offset, where the commit fell below the log start."
            ) {
                for row in rows where !row.lag.noCommit {
                    line("flowmeter_consumergroup_lost_messages", row.labels, String(row.lag.lostMessages))
                }
            }
            family(
                "flowmeter_consumergroup_status",
                "The group's status (its worst partition): exactly one of the five series is 1."
            ) {
                for (group, groupState) in groups {
                    for status in LagStatus.allCases {
                        text +=
                            "flowmeter_consumergroup_status{group=\"\(escape(group))\",status=\"\(status)\"} \(groupState.status == status ? 1 : 0)\n"
                    }
                }
            }
            family(
                "flowmeter_consumergroup_lag_stale",
                "1 while lag for the group could not be refreshed (the last values are kept, not guessed)."
            ) {
                for (group, groupState) in groups {
                    text +=
                        "flowmeter_consumergroup_lag_stale{group=\"\(escape(group))\"} \(groupState.stale ? 1 : 0)\n"
                }
            }
            family("flowmeter_lag_poll_seconds", "Duration of the last lag polling cycle.") {
                text += "flowmeter_lag_poll_seconds \(format(state.pollSeconds))\n"
            }
        }
    }
}

// MARK: - State

/// The key of the record-reader cache: a partition and a group's position on it.
struct ReadKey: Hashable {
    var partition: TopicPartition
    var position: Int64
}

/// What the reader found at a position.
enum CachedRead {
    /// The first data record at or after the position.
    case record(WaitingRecord)
    /// No data record between the position and this end offset.
    case nothingBefore(end: Int64)
}

/// One partition's freshly polled values.
struct FreshPartition {
    var offsets: PartitionOffsets
    var lag: PartitionLag
    var at: Date
}

/// What one cycle learned about one group.
struct GroupUpdate {
    /// The partitions this replica polls for the group this cycle.
    var partitions: Set<TopicPartition>
    var fresh: [TopicPartition: FreshPartition] = [:]
    var brokerErrors: Set<TopicPartition> = []
    var stale = false
    var groupError = false
}

/// The last values of one partition.
struct PartitionEntry {
    var offsets: PartitionOffsets
    var lag: PartitionLag
    var sampledAt: Date
    var tracker: PartitionStatusTracker
}

/// A group whose status changed in a cycle: logged, so that every transition is on record even between scrapes.
struct GroupStatusChange {
    var group: String
    var from: LagStatus
    var to: LagStatus
    /// The group's total lag in messages over its partitions here.
    var lagMessages: Int64
}

/// The last values of one group.
struct GroupEntry {
    var partitions: [TopicPartition: PartitionEntry] = [:]
    var stale = false
    var groupError = false
    var status: LagStatus = .ok
    var lastPolled: ContinuousClock.Instant

    var hasWaitingRecords: Bool { partitions.values.contains { ($0.lag.messages ?? 0) > 0 } }
}

/// Everything the monitor keeps between cycles.
struct MonitorState {
    var groups: [String: GroupEntry] = [:]
    var reads: [ReadKey: CachedRead] = [:]
    var patternGroups: [String: Set<String>] = [:]
    var patternNoticeLogged = false
    /// Per group, its partitions in output order with their label sets (`{group="…",topic="…",partition="…"} `),
    /// kept for ``LagMonitor/writeMetrics(into:)`` while the group's partitions stay the same.
    var labels: [String: [(partition: TopicPartition, labels: String)]] = [:]
    var pollSeconds = 0.0
    var cycles = 0
    var recordReads = 0

    /// Applies one cycle's updates and returns the groups whose status changed (a group seen for the first time
    /// counts as changed from `ok` only when it is not `ok`).
    @discardableResult
    mutating func apply(
        _ updates: [String: GroupUpdate],
        noMembers: Set<String>,
        window: Int,
        retention: Duration,
        now: ContinuousClock.Instant
    ) -> [GroupStatusChange] {
        var changes: [GroupStatusChange] = []
        var usedReads: Set<ReadKey> = []
        for (group, update) in updates {
            var entry = groups[group] ?? GroupEntry(lastPolled: now)
            entry.lastPolled = now
            // Partitions no longer assigned here are reported by their new owner: drop them at once.
            entry.partitions = entry.partitions.filter { update.partitions.contains($0.key) }
            for (partition, fresh) in update.fresh {
                var partitionEntry =
                    entry.partitions[partition]
                    ?? PartitionEntry(
                        offsets: fresh.offsets,
                        lag: fresh.lag,
                        sampledAt: fresh.at,
                        tracker: PartitionStatusTracker(window: window)
                    )
                partitionEntry.offsets = fresh.offsets
                partitionEntry.lag = fresh.lag
                partitionEntry.sampledAt = fresh.at
                partitionEntry.tracker.record(
                    LagStatusSample(
                        committed: fresh.offsets.committed,
                        lagMessages: fresh.lag.messages ?? 0,
                        outOfRange: fresh.lag.outOfRange
                    ),
                    groupHasNoMembers: noMembers.contains(group) ? true : nil
                )
                entry.partitions[partition] = partitionEntry
                if let position = fresh.offsets.position {
                    usedReads.insert(ReadKey(partition: partition, position: position))
                }
            }
            for partition in update.brokerErrors {
                guard var partitionEntry = entry.partitions[partition] else { continue }
                partitionEntry.tracker.record(
                    LagStatusSample(
                        committed: partitionEntry.offsets.committed,
                        lagMessages: partitionEntry.lag.messages ?? 0,
                        outOfRange: partitionEntry.lag.outOfRange,
                        brokerError: true
                    )
                )
                entry.partitions[partition] = partitionEntry
            }
            for (partition, partitionEntry) in entry.partitions where update.fresh[partition] == nil {
                if let position = partitionEntry.offsets.position {
                    usedReads.insert(ReadKey(partition: partition, position: position))
                }
            }
            entry.stale = update.stale
            entry.groupError = update.groupError
            let previous = entry.status
            entry.status = GroupStatus.worst(
                entry.partitions.values.map(\.tracker.status),
                groupError: update.groupError
            )
            if entry.status != previous {
                changes.append(
                    GroupStatusChange(
                        group: group,
                        from: previous,
                        to: entry.status,
                        lagMessages: entry.partitions.values.reduce(0) { $0 + ($1.lag.messages ?? 0) }
                    )
                )
            }
            // A group with nothing assigned here has nothing to report from this replica.
            groups[group] = update.partitions.isEmpty ? nil : entry
        }
        // Groups no longer resolved (a pattern stopped matching): kept for the grace period, then dropped.
        for (group, entry) in groups where updates[group] == nil && now - entry.lastPolled > retention {
            groups[group] = nil
        }
        reads = reads.filter { usedReads.contains($0.key) }
        return changes
    }
}

private func escape(_ value: String) -> String {
    // Almost every value needs no escaping: check the bytes before building a copy character by character.
    guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == 0x0A }) else {
        return value
    }
    var result = ""
    for character in value {
        switch character {
        case "\\": result += "\\\\"
        case "\"": result += "\\\""
        case "\n": result += "\\n"
        default: result.append(character)
        }
    }
    return result
}

private func format(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

extension Date {
    /// Milliseconds since the epoch.
    fileprivate var ms: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}

extension Duration {
    /// The duration in seconds.
    fileprivate var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Answers stored by the child tasks of a task group, by key.
private final class TaskAnswers<Key: Hashable & Sendable, Answer: Sendable>: Sendable {
    private let answers = Mutex<[Key: Answer]>([:])

    func store(_ answer: Answer, for key: Key) {
        answers.withLock { $0[key] = answer }
    }

    var all: [Key: Answer] { answers.withLock { $0 } }
}
