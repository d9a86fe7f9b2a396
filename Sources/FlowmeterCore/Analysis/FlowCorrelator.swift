/// A request waiting for its response.
struct PendingRequest: Sendable, Hashable {
    /// The flow's index in the engine's flow table.
    var flow: Int
    /// The correlation key.
    var key: String
    /// The request's event time in milliseconds.
    var timeMs: Int64
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
struct FlowCorrelator: Sendable {
    let maxPending: Int
    let timeoutsMs: [Int64]
    private var live: [UInt64: Entry] = [:]
    private var byKey: [[String: Chain]]
    private var order = RingQueue<UInt64>()
    private var deadlines = DeadlineHeap()
    private var nextSequence: UInt64 = 0

    init(timeoutsMs: [Int64], maxPending: Int) {
        self.timeoutsMs = timeoutsMs
        self.maxPending = Swift.max(0, maxPending)
        self.byKey = Array(repeating: [:], count: timeoutsMs.count)
    }

    /// Requests waiting for a response, over all flows.
    var pendingCount: Int { live.count }

    /// Entries held in the insertion queue and the deadline heap, live or stale (at most about twice the pending
    /// requests plus a constant: the bound on memory).
    var bookkeepingEntries: Int { order.count + deadlines.count }

    /// Correlation keys with pending requests, over all flows.
    var keyCount: Int { byKey.reduce(0) { $0 + $1.count } }

    /// Adds a request; `evicted` is called for each request dropped by the memory bound (possibly this one, when
    /// the bound is 0).
    mutating func addRequest(
        flow: Int,
        key: String,
        timeMs: Int64,
        evicted: (PendingRequest) -> Void
    ) {
        let sequence = nextSequence
        nextSequence += 1
        live[sequence] = Entry(request: PendingRequest(flow: flow, key: key, timeMs: timeMs))
        if let tail = byKey[flow][key]?.tail {
            live[tail]?.next = sequence
            byKey[flow][key]?.tail = sequence
        } else {
            byKey[flow][key] = Chain(head: sequence, tail: sequence)
        }
        order.append(sequence)
        let (deadline, overflow) = timeMs.addingReportingOverflow(timeoutsMs[flow])
        deadlines.push(.init(deadlineMs: overflow ? Int64.max : deadline, sequence: sequence))
        while live.count > maxPending, let oldest = order.popFirst() {
            if let dropped = remove(sequence: oldest) { evicted(dropped) }
        }
        compactIfNeeded()
    }

    /// Takes the oldest pending request of `flow` with `key`, if any.
    mutating func takeRequest(flow: Int, key: String) -> PendingRequest? {
        guard let sequence = byKey[flow][key]?.head, let request = remove(sequence: sequence) else { return nil }
        compactIfNeeded()
        return request
    }

    /// Removes every request whose deadline is at or before `clockMs`, oldest deadline first.
    mutating func expire(clockMs: Int64, expired: (PendingRequest) -> Void) {
        var removedAny = false
        while let top = deadlines.first, top.deadlineMs <= clockMs {
            _ = deadlines.popFirst()
            if let request = remove(sequence: top.sequence) {
                removedAny = true
                expired(request)
            }
        }
        if removedAny { compactIfNeeded() }
    }

    /// The earliest deadline of a live request (stale heap entries may make it earlier than the truth; it is only
    /// a hint for skipping work).
    var earliestDeadlineMs: Int64? { deadlines.first?.deadlineMs }

    /// Removes a pending request and unlinks it from its key's chain (usually its head; out-of-order expiry may
    /// remove a later one, found by walking the chain).
    private mutating func remove(sequence: UInt64) -> PendingRequest? {
        guard let entry = live.removeValue(forKey: sequence) else { return nil }
        let request = entry.request
        guard let chain = byKey[request.flow][request.key] else { return request }
        if chain.head == sequence {
            if let next = entry.next {
                byKey[request.flow][request.key]?.head = next
            } else {
                byKey[request.flow][request.key] = nil
            }
            return request
        }
        var previous = chain.head
        while let next = live[previous]?.next {
            if next == sequence {
                live[previous]?.next = entry.next
                if chain.tail == sequence { byKey[request.flow][request.key]?.tail = previous }
                break
            }
            previous = next
        }
        return request
    }

    private mutating func compactIfNeeded() {
        let threshold = 2 * live.count + 64
        if order.count > threshold {
            let live = self.live
            order.retain { live[$0] != nil }
        }
        if deadlines.count > threshold {
            let live = self.live
            deadlines.retain { live[$0.sequence] != nil }
        }
    }
}

/// A pending request and the next request with the same flow and key.
private struct Entry: Sendable {
    var request: PendingRequest
    var next: UInt64?
}

/// The oldest and newest pending request of one flow and key.
private struct Chain: Sendable {
    var head: UInt64
    var tail: UInt64
}
