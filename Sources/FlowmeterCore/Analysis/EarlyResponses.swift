/// A response analyzed before its request (replay reads the request and response partitions in parallel).
struct EarlyResponse: Sendable, Hashable {
    /// The flow's index in the engine's flow table.
    var flow: Int
    /// The correlation key.
    var key: CorrelationKey
    /// The response's event time in milliseconds.
    var timeMs: Int64
    /// Where the response record was read (its identity across restarts, with its flow).
    var origin: RequestOrigin
    /// When it is dropped on the flow clock (its event time plus the flow's timeout, `Int64.max` on overflow).
    var deadlineMs: Int64
    /// The insertion order (only its relative order among early responses matters).
    var sequence: UInt64
}

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
    let maxCount: Int
    let timeoutsMs: [Int64]
    private var live: [UInt64: EarlyEntry] = [:]
    private var byKey: [[CorrelationKey: EarlyChain]]
    private var order = RingQueue<UInt64>()
    private var deadlines = DeadlineHeap()
    private var nextSequence: UInt64 = 0
    private var addedSinceTake: [UInt64] = []
    private var removedSinceTake: [(flow: Int, origin: RequestOrigin)] = []

    init(timeoutsMs: [Int64], maxCount: Int) {
        self.timeoutsMs = timeoutsMs
        self.maxCount = Swift.max(0, maxCount)
        self.byKey = Array(repeating: [:], count: timeoutsMs.count)
    }

    /// Responses buffered, over all flows.
    var count: Int { live.count }

    /// Entries held in the insertion queue and the deadline heap, live or stale.
    var bookkeepingEntries: Int { order.count + deadlines.count }

    /// Journal entries held.
    var journalEntries: Int { addedSinceTake.count + removedSinceTake.count }

    /// The earliest deadline of a buffered response (a hint: stale heap entries may make it earlier).
    var earliestDeadlineMs: Int64? { deadlines.first?.deadlineMs }

    /// Buffers a response; `evicted` is called for each response dropped by the bound (possibly this one).
    mutating func add(
        flow: Int,
        key: CorrelationKey,
        timeMs: Int64,
        origin: RequestOrigin,
        evicted: (EarlyResponse) -> Void
    ) {
        let sequence = nextSequence
        nextSequence += 1
        let (deadline, overflow) = timeMs.addingReportingOverflow(timeoutsMs[flow])
        insert(
            EarlyResponse(
                flow: flow,
                key: key,
                timeMs: timeMs,
                origin: origin,
                deadlineMs: overflow ? Int64.max : deadline,
                sequence: sequence
            ),
            persisted: false
        )
        addedSinceTake.append(sequence)
        evictOverBound(evicted)
        compactIfNeeded()
    }

    /// Takes the oldest buffered response of `flow` with `key` whose event time is within the flow's timeout of
    /// `requestTimeMs` (strictly: `|response − request| < timeout`, the pairs in-order processing matches), other
    /// than the request record itself (`origin`).
    mutating func take(flow: Int, key: CorrelationKey, requestTimeMs: Int64, origin: RequestOrigin) -> EarlyResponse? {
        var cursor = byKey[flow][key]?.head
        let timeout = timeoutsMs[flow]
        while let sequence = cursor, let entry = live[sequence] {
            cursor = entry.next
            guard entry.response.origin != origin else { continue }
            let (distance, overflow) = entry.response.timeMs.subtractingReportingOverflow(requestTimeMs)
            guard !overflow, distance < timeout, distance > -timeout else { continue }
            let response = remove(sequence: sequence)
            compactIfNeeded()
            return response
        }
        return nil
    }

    /// Removes every response whose deadline is at or before `clockMs`, oldest deadline first.
    mutating func expire(clockMs: Int64, expired: (EarlyResponse) -> Void) {
        var removedAny = false
        while let top = deadlines.first, top.deadlineMs <= clockMs {
            _ = deadlines.popFirst()
            if let response = remove(sequence: top.sequence) {
                removedAny = true
                expired(response)
            }
        }
        if removedAny { compactIfNeeded() }
    }

    /// Re-adds responses reported by ``takeChanges()`` as persisted, in `sequence` order (see
    /// ``FlowCorrelator/restore(_:evicted:)``); one already buffered (same flow and origin) is skipped.
    mutating func restore(_ responses: [EarlyResponse], evicted: (EarlyResponse) -> Void) {
        guard !responses.isEmpty else { return }
        let fresh = nextSequence == 0
        var present = Set(live.values.map { EarlyIdentity(flow: $0.response.flow, origin: $0.response.origin) })
        let sorted = responses.sorted { $0.sequence < $1.sequence }
        if let last = sorted.last?.sequence, last >= nextSequence { nextSequence = last &+ 1 }
        for var response in sorted {
            guard present.insert(EarlyIdentity(flow: response.flow, origin: response.origin)).inserted else {
                continue
            }
            if !fresh || live[response.sequence] != nil {
                response.sequence = nextSequence
                nextSequence &+= 1
            }
            insert(response, persisted: true)
        }
        evictOverBound(evicted)
        compactIfNeeded()
    }

    /// The responses added since the last take and still buffered, and the persisted ones removed since.
    mutating func takeChanges() -> (added: [EarlyResponse], removed: [(flow: Int, origin: RequestOrigin)]) {
        var added: [EarlyResponse] = []
        for sequence in addedSinceTake {
            guard let entry = live[sequence], !entry.persisted else { continue }
            live[sequence]?.persisted = true
            added.append(entry.response)
        }
        let removed = removedSinceTake
        addedSinceTake.removeAll(keepingCapacity: true)
        removedSinceTake.removeAll(keepingCapacity: true)
        return (added, removed)
    }

    private mutating func insert(_ response: EarlyResponse, persisted: Bool) {
        let sequence = response.sequence
        live[sequence] = EarlyEntry(response: response, persisted: persisted)
        if let tail = byKey[response.flow][response.key]?.tail {
            live[tail]?.next = sequence
            byKey[response.flow][response.key]?.tail = sequence
        } else {
            byKey[response.flow][response.key] = EarlyChain(head: sequence, tail: sequence)
        }
        order.append(response.sequence)
        deadlines.push(.init(deadlineMs: response.deadlineMs, sequence: response.sequence))
    }

    private mutating func evictOverBound(_ evicted: (EarlyResponse) -> Void) {
        while live.count > maxCount, let oldest = order.popFirst() {
            if let dropped = remove(sequence: oldest) { evicted(dropped) }
        }
    }

    private mutating func remove(sequence: UInt64) -> EarlyResponse? {
        guard let entry = live.removeValue(forKey: sequence) else { return nil }
        let response = entry.response
        if entry.persisted { removedSinceTake.append((response.flow, response.origin)) }
        guard let chain = byKey[response.flow][response.key] else { return response }
        if chain.head == sequence {
            if let next = entry.next {
                byKey[response.flow][response.key]?.head = next
            } else {
                byKey[response.flow][response.key] = nil
            }
            return response
        }
        var previous = chain.head
        while let next = live[previous]?.next {
            if next == sequence {
                live[previous]?.next = entry.next
                if chain.tail == sequence { byKey[response.flow][response.key]?.tail = previous }
                break
            }
            previous = next
        }
        return response
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
        if addedSinceTake.count > threshold {
            let live = self.live
            addedSinceTake.removeAll { live[$0] == nil }
        }
    }
}

/// A buffered response and whether its presence is persisted.
private struct EarlyEntry: Sendable {
    var response: EarlyResponse
    var persisted: Bool
    /// The next response buffered with the same flow and key.
    var next: UInt64? = nil
}

/// The oldest and newest buffered response of one flow and key.
private struct EarlyChain: Sendable {
    var head: UInt64
    var tail: UInt64
}

/// An early response's identity: its flow and where its record was read.
private struct EarlyIdentity: Hashable {
    var flow: Int
    var origin: RequestOrigin
}
