/// A response analyzed before its request (replay reads the request and response partitions in parallel): its
/// deadline is its event time plus the flow's timeout (`Int64.max` on overflow); only the relative order of sequences
/// among early responses matters.
typealias EarlyResponse = FlowWaiter

/// Bounded buffer of early responses for all flows: the mirror of ``FlowCorrelator`` for responses that found no
/// pending request.
///
/// Responses wait in a per-flow, per-key FIFO (a chain linked through the entries, like the correlator's: no array per
/// key to allocate, copy and shrink); a request takes the oldest one within its flow's timeout of its own
/// event time (either side). Beyond `maxCount` responses the oldest (by insertion) is evicted. A response is dropped
/// once the flow clock reaches its event time plus its flow's timeout (one deadline min-heap). Stale entries in the
/// insertion queue and the heap are compacted once they exceed twice the live responses.
///
/// Changes are journaled like the correlator's: ``takeChanges()`` reports the responses added since the last take
/// that are still buffered, and the identities of persisted (reported or restored) responses that left since.
struct EarlyResponseBuffer: Sendable {
    private var waiters: FlowWaiters

    init(timeoutsMs: [Int64], maxCount: Int) {
        waiters = FlowWaiters(timeoutsMs: timeoutsMs, maxCount: maxCount)
    }

    /// Responses buffered, over all flows.
    var count: Int { waiters.count }

    /// Entries held in the insertion queue and the deadline heap, live or stale.
    var bookkeepingEntries: Int { waiters.bookkeepingEntries }

    /// Journal entries held.
    var journalEntries: Int { waiters.journalEntries }

    /// The earliest deadline of a buffered response (a hint: stale heap entries may make it earlier).
    var earliestDeadlineMs: Int64? { waiters.earliestDeadlineMs }

    /// Buffers a response; `evicted` is called for each response dropped by the bound (possibly this one).
    mutating func add(
        flow: Int,
        key: CorrelationKey,
        timeMs: Int64,
        origin: RequestOrigin,
        evicted: (EarlyResponse) -> Void
    ) {
        waiters.add(flow: flow, key: key, timeMs: timeMs, origin: origin, evicted: evicted)
    }

    /// A cache hint ahead of an add or take of `flow` and `key` (see ``FlowWaiters/prefetch(flow:key:)``).
    @inline(__always)
    func prefetch(flow: Int, key: CorrelationKey) {
        waiters.prefetch(flow: flow, key: key)
    }

    /// Takes the oldest buffered response of `flow` with `key` whose event time is within the flow's timeout of
    /// `requestTimeMs` (strictly: `|response − request| < timeout`, the pairs in-order processing matches), other
    /// than the request record itself (`origin`).
    mutating func take(flow: Int, key: CorrelationKey, requestTimeMs: Int64, origin: RequestOrigin) -> EarlyResponse? {
        let timeout = waiters.timeoutsMs[flow]
        return waiters.take(flow: flow, key: key) { response in
            guard response.origin != origin else { return false }
            let (distance, overflow) = response.timeMs.subtractingReportingOverflow(requestTimeMs)
            return !overflow && distance < timeout && distance > -timeout
        }
    }

    /// Removes every response whose deadline is at or before `clockMs`, oldest deadline first.
    mutating func expire(clockMs: Int64, expired: (EarlyResponse) -> Void) {
        waiters.expire(clockMs: clockMs, expired: expired)
    }

    /// Re-adds responses reported by ``takeChanges()`` as persisted, in `sequence` order (see
    /// ``FlowCorrelator/restore(_:evicted:)``); one already buffered (same flow and origin) is skipped.
    mutating func restore(_ responses: [EarlyResponse], evicted: (EarlyResponse) -> Void) {
        waiters.restore(responses, evicted: evicted)
    }

    /// The responses added since the last take and still buffered, and the persisted ones removed since.
    mutating func takeChanges() -> (added: [EarlyResponse], removed: [(flow: Int, origin: RequestOrigin)]) {
        waiters.takeChanges()
    }
}
