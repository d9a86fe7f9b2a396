internal import CPrefetch

/// One side of a flow pair waiting for the other: a pending request (``FlowCorrelator``) or an early response
/// (``EarlyResponseBuffer``).
struct FlowWaiter: Sendable, Hashable {
    /// The flow's index in the engine's flow table.
    var flow: Int
    /// The correlation key.
    var key: CorrelationKey
    /// The record's event time in milliseconds.
    var timeMs: Int64
    /// Where the record was read (its identity across restarts, with its flow).
    var origin: RequestOrigin
    /// When it leaves on the flow clock (`Int64.max` for never).
    var deadlineMs: Int64
    /// The insertion order (only its relative order matters).
    var sequence: UInt64
}

/// The bounded, journaled store behind ``FlowCorrelator`` and ``EarlyResponseBuffer``: waiters in a per-flow,
/// per-key FIFO, the oldest evicted beyond `maxCount`, each dropped at its deadline, and every change journaled for
/// PostgreSQL.
///
/// Waiters live in a slab (an array of slots reused through a free list): a waiter is found by its slot, with its
/// sequence telling a live slot from a reused one, so the per-record work is array indexing plus one hash lookup of
/// the key. Each key's FIFO is a chain linked through the slots. The insertion queue and the deadline min-heap name
/// slots; entries whose waiter left are stale and are compacted once they exceed twice the live waiters (memory stays
/// proportional to the bound).
///
/// Journal: ``takeChanges()`` reports the waiters added since the last take that are still there, and the
/// identities of persisted (reported or restored) waiters that left since.
struct FlowWaiters: Sendable {
    let maxCount: Int
    /// Per flow: how long a waiter waits on the flow clock, from its event time.
    let timeoutsMs: [Int64]
    private var slots: [Slot] = []
    /// Per slot: its waiter's sequence + 1 while it holds one, else 0 (a free slot). What tells a queue or heap entry
    /// live from stale, in 8 bytes per slot instead of a read of the slot's 112: compacting the queue, the heap and the journal
    /// read one per entry, each a cache miss in a backlog's slab (3-4 % of a backfill's intake samples).
    private var liveSequences: [UInt64] = []
    private var freeSlots: [Int32] = []
    private(set) var count = 0
    private var chains = ChainTable()
    private var order = RingQueue<Handle>()
    private var deadlines = DeadlineHeap()
    private var nextSequence: UInt64 = 0
    /// Added since the last take (some may have left since; compacted like the queue).
    private var addedSinceTake: [Handle] = []
    /// Persisted waiters removed since the last take.
    private var removedSinceTake: [(flow: Int, origin: RequestOrigin)] = []

    init(timeoutsMs: [Int64], maxCount: Int) {
        self.maxCount = Swift.max(0, maxCount)
        self.timeoutsMs = timeoutsMs
    }

    /// Entries held in the insertion queue and the deadline heap, live or stale.
    var bookkeepingEntries: Int { order.count + deadlines.count }

    /// Journal entries held (added since the last take, live or not, and persisted removals).
    var journalEntries: Int { addedSinceTake.count + removedSinceTake.count }

    /// Correlation keys with waiters, over all flows.
    var keyCount: Int { chains.count }

    /// The earliest deadline of a waiter (a hint: stale heap entries may make it earlier than the truth).
    var earliestDeadlineMs: Int64? { deadlines.first?.deadlineMs }

    /// Adds a waiter with the next sequence, due at its event time plus its flow's timeout (`Int64.max` on
    /// overflow); `evicted` is called for each waiter dropped by the bound (possibly this one, when the bound is 0).
    mutating func add(
        flow: Int,
        key: CorrelationKey,
        timeMs: Int64,
        origin: RequestOrigin,
        evicted: (FlowWaiter) -> Void
    ) {
        let sequence = nextSequence
        nextSequence += 1
        let (deadline, overflow) = timeMs.addingReportingOverflow(timeoutsMs[flow])
        let deadlineMs = overflow ? Int64.max : deadline
        let handle = insert(
            FlowWaiter(
                flow: flow,
                key: key,
                timeMs: timeMs,
                origin: origin,
                deadlineMs: deadlineMs,
                sequence: sequence
            ),
            persisted: false
        )
        addedSinceTake.append(handle)
        evictOverBound(evicted)
        compactIfNeeded()
    }

    /// Asks the CPU for the key index's slot of `flow` and `key` ahead of an ``add(flow:key:timeMs:origin:evicted:)``
    /// or ``take(flow:key:where:)`` of them (see ``ChainTable/prefetch(flow:key:)``).
    /// Also asks for the slot the next insert fills (known without a lookup: the free list's last entry), which an
    /// insert writes, after reading what it replaces.
    @inline(__always)
    func prefetch(flow: Int, key: CorrelationKey) {
        chains.prefetch(flow: flow, key: key)
        guard let free = freeSlots.last else { return }
        slots.withUnsafeBufferPointer { slots in
            guard let base = slots.baseAddress, Int(free) < slots.count else { return }
            let start = UnsafeRawPointer(base + Int(free))
            flowmeter_prefetch(start)
            flowmeter_prefetch(start + (MemoryLayout<Slot>.size - 1))
        }
    }

    /// Takes the oldest waiter of `flow` with `key` for which `matches` holds.
    mutating func take(flow: Int, key: CorrelationKey, where matches: (FlowWaiter) -> Bool) -> FlowWaiter? {
        guard let chain = chains.find(flow: flow, key: key) else { return nil }
        var cursor = chains[chain].head
        while cursor >= 0 {
            let slot = Int(cursor)
            cursor = slots[slot].next
            guard matches(slots[slot].waiter) else { continue }
            let waiter = remove(slot: slot, chain: chain)
            compactIfNeeded()
            return waiter
        }
        return nil
    }

    /// Removes every waiter whose deadline is at or before `clockMs`, oldest deadline first.
    mutating func expire(clockMs: Int64, expired: (FlowWaiter) -> Void) {
        var removedAny = false
        while let top = deadlines.first, top.deadlineMs <= clockMs {
            _ = deadlines.popFirst()
            let handle = Handle(slot: top.slot, sequence: top.sequence)
            if isLive(handle) {
                removedAny = true
                expired(remove(slot: Int(handle.slot)))
            }
        }
        if removedAny { compactIfNeeded() }
    }

    /// Re-adds waiters reported by ``takeChanges()`` (e.g. after a restart), as already persisted: they are not
    /// reported as added, and are reported as removed when they leave. They are inserted in `sequence` order, so
    /// per-key FIFO order and eviction order are those of the store that reported them; later waiters get larger
    /// sequences than every restored one. A waiter whose flow and origin are already here is skipped. Beyond the
    /// bound the oldest are evicted (`evicted`). Meant for a fresh store; on one that ever held waiters, or for a
    /// sequence given twice, the restored waiters get new sequences in the same order.
    mutating func restore(_ waiters: [FlowWaiter], evicted: (FlowWaiter) -> Void) {
        guard !waiters.isEmpty else { return }
        let fresh = nextSequence == 0
        var present = Set<Identity>()
        for (index, slot) in slots.enumerated() where liveSequences[index] != 0 {
            present.insert(Identity(flow: slot.waiter.flow, origin: slot.waiter.origin))
        }
        var used = Set<UInt64>()
        let sorted = waiters.sorted { $0.sequence < $1.sequence }
        if let last = sorted.last?.sequence, last >= nextSequence { nextSequence = last &+ 1 }
        for var waiter in sorted {
            guard present.insert(Identity(flow: waiter.flow, origin: waiter.origin)).inserted else { continue }
            if !fresh || !used.insert(waiter.sequence).inserted {
                waiter.sequence = nextSequence
                nextSequence &+= 1
            }
            insert(waiter, persisted: true)
        }
        evictOverBound(evicted)
        compactIfNeeded()
    }

    /// The waiters added since the last take that are still here, and the persisted ones removed since; starts a new
    /// journal.
    mutating func takeChanges() -> (added: [FlowWaiter], removed: [(flow: Int, origin: RequestOrigin)]) {
        var added: [FlowWaiter] = []
        for handle in addedSinceTake where isLive(handle) && !slots[Int(handle.slot)].persisted {
            slots[Int(handle.slot)].persisted = true
            added.append(slots[Int(handle.slot)].waiter)
        }
        let removed = removedSinceTake
        addedSinceTake.removeAll(keepingCapacity: true)
        removedSinceTake.removeAll(keepingCapacity: true)
        return (added, removed)
    }

    // MARK: Storage

    private func isLive(_ handle: Handle) -> Bool { Self.isLive(handle, in: liveSequences) }

    @discardableResult
    private mutating func insert(_ waiter: FlowWaiter, persisted: Bool) -> Handle {
        let fresh = Slot(waiter: waiter, persisted: persisted, next: -1)
        let slot: Int32
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[Int(slot)] = fresh
            liveSequences[Int(slot)] = waiter.sequence &+ 1
        } else {
            slot = Int32(slots.count)
            slots.append(fresh)
            liveSequences.append(waiter.sequence &+ 1)
        }
        count += 1
        // One lookup of the key: append to its chain, or start one.
        let previousTail = chains.append(slot, flow: waiter.flow, key: waiter.key)
        if previousTail >= 0 { slots[Int(previousTail)].next = slot }
        let handle = Handle(slot: slot, sequence: waiter.sequence)
        order.append(handle)
        deadlines.push(.init(deadlineMs: waiter.deadlineMs, sequence: waiter.sequence, slot: slot))
        return handle
    }

    private mutating func evictOverBound(_ evicted: (FlowWaiter) -> Void) {
        while count > maxCount, let oldest = order.popFirst() {
            if isLive(oldest) { evicted(remove(slot: Int(oldest.slot))) }
        }
    }

    /// Removes a live waiter and unlinks it from its key's chain (usually its head; expiry or a conditional take
    /// may remove a later one, found by walking the chain).
    /// `chain` is the key's entry in ``chains`` when the caller just found it (nothing changed the table since).
    private mutating func remove(slot: Int, chain: Int? = nil) -> FlowWaiter {
        let waiter = slots[slot].waiter
        let next = slots[slot].next
        liveSequences[slot] = 0
        slots[slot].waiter.origin.topic = ""  // release the topic string while the slot is free
        freeSlots.append(Int32(slot))
        count -= 1
        if slots[slot].persisted { removedSinceTake.append((waiter.flow, waiter.origin)) }
        unlink(Int32(slot), next: next, chain: chain ?? chains.find(flow: waiter.flow, key: waiter.key))
        return waiter
    }

    private mutating func unlink(_ slot: Int32, next: Int32, chain: Int?) {
        guard let index = chain else { return }
        // Field by field: a copy of the entry would retain its key's text.
        let (head, tail) = (chains[index].head, chains[index].tail)
        if head == slot {
            if next >= 0 { chains[index].head = next } else { chains.remove(at: index) }
            return
        }
        var previous = head
        while previous >= 0 {
            let following = slots[Int(previous)].next
            if following == slot {
                slots[Int(previous)].next = next
                if tail == slot { chains[index].tail = previous }
                return
            }
            previous = following
        }
    }

    private mutating func compactIfNeeded() {
        let threshold = 2 * count + 64
        if order.count > threshold {
            let live = liveSequences
            order.retain { Self.isLive($0, in: live) }
        }
        if deadlines.count > threshold {
            let live = liveSequences
            deadlines.retain { Self.isLive(Handle(slot: $0.slot, sequence: $0.sequence), in: live) }
        }
        if addedSinceTake.count > threshold {
            let live = liveSequences
            addedSinceTake.removeAll { !Self.isLive($0, in: live) }
        }
    }

    @inline(__always)
    private static func isLive(_ handle: Handle, in liveSequences: [UInt64]) -> Bool {
        liveSequences[Int(handle.slot)] == handle.sequence &+ 1
    }

    /// A waiter, or a free slot (its `liveSequences` entry 0).
    private struct Slot: Sendable {
        var waiter: FlowWaiter
        /// Whether ``FlowWaiters/takeChanges()`` reported it (or it was restored): its removal is journaled.
        var persisted: Bool
        /// The next waiter's slot with the same flow and key, or -1.
        var next: Int32
    }

    /// A waiter in a slot, as long as the slot holds that sequence.
    private struct Handle: Sendable {
        var slot: Int32
        var sequence: UInt64
    }

    /// A waiter's identity: its flow and where its record was read.
    private struct Identity: Hashable {
        var flow: Int
        var origin: RequestOrigin
    }
}
