/// The identity of a pending flow request, stable across restarts: the flow and the position of the request
/// record (one record can be a request of several flows).
public struct PendingFlowKey: Sendable, Hashable, CustomStringConvertible {
    /// The flow's name.
    public var flow: String
    /// The request record's topic.
    public var topic: String
    /// The request record's partition.
    public var partition: Int32
    /// The request record's offset.
    public var offset: Int64

    /// Creates a key.
    public init(flow: String, topic: String, partition: Int32, offset: Int64) {
        self.flow = flow
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    public var description: String { "\(flow) \(topic)[\(partition)]@\(offset)" }
}

/// A flow request waiting for its response, with what is needed to restore it exactly
/// (``AnalysisEngine/takePendingChanges()``, ``AnalysisEngine/restorePending(_:flowClockMs:)``).
public struct PendingFlowRequest: Sendable, Hashable, CustomStringConvertible {
    /// The flow's name.
    public var flow: String
    /// The request record's topic.
    public var topic: String
    /// The request record's partition.
    public var partition: Int32
    /// The request record's offset.
    public var offset: Int64
    /// The correlation key a response must carry.
    public var correlationKey: String
    /// The request's event time in milliseconds (latency is measured from it).
    public var timestampMs: Int64
    /// The start of the 1-minute window of ``timestampMs``, where the request's outcome is counted.
    public var windowStartMs: Int64
    /// When the request expires on the flow clock (its event time plus the flow's timeout, `Int64.max` on
    /// overflow); kept as given on restore, even if the flow's timeout changed since.
    public var deadlineMs: Int64
    /// The insertion order among pending requests (the FIFO order per key and the eviction order). Only its
    /// relative order matters; a restored engine numbers new requests above every restored one.
    public var sequence: UInt64

    /// Creates a pending request.
    public init(
        flow: String,
        topic: String,
        partition: Int32,
        offset: Int64,
        correlationKey: String,
        timestampMs: Int64,
        windowStartMs: Int64,
        deadlineMs: Int64,
        sequence: UInt64
    ) {
        self.flow = flow
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.correlationKey = correlationKey
        self.timestampMs = timestampMs
        self.windowStartMs = windowStartMs
        self.deadlineMs = deadlineMs
        self.sequence = sequence
    }

    /// The request's identity.
    public var key: PendingFlowKey {
        PendingFlowKey(flow: flow, topic: topic, partition: partition, offset: offset)
    }

    public var description: String {
        "\(key) key=\(correlationKey) t=\(timestampMs) deadline=\(deadlineMs) #\(sequence)"
    }
}

/// The changes to an engine's pending flow requests since its previous ``AnalysisEngine/takePendingChanges()``:
/// apply them to a store together with the rollup delta and offsets of the same moment, and the store holds
/// exactly the requests pending at that moment.
public struct PendingFlowChanges: Sendable, Hashable {
    /// Requests added since the previous take and still pending, in insertion order.
    public var added: [PendingFlowRequest]
    /// Requests that were pending at the previous take (or were restored) and have since been completed,
    /// expired, evicted or consumed by a negative latency, or were restored for a flow that no longer exists.
    public var removed: [PendingFlowKey]
    /// The engine's flow clock at the take (`Int64.min` before any record): restore it with the requests so that
    /// expiry continues exactly where it was.
    public var flowClockMs: Int64

    /// Creates changes; none by default.
    public init(added: [PendingFlowRequest] = [], removed: [PendingFlowKey] = [], flowClockMs: Int64 = .min) {
        self.added = added
        self.removed = removed
        self.flowClockMs = flowClockMs
    }

    /// No changes and no flow clock.
    public static let empty = PendingFlowChanges()

    /// Whether no request was added or removed.
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty }
}
