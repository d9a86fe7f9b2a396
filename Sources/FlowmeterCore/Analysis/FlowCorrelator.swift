/// A flow's correlation key, as the flow state holds it.
///
/// A key spelled as 32 lowercase hex digits (a W3C trace id, the usual `trace-id` correlation) is held as the two
/// integers it spells: hashing and comparing it touches two words, copying it retains nothing, and nothing is
/// allocated per record (the decoder already parsed the trace id to integers). Any other key is held as its text.
/// The form depends on the text alone, so keys from records, hops and PostgreSQL are equal exactly when their
/// texts are.
struct CorrelationKey: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringInterpolation {
    private var high: UInt64
    private var low: UInt64
    /// The text of a key that is not 32 lowercase hex digits; nil for the integer form.
    private var other: String?

    /// The key spelled `text`.
    init(_ text: String) {
        var text = text
        // The trace-id parser of the decoder (`lowerHex16`, 8 digits per word) on the text's contiguous UTF-8.
        let parsed = text.withUTF8 { bytes -> (UInt64, UInt64)? in
            guard bytes.count == 32, let base = bytes.baseAddress, let high = lowerHex16(base),
                let low = lowerHex16(base + 16)
            else { return nil }
            return (high, low)
        }
        if let (high, low) = parsed {
            (self.high, self.low, other) = (high, low, nil)
        } else {
            (high, low, other) = (0, 0, text)
        }
    }

    /// A trace id's key (what `CorrelationKey(traceID)` gives for its lowercase hex spelling).
    init(traceHigh: UInt64, traceLow: UInt64) {
        (high, low, other) = (traceHigh, traceLow, nil)
    }

    init(stringLiteral value: String) { self.init(value) }

    /// The key's text (a trace id spelled in lowercase hex).
    var text: String { other ?? lowerHex(high, low) }

    var description: String { text }

    /// The key's hash for ``ChainTable``, with the flow it belongs to.
    @inline(__always)
    func hash(with hasher: FastHash, flow: Int) -> UInt64 {
        let flowBits = UInt64(truncatingIfNeeded: flow) &* 0x9e37_79b9_7f4a_7c15
        guard let other else { return hasher.hash(high ^ flowBits, low) }
        return hasher.hash(hasher.hash(other) ^ flowBits, 1)
    }
}

/// A request waiting for its response.
struct PendingRequest: Sendable, Hashable {
    /// The flow's index in the engine's flow table.
    var flow: Int
    /// The correlation key.
    var key: CorrelationKey
    /// The request's event time in milliseconds.
    var timeMs: Int64
}

/// Where a request record was read (its identity across restarts, with its flow).
struct RequestOrigin: Sendable, Hashable {
    var topic: String
    var partition: Int32
    var offset: Int64
}

/// A pending request as ``FlowCorrelator/takeChanges()`` reports and ``FlowCorrelator/restore(_:evicted:)`` accepts it.
struct PendingSnapshot: Sendable, Hashable {
    var request: PendingRequest
    var origin: RequestOrigin
    var deadlineMs: Int64
    /// The insertion order (only its relative order among pending requests matters).
    var sequence: UInt64
}

/// Bounded request → response matching for all flows (one pending table per flow, one global memory bound).
///
/// Requests wait in a per-flow, per-key FIFO (a chain linked through the pending entries, so a request allocates
/// nothing beyond its table slots); a response takes the oldest request with its key. Beyond
/// `maxPending` requests in total the oldest (by insertion) is evicted. A request expires once the clock reaches
/// its event time plus its flow's timeout; deadlines sit in one min-heap, so out-of-order request times expire
/// exactly on time. Completed, evicted and expired requests leave stale entries behind in the insertion queue and
/// the deadline heap; both are compacted once they hold more than twice the live requests, so memory stays
/// proportional to the bound.
///
/// Changes to the pending set are journaled for persistence: ``takeChanges()`` reports the requests added since
/// the last take that are still pending, and the identities of requests that were pending at the last take (or
/// restored) and have since left. Each entry knows whether it was reported (`persisted`), so the journal holds only
/// the requests added since the last take plus the persisted ones removed since: no scan of the pending set.
struct FlowCorrelator: Sendable {
    private var waiters: FlowWaiters

    init(timeoutsMs: [Int64], maxPending: Int) {
        waiters = FlowWaiters(timeoutsMs: timeoutsMs, maxCount: maxPending)
    }

    /// Requests waiting for a response, over all flows.
    var pendingCount: Int { waiters.count }

    /// Entries held in the insertion queue and the deadline heap, live or stale (at most about twice the pending
    /// requests plus a constant: the bound on memory).
    var bookkeepingEntries: Int { waiters.bookkeepingEntries }

    /// Correlation keys with pending requests, over all flows.
    var keyCount: Int { waiters.keyCount }

    /// Journal entries held (added since the last take, live or not, and persisted removals).
    var journalEntries: Int { waiters.journalEntries }

    /// The earliest deadline of a live request (stale heap entries may make it earlier than the truth; it is only
    /// a hint for skipping work).
    var earliestDeadlineMs: Int64? { waiters.earliestDeadlineMs }

    /// Adds a request; `evicted` is called for each request dropped by the memory bound (possibly this one, when
    /// the bound is 0).
    mutating func addRequest(
        flow: Int,
        key: CorrelationKey,
        timeMs: Int64,
        origin: RequestOrigin = RequestOrigin(topic: "", partition: -1, offset: -1),
        evicted: (PendingRequest) -> Void
    ) {
        waiters.add(flow: flow, key: key, timeMs: timeMs, origin: origin) { evicted(Self.request($0)) }
    }

    /// Re-adds requests reported by ``takeChanges()`` (e.g. after a restart), as already persisted: they are not
    /// reported as added, and are reported as removed when they leave. Requests are inserted in `sequence` order,
    /// so per-key FIFO order and eviction order are those of the correlator that reported them; later requests get
    /// larger sequences than every restored one, so stored sequences stay in insertion order across restarts. A
    /// request whose flow and origin are already pending is skipped. Beyond the bound the oldest are evicted
    /// (`evicted`). Meant for a fresh correlator; on one that ever held requests, or for a sequence given twice, the
    /// restored requests get new sequences in the same order.
    mutating func restore(_ snapshots: [PendingSnapshot], evicted: (PendingRequest) -> Void) {
        waiters.restore(
            snapshots.map {
                FlowWaiter(
                    flow: $0.request.flow,
                    key: $0.request.key,
                    timeMs: $0.request.timeMs,
                    origin: $0.origin,
                    deadlineMs: $0.deadlineMs,
                    sequence: $0.sequence
                )
            }
        ) { evicted(Self.request($0)) }
    }

    /// The changes to the pending set since the last take (see the type's documentation); starts a new journal.
    mutating func takeChanges() -> (added: [PendingSnapshot], removed: [(flow: Int, origin: RequestOrigin)]) {
        let (added, removed) = waiters.takeChanges()
        return (
            added.map {
                PendingSnapshot(
                    request: Self.request($0),
                    origin: $0.origin,
                    deadlineMs: $0.deadlineMs,
                    sequence: $0.sequence
                )
            },
            removed
        )
    }

    /// A cache hint ahead of an add or take of `flow` and `key` (see ``FlowWaiters/prefetch(flow:key:)``).
    @inline(__always)
    func prefetch(flow: Int, key: CorrelationKey) {
        waiters.prefetch(flow: flow, key: key)
    }

    /// Takes the oldest pending request of `flow` with `key`, if any.
    mutating func takeRequest(flow: Int, key: CorrelationKey) -> PendingRequest? {
        waiters.take(flow: flow, key: key) { _ in true }.map(Self.request)
    }

    /// Removes every request whose deadline is at or before `clockMs`, oldest deadline first.
    mutating func expire(clockMs: Int64, expired: (PendingRequest) -> Void) {
        waiters.expire(clockMs: clockMs) { expired(Self.request($0)) }
    }

    private static func request(_ waiter: FlowWaiter) -> PendingRequest {
        PendingRequest(flow: waiter.flow, key: waiter.key, timeMs: waiter.timeMs)
    }
}
