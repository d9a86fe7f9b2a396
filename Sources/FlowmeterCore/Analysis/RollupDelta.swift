/// The start of the 1-minute event-time window that contains `eventTimeMs`: `floor(eventTimeMs / 60000) * 60000`
/// (floor also for times before the epoch).
@inline(__always)
public func windowStart(ofEventTimeMs eventTimeMs: Int64) -> Int64 {
    let minute: Int64 = 60_000
    let quotient = eventTimeMs / minute
    let floored = (eventTimeMs % minute < 0) ? quotient - 1 : quotient
    return floored * minute
}

/// Window rollup deltas accumulated by ``AnalysisEngine`` since its last ``AnalysisEngine/takeRollupDelta()``.
///
/// Every part is additive: ``merge(_:)`` adds counts and merges sketches exactly, so deltas from several flushes,
/// partitions or replicas combine in any order (the PostgreSQL upserts do the same).
public struct RollupDelta: Sendable, Hashable {
    /// Records and value bytes per window, topic and type label (`flowmeter.event_counts_1m`).
    public var events: [EventKey: EventCounts]
    /// Flow outcomes per window of the request's record timestamp and flow (`flowmeter.flow_latency_1m`).
    public var flows: [FlowKey: FlowCounts]
    /// Dead-letter copies per window of the original record timestamp, original topic and dead-letter topic
    /// (`flowmeter.deadletters_1m`).
    public var deadLetters: [DeadLetterKey: DeadLetterCounts]
    /// Records that are not valid CloudEvents per window, topic and reason (tombstones excluded).
    public var invalid: [InvalidKey: Int64]

    /// Creates a delta; empty by default.
    public init(
        events: [EventKey: EventCounts] = [:],
        flows: [FlowKey: FlowCounts] = [:],
        deadLetters: [DeadLetterKey: DeadLetterCounts] = [:],
        invalid: [InvalidKey: Int64] = [:]
    ) {
        self.events = events
        self.flows = flows
        self.deadLetters = deadLetters
        self.invalid = invalid
    }

    /// Whether the delta holds nothing.
    public var isEmpty: Bool { events.isEmpty && flows.isEmpty && deadLetters.isEmpty && invalid.isEmpty }

    /// Adds another delta: counts add, sketches merge exactly.
    public mutating func merge(_ other: RollupDelta) {
        for (key, value) in other.events { events[key, default: EventCounts()].merge(value) }
        for (key, value) in other.flows { flows[key, default: FlowCounts()].merge(value) }
        for (key, value) in other.deadLetters { deadLetters[key, default: DeadLetterCounts()].merge(value) }
        for (key, value) in other.invalid { invalid[key, default: 0] += value }
    }
}

/// A window, topic and `type` label (the label of `flowmeter_events_total`, `other` past the type limit).
public struct EventKey: Sendable, Hashable, CustomStringConvertible {
    /// The window start, epoch milliseconds at a UTC minute.
    public var windowStartMs: Int64
    /// The Kafka topic.
    public var topic: String
    /// The CloudEvent type, or `unknown`, `raw`, `tombstone`, `malformed`, `other`.
    public var type: String

    /// Creates a key.
    public init(windowStartMs: Int64, topic: String, type: String) {
        self.windowStartMs = windowStartMs
        self.topic = topic
        self.type = type
    }

    public var description: String { "\(windowStartMs) \(topic) \(type)" }
}

/// Event counts of one ``EventKey``.
public struct EventCounts: Sendable, Hashable {
    /// Records.
    public var events: Int64
    /// Value bytes (0 for tombstones).
    public var bytes: Int64

    /// Creates counts.
    public init(events: Int64 = 0, bytes: Int64 = 0) {
        self.events = events
        self.bytes = bytes
    }

    /// Adds other counts.
    public mutating func merge(_ other: EventCounts) {
        events += other.events
        bytes += other.bytes
    }
}

/// A window (of the request's record timestamp) and a flow.
public struct FlowKey: Sendable, Hashable, CustomStringConvertible {
    /// The window start of the request, epoch milliseconds at a UTC minute.
    public var windowStartMs: Int64
    /// The flow's name.
    public var flow: String

    /// Creates a key.
    public init(windowStartMs: Int64, flow: String) {
        self.windowStartMs = windowStartMs
        self.flow = flow
    }

    public var description: String { "\(windowStartMs) \(flow)" }
}

/// Outcomes of the requests of one ``FlowKey`` that were resolved since the last delta.
///
/// Each request is resolved exactly once: completed (latency in ``latency``), incomplete (timed out), negative
/// (response stamped before the request; not in ``latency``) or evicted (memory bound).
public struct FlowCounts: Sendable, Hashable {
    /// Requests matched by a response at or after the request's timestamp.
    public var completed: Int64
    /// Requests without a response within the flow's timeout.
    public var incomplete: Int64
    /// Requests matched by a response stamped before them (clock skew).
    public var negative: Int64
    /// Pending requests dropped by the memory bound.
    public var evicted: Int64
    /// Latencies of the completed requests in milliseconds.
    public var latency: LatencySketch

    /// Creates counts.
    public init(
        completed: Int64 = 0,
        incomplete: Int64 = 0,
        negative: Int64 = 0,
        evicted: Int64 = 0,
        latency: LatencySketch = LatencySketch()
    ) {
        self.completed = completed
        self.incomplete = incomplete
        self.negative = negative
        self.evicted = evicted
        self.latency = latency
    }

    /// Adds other counts and merges the sketch exactly.
    public mutating func merge(_ other: FlowCounts) {
        completed += other.completed
        incomplete += other.incomplete
        negative += other.negative
        evicted += other.evicted
        latency.merge(other.latency)
    }
}

/// A window (of the original record timestamp), an original topic and a dead-letter topic label.
public struct DeadLetterKey: Sendable, Hashable, CustomStringConvertible {
    /// The window of the original record timestamp (`__timestamp`, else the CloudEvent time, else the DLQ record's
    /// event time), epoch milliseconds at a UTC minute.
    public var windowStartMs: Int64
    /// The original topic (the listed source, else `__topic`, else the CloudEvent `topic`, else `unknown`).
    public var topic: String
    /// The dead-letter topic (`other` past the per-topic limit).
    public var deadLetterTopic: String

    /// Creates a key.
    public init(windowStartMs: Int64, topic: String, deadLetterTopic: String) {
        self.windowStartMs = windowStartMs
        self.topic = topic
        self.deadLetterTopic = deadLetterTopic
    }

    public var description: String { "\(windowStartMs) \(topic) \(deadLetterTopic)" }
}

/// Dead-letter counts of one ``DeadLetterKey``.
public struct DeadLetterCounts: Sendable, Hashable {
    /// DLQ records.
    public var copies: Int64
    /// Distinct original records among them (deduplicated within a bounded window across all dead-letter topics,
    /// so a key holds a distinct original only under the first dead-letter topic that carried it).
    public var distinctOriginals: Int64
    /// Time to dead-letter (DLQ record timestamp − `__timestamp`) in milliseconds, negative values as 0.
    public var delay: LatencySketch

    /// Creates counts.
    public init(copies: Int64 = 0, distinctOriginals: Int64 = 0, delay: LatencySketch = LatencySketch()) {
        self.copies = copies
        self.distinctOriginals = distinctOriginals
        self.delay = delay
    }

    /// Adds other counts and merges the sketch exactly.
    public mutating func merge(_ other: DeadLetterCounts) {
        copies += other.copies
        distinctOriginals += other.distinctOriginals
        delay.merge(other.delay)
    }
}

/// A window, topic and reason of records that are not valid CloudEvents.
public struct InvalidKey: Sendable, Hashable, CustomStringConvertible {
    /// The window start, epoch milliseconds at a UTC minute.
    public var windowStartMs: Int64
    /// The Kafka topic.
    public var topic: String
    /// Why the record is not a valid CloudEvent (never ``InvalidReason/tombstone``).
    public var reason: InvalidReason

    /// Creates a key.
    public init(windowStartMs: Int64, topic: String, reason: InvalidReason) {
        self.windowStartMs = windowStartMs
        self.topic = topic
        self.reason = reason
    }

    public var description: String { "\(windowStartMs) \(topic) \(reason.rawValue)" }
}
