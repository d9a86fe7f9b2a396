/// What moves the clock that expires flow requests and early responses.
public enum FlowClockSource: Sendable, Hashable {
    /// The largest record timestamp analyzed so far (and ``AnalysisEngine/advance(nowMs:)``). Right when all
    /// partitions are read at the same pace, as in live operation.
    case recordTimestamps
    /// Only ``AnalysisEngine/advance(nowMs:)``: the caller supplies an event-time watermark, e.g. the minimum over
    /// its partitions of the latest timestamp read from each. Right when partitions are read at different paces
    /// (catching up a backlog, replaying after a restart), where one fast partition would otherwise expire
    /// requests whose responses are still unread in a slower one.
    case external
}

/// The analysis engine: decodes each Kafka record and updates the live Prometheus metrics it owns and the
/// 1-minute event-time window rollup deltas (DESIGN.md 3.3, 3.4 and 4).
///
/// A value type owned by the intake loop (one thread); pure: no I/O, no clock reads (time comes in as
/// parameters). Per record it
/// - counts the record exactly once in `flowmeter_events_total{topic,type}` and `flowmeter_records_consumed_total`,
///   and in the window of its event time (``RollupDelta/events``);
/// - counts decoder flags, invalid reasons (tombstones are not invalid: Dapr writes them on purpose) and CloudEvent
///   ids redelivered within a bounded window (`flowmeter_events_duplicate_total`);
/// - links dead-letter copies to their original topic and original timestamp;
/// - correlates flow requests and responses with bounded state: at most
///   ``AnalyzerLimits/maxPendingFlowRequests`` pending requests, evictions counted.
///
/// **Event time** is the record timestamp when its type is create or log-append time and it is positive; else
/// the CloudEvent `time`; else the receive time.
///
/// **Flow clock** (for timeouts) is the largest valid record timestamp seen (for records without one, the receive
/// time), moved forward by ``advance(nowMs:)``. The CloudEvent `time` never moves it: a forged time must not expire
/// every pending request. A request expires when the clock reaches its event time plus the flow's timeout; the
/// clock moves (and expiry runs) before a record is matched, so a response at or past the timeout finds its
/// request already counted as incomplete.
///
/// Semantics decisions:
/// - **Every record** (DLQ copies, outbox-internal records, duplicates included) adds 1 to `events_total` and to the
///   rollup events of its own topic. Redeliveries are counted in `events_duplicate_total` as well, never skipped.
/// - **Tombstones** count as `type="tombstone"`, not in `events_invalid_total` (nor ``RollupDelta/invalid``).
///   Raw and malformed records, and CloudEvents missing `id`, `source` or `type` or with an unsupported
///   `specversion`, are invalid with the decoder's ``InvalidReason``.
/// - **Type labels**: at most ``AnalyzerLimits/maxTypesPerTopic`` distinct CloudEvent types per topic; later ones,
///   and types over 200 bytes or with control characters, are `other`. The fixed labels (`raw`, `tombstone`,
///   `malformed`, `unknown`, `other`) are outside the limit; a CloudEvent type spelled like one shares its series.
/// - **Duplicates** are CloudEvent ids seen before on the same topic among its last ``AnalyzerLimits/duplicateWindow``
///   ids. A DLQ copy is compared with its own DLQ topic only. Duplicates are neither requests nor responses.
/// - **Flows**: requests and responses are records of the normal role (not DLQ, not outbox-internal) that are
///   CloudEvents or raw (not malformed, not tombstones) with a correlation key. A response completes the oldest
///   pending request of its flow with the same key; a response without one is ignored (``unmatchedResponses``).
///   Latency is response event time − request event time; a negative one is counted
///   (`flow_negative_latency_total`, ``FlowCounts/negative``), consumes the request and stays out of the histogram
///   and sketch. Every request is resolved exactly once: completed, negative, incomplete or evicted, all in the
///   window of the request.
/// - **Early responses** (replay reads the request and response partitions in parallel, so a response can come
///   before its request): a response without a pending request is counted in ``unmatchedResponses`` as before and
///   kept in a bounded buffer (at most ``AnalyzerLimits/maxPendingFlowRequests``, its own bound, the oldest evicted
///   and counted in ``earlyResponsesEvicted``) until the flow clock reaches its event time plus the flow's timeout
///   (then it is dropped, ``earlyResponsesExpired``). A request first takes the oldest buffered response of its flow
///   and key whose event time is within the timeout of its own (`|response − request| < timeout`, either side);
///   then it completes at once (or counts as negative when the response is stamped before it), in its own window,
///   exactly as if the two had been read in order. Only if there is none does it wait as a pending request. So the
///   outcome of a pair does not depend on which of the two was read first, as long as neither side is read more
///   than about a timeout (minus the latency) behind the flow clock; a response stamped a timeout or more before its
///   request only counts as negative when read after it (as before).
/// - **Dead letters**: the original topic is the listed source, else `__topic`, else the CloudEvent `topic`, else
///   `unknown`; one dead-letter topic names at most ``AnalyzerLimits/maxDeadLetterTopicsPerTopic`` original topics
///   (header values are data), the rest are `other`, and one original topic has at most as many
///   `dead_letter_topic` labels, the rest `other`. Distinct originals are remembered by (original topic, partition,
///   offset), else by (original topic, CloudEvent id), among the last ``AnalyzerLimits/duplicateWindow`` originals
///   over all dead-letter topics. The delay (DLQ record timestamp − `__timestamp`) is observed only when both are
///   known; a negative one counts as 0.
/// - **Delivery** (`event_delivery_seconds`) is observed only for a valid record timestamp; negative as 0.
public struct AnalysisEngine: Sendable {
    // MARK: Configuration

    private let analyzers: AnalyzerSet
    private let decoder: CloudEventDecoder
    private let limits: AnalyzerLimits
    private var flows: [FlowState]

    // MARK: State

    private var topicIDs: [String: Int] = [:]
    private var lastTopic: (name: String, id: Int)?
    /// Hashes CloudEvent ids into duplicate-window fingerprints (seeded per engine).
    private let idHash = FastHash()
    private var topics: [TopicState] = []
    private var correlator: FlowCorrelator
    private var deadLetterOriginals: BoundedSet<DeadLetterOriginal>
    private var clockMs: Int64 = .min
    private let clockSource: FlowClockSource
    private var unmatchedResponsesCount: Int64 = 0
    private var early: EarlyResponseBuffer
    private var earlyMatchedCount: Int64 = 0
    private var earlyExpiredCount: Int64 = 0
    private var earlyEvictedCount: Int64 = 0
    /// Restored requests of unknown flows, reported as removed by the next ``takePendingChanges()``.
    private var orphanedPending: [PendingFlowKey] = []
    /// Restored early responses of unknown flows, likewise.
    private var orphanedEarly: [PendingFlowKey] = []
    /// Flow hops handed out while ``routesFlows`` is set, until ``takeFlowHops()``.
    private var outbox: [FlowHop] = []
    private let flowIndexByName: [String: Int]

    // MARK: Rollup accumulators (keyed by interned ids; materialized by takeRollupDelta)

    private var eventDeltas: [EventDeltaKey: EventCounts] = [:]
    /// The counts of the current run of records sharing a window, topic and type, added to `eventDeltas` when the
    /// run ends: records come in runs of one partition, so the dictionary is hashed once per run, not per record.
    private var eventRunKey = EventDeltaKey(window: .min, topic: -1, type: -1)
    private var eventRun = EventCounts()
    private var flowDeltas: [FlowDeltaKey: FlowCounts] = [:]
    private var deadLetterDeltas: [DeadLetterDeltaKey: DeadLetterCounts] = [:]
    private var invalidDeltas: [InvalidDeltaKey: Int64] = [:]

    /// Records processed since the engine was created.
    public private(set) var recordsProcessed: Int64 = 0

    /// Requests waiting for their response, over all flows.
    public var pendingFlowRequests: Int { correlator.pendingCount }

    /// Responses that found no pending request when analyzed (internal diagnostics; not a metric). They are kept as
    /// early responses; those later taken by a request are ``earlyResponsesMatched``.
    public var unmatchedResponses: Int64 { unmatchedResponsesCount }

    /// Early responses buffered (responses waiting for their request), over all flows.
    public var pendingEarlyResponses: Int { early.count }

    /// Early responses taken by a request that came after them (internal diagnostics).
    public var earlyResponsesMatched: Int64 { earlyMatchedCount }

    /// Early responses dropped because no request took them within the flow's timeout (internal diagnostics).
    public var earlyResponsesExpired: Int64 { earlyExpiredCount }

    /// Early responses dropped by the memory bound, oldest first (internal diagnostics).
    public var earlyResponsesEvicted: Int64 { earlyEvictedCount }

    /// Pending flow requests evicted by ``AnalyzerLimits/maxPendingFlowRequests``, over all flows.
    public var flowRequestsEvicted: Int64 { flows.reduce(0) { $0 + $1.evicted } }

    /// The decoder's options (what a ``PrescannedMembers/prescan(_:options:)`` for ``process(topic:partition:offset:timestampMs:timestampType:headers:keyBytes:value:receivedAtMs:prescanned:)`` must use).
    public var decoderOptions: DecoderOptions { decoder.options }

    /// The flow clock in milliseconds (`Int64.min` before the first record).
    public var flowClockMs: Int64 { clockMs }

    /// Creates an engine for an analyzer set.
    ///
    /// The decoder's dead-letter topics are the listed ``AnalyzerSet/deadLetterTopics`` and its patterns the
    /// ``AnalyzerSet/deadLetterPatterns`` globs; records with Dapr's `__topic` and `__offset` headers are
    /// dead-letter copies on any topic.
    public init(analyzers: AnalyzerSet, clock: FlowClockSource = .recordTimestamps) {
        self.clockSource = clock
        self.analyzers = analyzers
        self.limits = analyzers.limits
        self.decoder = CloudEventDecoder(
            options: DecoderOptions(
                dlqTopics: Set(analyzers.deadLetterTopics.map(\.topic)),
                dlqTopicGlobMatchers: analyzers.deadLetterPatterns.map(\.glob)
            )
        )
        self.flows = analyzers.flows.map(FlowState.init)
        var byName: [String: Int] = [:]
        for (index, flow) in analyzers.flows.enumerated() where byName[flow.name] == nil { byName[flow.name] = index }
        self.flowIndexByName = byName
        self.correlator = FlowCorrelator(
            timeoutsMs: flows.map(\.timeoutMs),
            maxPending: analyzers.limits.maxPendingFlowRequests
        )
        self.early = EarlyResponseBuffer(
            timeoutsMs: flows.map(\.timeoutMs),
            maxCount: analyzers.limits.maxPendingFlowRequests
        )
        self.deadLetterOriginals = BoundedSet(capacity: analyzers.limits.duplicateWindow)
    }

    // MARK: - Per record

    /// Analyzes one record. Every record is counted exactly once, whatever it holds.
    ///
    /// - Parameters:
    ///   - topic: The Kafka topic.
    ///   - partition: The partition.
    ///   - offset: The offset.
    ///   - timestampMs: The record timestamp in milliseconds.
    ///   - timestampType: The record timestamp type.
    ///   - headers: The record headers in wire order.
    ///   - key: The key bytes, or `nil`.
    ///   - value: The value bytes, or `nil` for a tombstone; only read during the call.
    ///   - receivedAtMs: When the analyzer read the record (wall clock, milliseconds).
    public mutating func process(
        topic: String,
        partition: Int32,
        offset: Int64,
        timestampMs: Int64,
        timestampType: TimestampType,
        headers: [RecordHeader],
        key: [UInt8]?,
        value: UnsafeRawBufferPointer?,
        receivedAtMs: Int64
    ) {
        process(
            topic: topic,
            partition: partition,
            offset: offset,
            timestampMs: timestampMs,
            timestampType: timestampType,
            headers: headers,
            keyBytes: key?.count,
            value: value,
            receivedAtMs: receivedAtMs
        )
    }

    /// Analyzes one record whose key is known only by its size (the engine reads nothing else of it); see
    /// ``process(topic:partition:offset:timestampMs:timestampType:headers:key:value:receivedAtMs:)``.
    ///
    /// `prescanned`: what ``PrescannedMembers/prescan(_:options:)`` found in `value` with ``decoderOptions``
    /// (on another thread, ahead of this call; read during the call only); the decoder then does not scan the value
    /// again.
    public mutating func process(
        topic: String,
        partition: Int32,
        offset: Int64,
        timestampMs: Int64,
        timestampType: TimestampType,
        headers: [RecordHeader],
        keyBytes: Int?,
        value: UnsafeRawBufferPointer?,
        receivedAtMs: Int64,
        prescanned: UnsafePointer<PrescannedMembers>? = nil
    ) {
        let topicID = recordTopicID(topic)
        // A long id is left as its bytes (`idBytes`): the engine hashes it, and builds its string only for a dead
        // letter (a string of more than 15 bytes is an allocation, freed again at the end of the record).
        var deferredID: Range<Int>?
        let event = decoder.decode(
            topic: topic,
            topicClass: topics[topicID].topicClass,
            partition: partition,
            offset: offset,
            timestampMs: timestampMs,
            timestampType: timestampType,
            headers: headers,
            keyBytes: keyBytes,
            value: value,
            prescanned: prescanned,
            deferredID: &deferredID
        )
        let idBytes = deferredID.flatMap { range in value.map { UnsafeRawBufferPointer(rebasing: $0[range]) } }
        recordsProcessed += 1
        // The id's fingerprint now, so that the duplicate window's slots are fetched while the flows' are. (The
        // same hash as of the id's string: the deferred bytes are its UTF-8.)
        var idFingerprint: UInt64?
        if let idBytes, event.isCloudEvent {
            idFingerprint = idHash.hash(idBytes)
        } else if event.isCloudEvent, let id = event.id, !id.isEmpty {
            idFingerprint = idHash.hash(id)
        }
        if let idFingerprint { topics[topicID].seenIDs.prefetch(idFingerprint) }
        prefetchFlowSlots(event, topic: topicID)
        let timestampValid = (timestampType == .createTime || timestampType == .logAppendTime) && timestampMs > 0
        let eventTimeMs = timestampValid ? timestampMs : (event.ceTime?.epochMilliseconds ?? receivedAtMs)
        let window = windowStart(ofEventTimeMs: eventTimeMs)

        // Events: exactly once.
        let typeID = typeLabel(of: event, topic: topicID)
        let bytes = Int64(event.valueBytes ?? 0)
        topics[topicID].consumed += 1
        topics[topicID].typeCounts[typeID] += 1
        let eventKey = EventDeltaKey(window: window, topic: topicID, type: typeID)
        if eventKey != eventRunKey {
            endEventRun()
            eventRunKey = eventKey
        }
        eventRun.events += 1
        eventRun.bytes += bytes

        // Flags.
        var bits = event.flags.rawValue
        while bits != 0 {
            let bit = bits.trailingZeroBitCount
            topics[topicID].flagCounts[bit] += 1
            bits &= bits - 1
        }

        // Invalid reasons (tombstones excluded).
        if let reason = event.invalidReason, reason != .tombstone {
            let reasonIndex = Self.reasonIndex(reason)
            topics[topicID].invalidCounts[reasonIndex] += 1
            invalidDeltas[InvalidDeltaKey(window: window, topic: topicID, reason: reasonIndex), default: 0] += 1
        }

        // Delivery delay.
        if timestampValid {
            let (delay, overflow) = receivedAtMs.subtractingReportingOverflow(timestampMs)
            if !overflow { topics[topicID].delivery.record(milliseconds: delay) }
        }

        // Duplicates: per topic, by CloudEvent id.
        var duplicate = false
        if let idFingerprint {
            // A 64-bit fingerprint instead of the string: a fraction of the memory, and a false match among
            // 100,000 remembered ids has a probability of about 10⁻¹² per record (the window compares 43 of its bits).
            if !topics[topicID].seenIDs.insert(idFingerprint) {
                duplicate = true
                topics[topicID].duplicates += 1
            }
        }

        // Dead letters.
        if event.role == .dlq {
            if let idBytes {
                // A copy with the id built (a `var` event cost a copy of the whole event per record).
                var withID = event
                withID.id = String(decoding: idBytes, as: UTF8.self)
                deadLetter(withID, topic: topicID, eventTimeMs: eventTimeMs, timestampValid: timestampValid)
            } else {
                deadLetter(event, topic: topicID, eventTimeMs: eventTimeMs, timestampValid: timestampValid)
            }
        }

        // Flow clock and expiry.
        if clockSource == .recordTimestamps {
            let clockCandidate = timestampValid ? timestampMs : receivedAtMs
            if clockCandidate > clockMs { moveClock(to: clockCandidate) }
        }

        // Flows.
        if event.role == .normal && !duplicate
            && (event.isCloudEvent || event.parserClass == .raw)
            && !(topics[topicID].responseFlows.isEmpty && topics[topicID].requestFlows.isEmpty)
        {
            correlate(
                event,
                topic: topicID,
                origin: RequestOrigin(topic: topic, partition: partition, offset: offset),
                eventTimeMs: eventTimeMs,
                headers: headers,
                value: value
            )
        }
    }

    /// Asks the CPU for the correlation-table slots this record's flows will look up (trace-id flows: their key is
    /// at hand in the decoded event), before the record's other work (counts, the duplicate window), so that the
    /// cache misses overlap it.
    ///
    /// With a backlog, the pending requests and early responses hold hundreds of thousands of keys, tens of megabytes
    /// of table, and a key's slot is a cache miss: `ChainTable.find` was the intake's largest single symbol in a
    /// 1,000,000-record backfill (5.6-7% of the process's samples, 89% of them on its two loads).
    @inline(__always)
    private func prefetchFlowSlots(_ event: DecodedEvent, topic: Int) {
        guard !routesFlows, let trace = event.trace, event.role == .normal else { return }
        let key = CorrelationKey(traceHigh: trace.traceHigh, traceLow: trace.traceLow)
        // By index: a `for … in` over the array would retain and release it per record.
        let responses = topics[topic].responseFlows.count
        let all = responses + topics[topic].requestFlows.count
        for position in 0..<all {
            let flowIndex =
                position < responses
                ? topics[topic].responseFlows[position] : topics[topic].requestFlows[position - responses]
            guard flows[flowIndex].correlatesByTraceID else { continue }
            correlator.prefetch(flow: flowIndex, key: key)
            early.prefetch(flow: flowIndex, key: key)
        }
    }

    /// Moves the flow clock to wall time when the intake is idle or caught up, so that requests expire even when
    /// no more records arrive. The clock never moves backwards.
    public mutating func advance(nowMs: Int64) {
        if nowMs > clockMs { moveClock(to: nowMs) }
    }

    private mutating func moveClock(to newClockMs: Int64) {
        clockMs = newClockMs
        if let earliest = early.earliestDeadlineMs, earliest <= newClockMs {
            var dropped: Int64 = 0
            early.expire(clockMs: newClockMs) { _ in dropped += 1 }
            earlyExpiredCount += dropped
        }
        guard let earliest = correlator.earliestDeadlineMs, earliest <= newClockMs else { return }
        var expired: [PendingRequest] = []
        correlator.expire(clockMs: newClockMs) { expired.append($0) }
        for request in expired {
            flows[request.flow].incomplete += 1
            flowDeltas[flowKey(request), default: FlowCounts()].incomplete += 1
        }
    }

    private func flowKey(_ request: PendingRequest) -> FlowDeltaKey {
        FlowDeltaKey(window: windowStart(ofEventTimeMs: request.timeMs), flow: request.flow)
    }

    // MARK: Flows

    private mutating func correlate(
        _ event: DecodedEvent,
        topic: Int,
        origin: RequestOrigin,
        eventTimeMs: Int64,
        headers: [RecordHeader],
        value: UnsafeRawBufferPointer?
    ) {
        var hopIndex: UInt16 = 0
        // `flows[flowIndex].…` rather than a local copy of the flow: a copy retains and releases its strings per record.
        // The topic's flow lists by index, for the same reason (a `for … in` retains and releases the array).
        for position in 0..<topics[topic].responseFlows.count {
            let flowIndex = topics[topic].responseFlows[position]
            if let wanted = flows[flowIndex].toType, event.type != wanted { continue }
            guard let key = correlationKey(flows[flowIndex].correlation, event: event, headers: headers, value: value)
            else {
                continue
            }
            if routesFlows {
                outbox.append(hop(flowIndex, .response, key, eventTimeMs, origin, &hopIndex))
            } else if !isTaken(flowIndex, key, origin, &hopIndex) {
                correlateResponse(flow: flowIndex, key: key, timeMs: eventTimeMs, origin: origin)
            }
        }
        for position in 0..<topics[topic].requestFlows.count {
            let flowIndex = topics[topic].requestFlows[position]
            if let wanted = flows[flowIndex].fromType, event.type != wanted { continue }
            guard let key = correlationKey(flows[flowIndex].correlation, event: event, headers: headers, value: value)
            else {
                continue
            }
            if routesFlows {
                outbox.append(hop(flowIndex, .request, key, eventTimeMs, origin, &hopIndex))
            } else if !isTaken(flowIndex, key, origin, &hopIndex) {
                correlateRequest(flow: flowIndex, key: key, timeMs: eventTimeMs, origin: origin)
            }
        }
    }

    private func hop(
        _ flow: Int,
        _ role: FlowHop.Role,
        _ key: CorrelationKey,
        _ timeMs: Int64,
        _ origin: RequestOrigin,
        _ index: inout UInt16
    ) -> FlowHop {
        defer { index &+= 1 }
        return FlowHop(
            flow: flows[flow].name,
            role: role,
            key: key.text,
            timeMs: timeMs,
            topic: origin.topic,
            partition: origin.partition,
            offset: origin.offset,
            index: index
        )
    }

    /// Whether a flow event read in memory was already correlated through the repartition topic (and counts the
    /// skip); advances the record's hop index either way.
    private mutating func isTaken(
        _ flow: Int,
        _ key: CorrelationKey,
        _ origin: RequestOrigin,
        _ index: inout UInt16
    ) -> Bool {
        defer { index &+= 1 }
        guard !takenFlowHops.isEmpty,
            takenFlowHops.contains(
                flow: flows[flow].name,
                key: key.text,
                topic: origin.topic,
                partition: origin.partition,
                offset: origin.offset,
                index: index
            )
        else { return false }
        takenFlowEventsSkipped += 1
        return true
    }

    private mutating func correlateResponse(
        flow flowIndex: Int,
        key: CorrelationKey,
        timeMs: Int64,
        origin: RequestOrigin
    ) {
        guard let request = correlator.takeRequest(flow: flowIndex, key: key) else {
            unmatchedResponsesCount += 1
            var evicted: Int64 = 0
            early.add(flow: flowIndex, key: key, timeMs: timeMs, origin: origin) { _ in evicted += 1 }
            earlyEvictedCount += evicted
            return
        }
        complete(request, responseTimeMs: timeMs)
    }

    private mutating func correlateRequest(
        flow flowIndex: Int,
        key: CorrelationKey,
        timeMs: Int64,
        origin: RequestOrigin
    ) {
        if let response = early.take(flow: flowIndex, key: key, requestTimeMs: timeMs, origin: origin) {
            earlyMatchedCount += 1
            complete(PendingRequest(flow: flowIndex, key: key, timeMs: timeMs), responseTimeMs: response.timeMs)
            return
        }
        var evicted: [PendingRequest] = []
        correlator.addRequest(flow: flowIndex, key: key, timeMs: timeMs, origin: origin) { evicted.append($0) }
        countEvicted(evicted)
    }

    // MARK: - Flows across replicas (the repartition topic)

    /// Whether flow events are handed out as hops (``takeFlowHops()``) instead of correlated here: set it while the
    /// replica is assigned fewer than all partitions of the flows' topics (DESIGN.md section 5). Everything else about
    /// a record (events, dead letters, duplicates, delivery) is still analyzed here.
    public var routesFlows = false

    /// Flow events of records read again that their shards already took through the repartition topic; set on
    /// assignment while correlating in memory (empty otherwise, and then free).
    public var takenFlowHops = TakenFlowHops()

    /// Flow events skipped because of ``takenFlowHops``.
    public private(set) var takenFlowEventsSkipped: Int64 = 0

    /// The hops handed out since the last call, in the order of the records they came from (a record's responses
    /// before its requests).
    public mutating func takeFlowHops() -> [FlowHop] {
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    /// Hops waiting for ``takeFlowHops()``.
    public var flowHopsWaiting: Int { outbox.count }

    /// Correlates a hop read from the repartition topic, exactly as the record it came from would have been
    /// correlated here. Returns `false` (and counts nothing) for a flow this engine does not define.
    @discardableResult
    public mutating func correlate(_ hop: FlowHop) -> Bool {
        guard let flowIndex = flowIndexByName[hop.flow] else { return false }
        let origin = RequestOrigin(topic: hop.topic, partition: hop.partition, offset: hop.offset)
        let key = CorrelationKey(hop.key)
        switch hop.role {
        case .response: correlateResponse(flow: flowIndex, key: key, timeMs: hop.timeMs, origin: origin)
        case .request: correlateRequest(flow: flowIndex, key: key, timeMs: hop.timeMs, origin: origin)
        }
        return true
    }

    /// Forgets every pending request and early response without counting them, and their journal: for a replica
    /// whose shards change (a rebalance) right after everything was stored; the new owner of each shard restores
    /// them (``restorePending(_:flowClockMs:earlyResponses:)``). The flow clock is kept.
    public mutating func dropPendingFlows() {
        correlator = FlowCorrelator(timeoutsMs: flows.map(\.timeoutMs), maxPending: limits.maxPendingFlowRequests)
        early = EarlyResponseBuffer(timeoutsMs: flows.map(\.timeoutMs), maxCount: limits.maxPendingFlowRequests)
        orphanedPending.removeAll()
        orphanedEarly.removeAll()
    }

    /// Counts a request answered by a response: completed with its latency, or negative, in the request's window.
    private mutating func complete(_ request: PendingRequest, responseTimeMs: Int64) {
        let deltaKey = flowKey(request)
        let (latency, overflow) = responseTimeMs.subtractingReportingOverflow(request.timeMs)
        if latency < 0 || overflow {
            flows[request.flow].negative += 1
            flowDeltas[deltaKey, default: FlowCounts()].negative += 1
        } else {
            flows[request.flow].latency.record(milliseconds: latency)
            Self.recordCompleted(latency, in: &flowDeltas[deltaKey, default: FlowCounts()])
        }
    }

    /// One dictionary access for both fields of a completed flow's window.
    private static func recordCompleted(_ latencyMs: Int64, in counts: inout FlowCounts) {
        counts.completed += 1
        counts.latency.record(Double(latencyMs))
    }

    private mutating func countEvicted(_ evicted: [PendingRequest]) {
        for request in evicted {
            flows[request.flow].evicted += 1
            flowDeltas[flowKey(request), default: FlowCounts()].evicted += 1
        }
    }

    // MARK: - Pending flow requests (crash safety)

    /// Returns the changes to the pending flow requests since the last call (or since the engine was created or
    /// restored) and starts a new journal; cheap: it reads only the requests added and the persisted requests
    /// removed since the last call.
    ///
    /// Take it together with ``takeRollupDelta()`` and store both, with the next offsets, in one transaction: the
    /// store then holds exactly the requests pending at that moment, which ``restorePending(_:flowClockMs:earlyResponses:)``
    /// brings back after a restart. A request added and resolved between two takes appears in neither list.
    /// The changes are not kept: if storing them fails, store them again (or restart from the store).
    public mutating func takePendingChanges() -> PendingFlowChanges {
        let (added, removed) = correlator.takeChanges()
        var changes = PendingFlowChanges(flowClockMs: clockMs)
        changes.added.reserveCapacity(added.count)
        for snapshot in added {
            changes.added.append(
                PendingFlowRequest(
                    flow: flows[snapshot.request.flow].name,
                    topic: snapshot.origin.topic,
                    partition: snapshot.origin.partition,
                    offset: snapshot.origin.offset,
                    correlationKey: snapshot.request.key.text,
                    timestampMs: snapshot.request.timeMs,
                    windowStartMs: windowStart(ofEventTimeMs: snapshot.request.timeMs),
                    deadlineMs: snapshot.deadlineMs,
                    sequence: snapshot.sequence
                )
            )
        }
        changes.removed = orphanedPending
        orphanedPending.removeAll()
        changes.removed.reserveCapacity(changes.removed.count + removed.count)
        for (flow, origin) in removed {
            changes.removed.append(
                PendingFlowKey(
                    flow: flows[flow].name,
                    topic: origin.topic,
                    partition: origin.partition,
                    offset: origin.offset
                )
            )
        }
        let (earlyAdded, earlyRemoved) = early.takeChanges()
        changes.earlyAdded = earlyAdded.map {
            EarlyFlowResponse(
                flow: flows[$0.flow].name,
                topic: $0.origin.topic,
                partition: $0.origin.partition,
                offset: $0.origin.offset,
                correlationKey: $0.key.text,
                timestampMs: $0.timeMs,
                deadlineMs: $0.deadlineMs,
                sequence: $0.sequence
            )
        }
        changes.earlyRemoved = orphanedEarly
        orphanedEarly.removeAll()
        for (flow, origin) in earlyRemoved {
            changes.earlyRemoved.append(
                PendingFlowKey(
                    flow: flows[flow].name,
                    topic: origin.topic,
                    partition: origin.partition,
                    offset: origin.offset
                )
            )
        }
        return changes
    }

    /// Re-adds stored pending flow requests (after a restart), before any record is processed.
    ///
    /// Nothing is counted: not as events, not as requests, and the requests are not reported as added by
    /// ``takePendingChanges()`` (they are already stored); they are reported as removed once they are resolved,
    /// and then counted once, like any request, in the window of their timestamp. They keep their deadline, FIFO
    /// order per key and eviction order (by ``PendingFlowRequest/sequence``). Beyond
    /// ``AnalyzerLimits/maxPendingFlowRequests`` the oldest are evicted and counted as evicted (resolved once).
    /// Requests of a flow the engine does not know are dropped, uncounted, and reported as removed. A request
    /// already pending (same ``PendingFlowRequest/key``) is skipped.
    ///
    /// - Parameters:
    ///   - requests: The stored requests, in any order.
    ///   - flowClockMs: The stored flow clock (``PendingFlowChanges/flowClockMs``); the clock moves to it if it is
    ///     later, without expiring anything (a stored request's deadline is after it unless it was added late).
    ///   - earlyResponses: The stored early responses (``PendingFlowChanges/earlyAdded``), in any order: restored
    ///     the same way (uncounted, not reported as added, reported as removed once taken, expired or evicted,
    ///     kept in ``EarlyFlowResponse/sequence`` order; unknown flows dropped and reported as removed, ones
    ///     already buffered skipped; evictions by the bound counted in ``earlyResponsesEvicted``).
    public mutating func restorePending(
        _ requests: [PendingFlowRequest],
        flowClockMs: Int64 = .min,
        earlyResponses: [EarlyFlowResponse] = []
    ) {
        if flowClockMs > clockMs { clockMs = flowClockMs }
        var flowIDs: [String: Int] = [:]
        for (index, flow) in flows.enumerated() where flowIDs[flow.name] == nil { flowIDs[flow.name] = index }
        var snapshots: [PendingSnapshot] = []
        snapshots.reserveCapacity(requests.count)
        for request in requests {
            guard let flow = flowIDs[request.flow] else {
                orphanedPending.append(request.key)
                continue
            }
            snapshots.append(
                PendingSnapshot(
                    request: PendingRequest(
                        flow: flow,
                        key: CorrelationKey(request.correlationKey),
                        timeMs: request.timestampMs
                    ),
                    origin: RequestOrigin(topic: request.topic, partition: request.partition, offset: request.offset),
                    deadlineMs: request.deadlineMs,
                    sequence: request.sequence
                )
            )
        }
        var evicted: [PendingRequest] = []
        correlator.restore(snapshots) { evicted.append($0) }
        countEvicted(evicted)

        var responses: [EarlyResponse] = []
        responses.reserveCapacity(earlyResponses.count)
        for response in earlyResponses {
            guard let flow = flowIDs[response.flow] else {
                orphanedEarly.append(response.key)
                continue
            }
            responses.append(
                EarlyResponse(
                    flow: flow,
                    key: CorrelationKey(response.correlationKey),
                    timeMs: response.timestampMs,
                    origin: RequestOrigin(
                        topic: response.topic,
                        partition: response.partition,
                        offset: response.offset
                    ),
                    deadlineMs: response.deadlineMs,
                    sequence: response.sequence
                )
            )
        }
        var earlyEvicted: Int64 = 0
        early.restore(responses) { _ in earlyEvicted += 1 }
        earlyEvictedCount += earlyEvicted
    }

    private func correlationKey(
        _ correlation: Correlation,
        event: DecodedEvent,
        headers: [RecordHeader],
        value: UnsafeRawBufferPointer?
    ) -> CorrelationKey? {
        switch correlation {
        case .traceID:
            // The integers the decoder parsed (the same key as the id's lowercase hex text).
            return event.trace.map { CorrelationKey(traceHigh: $0.traceHigh, traceLow: $0.traceLow) }
        case .dataPath(let path):
            guard let value else { return nil }
            let text: String?
            if event.isCloudEvent {
                text = event.extractDataString(atPath: path, in: value)
            } else if event.invalidReason == .missingSpecversion || event.invalidReason == .nonObjectJSON {
                // A raw JSON value: the whole value is the data.
                text = JSONPath.extractString(atPath: path, in: value)
            } else {
                text = nil
            }
            guard let text, !text.isEmpty else { return nil }
            return CorrelationKey(text)
        case .header(let name):
            guard let header = headers.last(where: { $0.name == name }), let bytes = header.value, !bytes.isEmpty
            else { return nil }
            return CorrelationKey(String(decoding: bytes, as: UTF8.self))
        }
    }

    // MARK: Dead letters

    private mutating func deadLetter(_ event: DecodedEvent, topic: Int, eventTimeMs: Int64, timestampValid: Bool) {
        let origin = event.dlq
        var originName = "unknown"
        if let listed = topics[topic].listedSource, !listed.isEmpty {
            originName = listed
        } else if let header = origin?.originTopic, !header.isEmpty {
            originName = header
        } else if let attribute = event.topicAttribute, !attribute.isEmpty {
            // An empty `__topic` header: the decoder took the header; the CloudEvent still names the topic.
            originName = attribute
        }
        var originID = intern(originName)
        // Bound the original topics one dead-letter topic can name (its headers are data, not configuration).
        if !topics[topic].originTopics.contains(originID) {
            if topics[topic].originTopics.count < limits.maxDeadLetterTopicsPerTopic {
                topics[topic].originTopics.insert(originID)
            } else {
                originID = intern("other")
            }
        }
        // The dead_letter_topic label, capped per original topic.
        var label = topic
        if topics[originID].deadLetterCopies[topic] == nil {
            if topics[originID].deadLetterLabelCount >= limits.maxDeadLetterTopicsPerTopic {
                label = Self.otherLabel
            } else {
                topics[originID].deadLetterLabelCount += 1
            }
        }
        topics[originID].deadLetterCopies[label, default: 0] += 1

        var originalTimeMs = eventTimeMs
        if let originTimestamp = origin?.originTimestampMs, originTimestamp > 0 {
            originalTimeMs = originTimestamp
        } else if let ceTime = event.ceTime {
            originalTimeMs = ceTime.epochMilliseconds
        }

        var distinct = true
        if let partition = origin?.originPartition, let offset = origin?.originOffset {
            distinct = deadLetterOriginals.insert(.position(topic: originID, partition: partition, offset: offset))
        } else if let id = event.id, !id.isEmpty {
            distinct = deadLetterOriginals.insert(.id(topic: originID, id: id))
        }

        let key = DeadLetterDeltaKey(
            window: windowStart(ofEventTimeMs: originalTimeMs),
            origin: originID,
            deadLetter: label
        )
        deadLetterDeltas[key, default: DeadLetterCounts()].copies += 1
        if distinct { deadLetterDeltas[key, default: DeadLetterCounts()].distinctOriginals += 1 }
        if timestampValid, let delay = origin?.dlqDelayMs {
            topics[originID].deadLetterDelay.record(milliseconds: delay)
            deadLetterDeltas[key, default: DeadLetterCounts()].delay.record(Double(Swift.max(0, delay)))
        }
    }

    // MARK: Interning and labels

    /// The id of a record's topic. Records come in runs of one topic (a fetch is per partition) and the intake hands
    /// the same string for every record of a topic, so the last one is compared first (equal strings sharing storage
    /// compare without reading their bytes).
    private mutating func recordTopicID(_ name: String) -> Int {
        if let last = lastTopic, last.name == name { return last.id }
        let id = intern(name)
        lastTopic = (name, id)
        return id
    }

    private mutating func intern(_ name: String) -> Int {
        if let id = topicIDs[name] { return id }
        let id = topics.count
        topicIDs[name] = id
        var state = TopicState(
            name: name,
            duplicateWindow: limits.duplicateWindow,
            topicClass: decoder.classify(topic: name)
        )
        state.listedSource = analyzers.deadLetterTopic(named: name)?.sourceTopic
        for (index, flow) in flows.enumerated() {
            if flow.from == name { state.requestFlows.append(index) }
            if flow.to == name { state.responseFlows.append(index) }
        }
        topics.append(state)
        return id
    }

    private static let otherLabel = -1

    /// The `type` label id of a record on a topic, registering new CloudEvent types up to the limit.
    private mutating func typeLabel(of event: DecodedEvent, topic: Int) -> Int {
        switch event.parserClass {
        case .tombstone: return topics[topic].reservedType("tombstone")
        case .malformed: return topics[topic].reservedType("malformed")
        case .raw: return topics[topic].reservedType("raw")
        case .cloudEvent, .binaryCloudEvent:
            guard let type = event.type, !type.isEmpty else { return topics[topic].reservedType("unknown") }
            // Most records of a topic share one type, often the very string (the decoder reuses Dapr's common ones).
            if let last = topics[topic].lastType, last.name == type { return last.id }
            if let id = topics[topic].typeIDs[type] {
                topics[topic].lastType = (type, id)
                return id
            }
            guard topics[topic].distinctTypes < limits.maxTypesPerTopic, Self.isAcceptableType(type) else {
                return topics[topic].reservedType("other")
            }
            topics[topic].distinctTypes += 1
            return topics[topic].register(type)
        }
    }

    /// A type is a label value of its own when it is at most 200 bytes and has no control characters.
    static func isAcceptableType(_ type: String) -> Bool {
        let utf8 = type.utf8
        guard utf8.count <= 200 else { return false }
        return !utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    /// The invalid reasons in a fixed order (a stored copy: the synthesized `allCases` builds a new array per call).
    static let invalidReasons: [InvalidReason] = InvalidReason.allCases

    private static func reasonIndex(_ reason: InvalidReason) -> Int {
        invalidReasons.firstIndex(of: reason) ?? 0
    }

    // MARK: - Rollup deltas

    private mutating func endEventRun() {
        guard eventRun.events > 0 else { return }
        eventDeltas[eventRunKey, default: EventCounts()].merge(eventRun)
        eventRun = EventCounts()
    }

    /// Returns the window deltas accumulated since the last call and starts new ones.
    public mutating func takeRollupDelta() -> RollupDelta {
        endEventRun()
        var delta = RollupDelta()
        delta.events.reserveCapacity(eventDeltas.count)
        for (key, counts) in eventDeltas {
            let topic = topics[key.topic]
            delta.events[EventKey(windowStartMs: key.window, topic: topic.name, type: topic.typeNames[key.type])] =
                counts
        }
        for (key, counts) in flowDeltas {
            delta.flows[FlowKey(windowStartMs: key.window, flow: flows[key.flow].name)] = counts
        }
        for (key, counts) in deadLetterDeltas {
            let label = key.deadLetter == Self.otherLabel ? "other" : topics[key.deadLetter].name
            delta.deadLetters[
                DeadLetterKey(windowStartMs: key.window, topic: topics[key.origin].name, deadLetterTopic: label)
            ] = counts
        }
        for (key, count) in invalidDeltas {
            delta.invalid[
                InvalidKey(
                    windowStartMs: key.window,
                    topic: topics[key.topic].name,
                    reason: Self.invalidReasons[key.reason]
                )
            ] = count
        }
        eventDeltas.removeAll(keepingCapacity: true)
        flowDeltas.removeAll(keepingCapacity: true)
        deadLetterDeltas.removeAll(keepingCapacity: true)
        invalidDeltas.removeAll(keepingCapacity: true)
        return delta
    }

    // MARK: - Metrics

    /// Appends the Prometheus text exposition (format 0.0.4) of every metric the engine owns, each with
    /// `# HELP` and `# TYPE` even before it has series. Series are sorted by label values.
    public func writeMetrics(into output: inout String) {
        let sortedTopics = topics.indices.sorted { topics[$0].name < topics[$1].name }
        let sortedFlows = flows.indices.sorted { flows[$0].name < flows[$1].name }
        let reasons = Self.invalidReasons.enumerated().sorted { $0.element.rawValue < $1.element.rawValue }
        let flagNames = DecoderFlags.named.map { ($0.flag.rawValue.trailingZeroBitCount, $0.name) }
            .sorted { $0.1 < $1.1 }

        var name = "flowmeter_events_total"
        writeHeader(
            name: name,
            type: "counter",
            help: "Records analyzed, each exactly once, by topic and CloudEvent type (raw, tombstone, malformed, "
                + "unknown, other for the rest).",
            into: &output
        )
        for topicID in sortedTopics {
            let topic = topics[topicID]
            let order = topic.typeNames.indices.sorted { topic.typeNames[$0] < topic.typeNames[$1] }
            for typeID in order where topic.typeCounts[typeID] > 0 {
                writeSample(
                    name: name,
                    label: "topic",
                    labelValue: topic.escaped,
                    label2: "type",
                    labelValue2: topic.typeEscaped[typeID],
                    value: topic.typeCounts[typeID],
                    into: &output
                )
            }
        }

        name = "flowmeter_events_invalid_total"
        writeHeader(
            name: name,
            type: "counter",
            help: "Records that are not valid CloudEvents, by reason (tombstones are not counted).",
            into: &output
        )
        for topicID in sortedTopics {
            let topic = topics[topicID]
            for (index, reason) in reasons where topic.invalidCounts[index] > 0 {
                writeSample(
                    name: name,
                    label: "topic",
                    labelValue: topic.escaped,
                    label2: "reason",
                    labelValue2: reason.rawValue,
                    value: topic.invalidCounts[index],
                    into: &output
                )
            }
        }

        name = "flowmeter_event_flags_total"
        writeHeader(name: name, type: "counter", help: "Decoder flags raised on records, by flag.", into: &output)
        for topicID in sortedTopics {
            let topic = topics[topicID]
            for (bit, flag) in flagNames where topic.flagCounts[bit] > 0 {
                writeSample(
                    name: name,
                    label: "topic",
                    labelValue: topic.escaped,
                    label2: "flag",
                    labelValue2: flag,
                    value: topic.flagCounts[bit],
                    into: &output
                )
            }
        }

        name = "flowmeter_events_duplicate_total"
        writeHeader(
            name: name,
            type: "counter",
            help: "Redeliveries of a CloudEvent id already seen on the topic (bounded window).",
            into: &output
        )
        for topicID in sortedTopics where topics[topicID].duplicates > 0 {
            let topic = topics[topicID]
            writeSample(name: name, label: "topic", labelValue: topic.escaped, value: topic.duplicates, into: &output)
        }

        name = "flowmeter_event_delivery_seconds"
        writeHeader(
            name: name,
            type: "histogram",
            help: "Analyzer read time minus record timestamp (negative values as 0).",
            into: &output
        )
        for topicID in sortedTopics where topics[topicID].delivery.count > 0 {
            topics[topicID].delivery.write(
                name: name,
                label: "topic",
                labelValue: topics[topicID].escaped,
                into: &output
            )
        }

        name = "flowmeter_flow_latency_seconds"
        writeHeader(
            name: name,
            type: "histogram",
            help: "Request record timestamp to response record timestamp, by flow.",
            into: &output
        )
        for flowID in sortedFlows {
            flows[flowID].latency.write(name: name, label: "flow", labelValue: flows[flowID].escaped, into: &output)
        }
        for (metric, help, value) in [
            (
                "flowmeter_flow_incomplete_total", "Requests with no response within the flow's timeout.",
                \FlowState.incomplete
            ),
            ("flowmeter_flow_evicted_total", "Pending requests dropped by the memory bound.", \FlowState.evicted),
            (
                "flowmeter_flow_negative_latency_total", "Responses stamped before their request (clock skew).",
                \FlowState.negative
            ),
        ] {
            writeHeader(name: metric, type: "counter", help: help, into: &output)
            for flowID in sortedFlows {
                let flow = flows[flowID]
                writeSample(
                    name: metric,
                    label: "flow",
                    labelValue: flow.escaped,
                    value: flow[keyPath: value],
                    into: &output
                )
            }
        }

        name = "flowmeter_deadletter_events_total"
        writeHeader(
            name: name,
            type: "counter",
            help: "Dead-lettered records (DLQ copies), by original topic and dead-letter topic.",
            into: &output
        )
        for topicID in sortedTopics where !topics[topicID].deadLetterCopies.isEmpty {
            let topic = topics[topicID]
            let series = topic.deadLetterCopies.map {
                (label: $0.key == Self.otherLabel ? "other" : topics[$0.key].name, id: $0.key, count: $0.value)
            }
            .sorted { $0.label < $1.label }
            for entry in series {
                let escapedLabel = entry.id == Self.otherLabel ? "other" : topics[entry.id].escaped
                writeSample(
                    name: name,
                    label: "topic",
                    labelValue: topic.escaped,
                    label2: "dead_letter_topic",
                    labelValue2: escapedLabel,
                    value: entry.count,
                    into: &output
                )
            }
        }

        name = "flowmeter_deadletter_delay_seconds"
        writeHeader(
            name: name,
            type: "histogram",
            help: "Original record timestamp to dead-letter record timestamp, by original topic.",
            into: &output
        )
        for topicID in sortedTopics where topics[topicID].deadLetterDelay.count > 0 {
            topics[topicID].deadLetterDelay.write(
                name: name,
                label: "topic",
                labelValue: topics[topicID].escaped,
                into: &output
            )
        }

        name = "flowmeter_records_consumed_total"
        writeHeader(name: name, type: "counter", help: "Records consumed and analyzed, by topic.", into: &output)
        for topicID in sortedTopics where topics[topicID].consumed > 0 {
            let topic = topics[topicID]
            writeSample(name: name, label: "topic", labelValue: topic.escaped, value: topic.consumed, into: &output)
        }
    }
}

// MARK: - Internal state

/// Per-topic counters; a topic is interned once and addressed by its index.
private struct TopicState: Sendable {
    let name: String
    let escaped: String
    var listedSource: String?
    var requestFlows: [Int] = []
    var responseFlows: [Int] = []

    var consumed: Int64 = 0
    var typeIDs: [String: Int] = [:]
    /// The type label looked up last (see ``AnalysisEngine/typeLabel(of:topic:)``).
    var lastType: (name: String, id: Int)?
    /// The decoder's classification of the topic name.
    let topicClass: TopicClass
    var typeNames: [String] = []
    var typeEscaped: [String] = []
    var typeCounts: [Int64] = []
    var distinctTypes = 0
    var reservedIDs: [String: Int] = [:]

    var invalidCounts = [Int64](repeating: 0, count: InvalidReason.allCases.count)
    var flagCounts = [Int64](repeating: 0, count: 64)
    var duplicates: Int64 = 0
    var seenIDs: FingerprintWindow
    var delivery = SecondsHistogram()

    /// As an original topic: DLQ copies by dead-letter topic id (or the `other` label).
    var deadLetterCopies: [Int: Int64] = [:]
    var deadLetterLabelCount = 0
    var deadLetterDelay = SecondsHistogram()
    /// As a dead-letter topic: the original topics its records named.
    var originTopics: Set<Int> = []

    init(name: String, duplicateWindow: Int, topicClass: TopicClass) {
        self.name = name
        self.escaped = escapeLabelValue(name)
        self.seenIDs = FingerprintWindow(capacity: duplicateWindow)
        self.topicClass = topicClass
    }

    /// Registers a type label; returns its id.
    mutating func register(_ type: String) -> Int {
        let id = typeNames.count
        typeIDs[type] = id
        typeNames.append(type)
        typeEscaped.append(escapeLabelValue(type))
        typeCounts.append(0)
        return id
    }

    /// The id of a fixed label (`raw`, `tombstone`, `malformed`, `unknown`, `other`), outside the type limit.
    mutating func reservedType(_ label: String) -> Int {
        if let id = reservedIDs[label] { return id }
        // A CloudEvent type spelled like a fixed label shares its series.
        let id = typeIDs[label] ?? register(label)
        reservedIDs[label] = id
        return id
    }
}

/// A configured flow and its live counters.
private struct FlowState: Sendable {
    let name: String
    let escaped: String
    let from: String
    let to: String
    let fromType: String?
    let toType: String?
    let correlation: Correlation
    /// Whether `correlation` is the trace id (a plain flag: matching the enum copied its payload per record).
    let correlatesByTraceID: Bool
    let timeoutMs: Int64
    var latency = SecondsHistogram()
    var incomplete: Int64 = 0
    var evicted: Int64 = 0
    var negative: Int64 = 0

    init(_ definition: FlowDefinition) {
        name = definition.name
        escaped = escapeLabelValue(definition.name)
        from = definition.from
        to = definition.to
        fromType = definition.fromType
        toType = definition.toType
        correlation = definition.correlation
        if case .traceID = definition.correlation { correlatesByTraceID = true } else { correlatesByTraceID = false }
        let (seconds, attoseconds) = definition.timeout.components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        timeoutMs = overflow ? Int64.max : ms &+ attoseconds / 1_000_000_000_000_000
    }
}

private struct EventDeltaKey: Hashable, Sendable {
    var window: Int64
    var topic: Int
    var type: Int
}

private struct FlowDeltaKey: Hashable, Sendable {
    var window: Int64
    var flow: Int
}

private struct DeadLetterDeltaKey: Hashable, Sendable {
    var window: Int64
    var origin: Int
    var deadLetter: Int
}

private struct InvalidDeltaKey: Hashable, Sendable {
    var window: Int64
    var topic: Int
    var reason: Int
}

/// How a dead-lettered original is recognized across copies.
enum DeadLetterOriginal: Hashable, Sendable {
    case position(topic: Int, partition: Int32, offset: Int64)
    case id(topic: Int, id: String)
}
