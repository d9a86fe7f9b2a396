internal import CRdKafka
import Foundation
import Synchronization

/// Names the calling thread as the OS shows it (`top -H`, `/proc/PID/task/TID/comm`); only the first 15 bytes
/// are kept. (Foundation's `Thread.name` does not reach the OS for a longer name.)
public func setCurrentThreadName(_ name: String) {
    flowmeter_set_thread_name(name)
}

/// Work on each message's value that the read-ahead thread does for the caller, into a slot of `slotSize` bytes per
/// message (see ``KafkaConsumer/init(config:groupID:rebalance:readAhead:valueWork:logger:)``).
public struct ReadAheadValueWork: Sendable {
    /// The bytes of a message's slot.
    public let slotSize: Int
    /// Fills a slot (`slotSize` bytes, aligned to 16) from a message's value (`nil` for a tombstone); returns whether
    /// it did. It runs on the read-ahead thread: it must not allocate what the caller frees, or keep the value.
    public let work: @Sendable (UnsafeRawBufferPointer?, UnsafeMutableRawPointer) -> Bool

    public init(slotSize: Int, work: @escaping @Sendable (UnsafeRawBufferPointer?, UnsafeMutableRawPointer) -> Bool) {
        self.slotSize = slotSize
        self.work = work
    }
}

/// The messages of one polled batch, handed between the poll thread and the read-ahead thread.
struct MessageList: @unchecked Sendable {
    // @unchecked: the pointers are librdkafka messages; the poll thread and the read-ahead thread hand them over
    // through `MessageReadAhead`'s lock and its release/acquire counter, and never touch one message at once.
    let messages: [UnsafeMutablePointer<rd_kafka_message_t>]
}

/// A thread beside the poll thread that does librdkafka's per-message work which the analysis does not need to do
/// itself: it parses each message's headers ahead of the caller (`rd_kafka_message_headers` builds a header list,
/// with an allocation per header, the first time it is called for a message, and caches it in the message), and
/// destroys the batches the caller is done with (freeing those lists, the messages and, with their last message,
/// librdkafka's fetch buffers).
///
/// In a backfill those two took about a fifth of the intake thread's samples (`perf record --call-graph dwarf`):
/// allocations made on librdkafka's broker thread and freed on the intake thread, and the header lists, allocated
/// and freed there. Here the header lists are allocated and freed on this thread, and the caller only reads them.
/// Nothing that makes Swift strings crosses threads (that sank an earlier decode thread, see README "Performance").
/// With a ``ReadAheadValueWork``, the helper also does that work on each message it claims, into the message's slot,
/// which the poll thread reads (``BorrowedRecord/prepared``).
///
/// Protocol: the poll thread calls ``begin(_:)`` with a batch, then ``claim(_:)`` before it touches message `i`,
/// then ``retire()`` once it is done with the batch. Each message of a batch is claimed once, by whichever thread
/// gets there first (a compare-and-swap on its flag): the helper parses the headers of the messages it claims and
/// marks them done (a release store); a message the poll thread claims first is parsed there, lazily, as without
/// read-ahead. So the poll thread never waits for a helper that is late (just woken, or descheduled on a busy core)
/// except for the one message the helper is parsing at that moment. Rebalances, pauses and seeks stay on the poll
/// thread: this thread only touches messages already handed to the application.
final class MessageReadAhead: @unchecked Sendable {
    // @unchecked: `jobs` is only touched under `condition`; `current` only on the poll thread; the claim flags are
    // atomics.
    private let condition = NSCondition()
    private var jobs = Jobs()
    /// Whether a parse job waits: the helper breaks off destroying to take it.
    private let parsePending = Atomic<Bool>(false)
    /// The batch the poll thread is reading (poll thread only).
    private var current: Job?
    /// Batches handed to the helper so far, messages whose headers it parsed, and the times the poll thread found
    /// the helper parsing the message it wanted (and waited for it).
    let batches = Atomic<Int>(0)
    let parsedAhead = Atomic<Int>(0)
    let callerWaits = Atomic<Int>(0)
    private let exited = DispatchSemaphore(value: 0)
    /// The work on each value, if any, and its slot stride.
    private let valueWork: ReadAheadValueWork?
    private let slotStride: Int
    /// Slot memory of finished jobs, for the next ones: a batch's slots (hundreds of kilobytes) allocated and freed
    /// per batch cost the poll thread page faults and `free`'s consolidation.
    private let slotPool: SlotPool?

    init(valueWork: ReadAheadValueWork? = nil) {
        self.valueWork = valueWork
        slotStride = valueWork.map { ($0.slotSize + 15) & ~15 } ?? 0
        slotPool = valueWork == nil ? nil : SlotPool()
    }

    /// Reusable slot buffers (at most a few: the poll thread's batch and the one the helper may still parse).
    final class SlotPool: Sendable {
        private let buffers = Mutex<[(pointer: UnsafeMutableRawPointerBox, bytes: Int)]>([])

        /// A buffer of at least `bytes`.
        func take(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
            let reused = buffers.withLock { buffers -> (UnsafeMutableRawPointer, Int)? in
                guard let index = buffers.firstIndex(where: { $0.bytes >= bytes }) else { return nil }
                let buffer = buffers.remove(at: index)
                return (buffer.pointer.pointer, buffer.bytes)
            }
            if let reused { return reused }
            return (.allocate(byteCount: bytes, alignment: 64), bytes)
        }

        /// Returns a buffer; beyond four kept, the smallest is freed.
        func give(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
            let dropped = buffers.withLock { buffers -> UnsafeMutableRawPointer? in
                buffers.append((UnsafeMutableRawPointerBox(pointer: pointer), bytes))
                guard buffers.count > 4,
                    let smallest = buffers.indices.min(by: { buffers[$0].bytes < buffers[$1].bytes })
                else { return nil }
                return buffers.remove(at: smallest).pointer.pointer
            }
            dropped?.deallocate()
        }

        deinit {
            buffers.withLock { buffers in
                for buffer in buffers { buffer.pointer.pointer.deallocate() }
                buffers.removeAll()
            }
        }
    }

    /// A buffer pointer that may sit in the pool's lock (the pool owns the memory, one user at a time).
    struct UnsafeMutableRawPointerBox: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    /// A batch with one claim flag per message: 0 free, 1 claimed by the helper (parsing), 2 parsed by the helper,
    /// 3 claimed by the poll thread, 4 parsed by the helper with its slot filled.
    final class Job: @unchecked Sendable {
        // @unchecked: the flags are atomics; `batch` is immutable; a slot is written by the helper before its flag's
        // release store (4) and read by the poll thread after that flag's acquire load.
        let batch: MessageList
        private let flags: UnsafeMutablePointer<Atomic<UInt8>>
        /// One slot per message for the value work (`nil` without it), from `pool`.
        private let slots: UnsafeMutableRawPointer?
        private let slotBytes: Int
        private let slotStride: Int
        private let pool: SlotPool?
        /// Set once the poll thread is done with the batch: the helper stops claiming.
        let finished = Atomic<Bool>(false)

        init(_ batch: MessageList, slotStride: Int, pool: SlotPool?) {
            self.batch = batch
            self.slotStride = slotStride
            self.pool = pool
            flags = .allocate(capacity: batch.messages.count)
            for index in 0..<batch.messages.count { (flags + index).initialize(to: Atomic(0)) }
            if let pool, slotStride > 0 {
                (slots, slotBytes) = pool.take(slotStride * batch.messages.count)
            } else {
                (slots, slotBytes) = (nil, 0)
            }
        }

        deinit {
            flags.deinitialize(count: batch.messages.count)
            flags.deallocate()
            if let slots, let pool { pool.give(slots, bytes: slotBytes) }
        }

        /// Message `index`'s slot.
        @inline(__always) func slot(_ index: Int) -> UnsafeMutableRawPointer? {
            slots.map { $0 + index &* slotStride }
        }

        /// The helper's claim: true if it may parse message `index`.
        @inline(__always) func helperClaims(_ index: Int) -> Bool {
            flags[index].compareExchange(expected: 0, desired: 1, ordering: .relaxed).exchanged
        }

        @inline(__always) func helperParsed(_ index: Int, filled: Bool) {
            flags[index].store(filled ? 4 : 2, ordering: .releasing)
        }

        /// The poll thread's claim: returns once message `index` is its to read (parsed by the helper, or claimed
        /// here to be parsed lazily), with the message's state (see the type) and whether it had to wait for the
        /// helper.
        @inline(__always) func callerClaims(_ index: Int) -> (state: UInt8, waited: Bool) {
            let state = flags[index].load(ordering: .acquiring)
            // 2 or 4: parsed by the helper; 3: claimed here before (the caller reads the batch again).
            if state >= 2 { return (state, false) }
            if state == 0, flags[index].compareExchange(expected: 0, desired: 3, ordering: .acquiring).exchanged {
                return (3, false)
            }
            return (waitForHelper(index), true)
        }

        @inline(never) private func waitForHelper(_ index: Int) -> UInt8 {
            var spins = 0
            while true {
                let state = flags[index].load(ordering: .acquiring)
                if state != 1 { return state }
                spins += 1
                if spins > 100 { sched_yield() }
            }
        }
    }

    private struct Jobs {
        var parse: Job?
        var retired: [MessageList] = []
        var stopping = false
        var started = false
    }

    /// Batches smaller than this are parsed and destroyed on the poll thread (waking a thread costs more than it
    /// saves for a few messages, and a live consumer's batches are small).
    static let minimumBatch = 64

    /// Starts parsing `batch`'s headers on the helper thread (starting it on first use).
    func begin(_ batch: MessageList) {
        let job = Job(batch, slotStride: slotStride, pool: slotPool)
        current = job
        batches.add(1, ordering: .relaxed)
        condition.lock()
        jobs.parse = job
        parsePending.store(true, ordering: .releasing)
        if !jobs.started {
            jobs.started = true
            let thread = Thread { [self] in
                setCurrentThreadName("rdk-read-ahead")
                run()
            }
            thread.start()
        }
        condition.signal()
        condition.unlock()
    }

    /// Returns once message `index` of the current batch may be read (see the type's protocol), with its slot if the
    /// helper did the value work on it.
    @inline(__always) func claim(_ index: Int) -> UnsafeRawPointer? {
        guard let current else { return nil }
        let (state, waited) = current.callerClaims(index)
        if waited { callerWaits.add(1, ordering: .relaxed) }
        return state == 4 ? current.slot(index).map(UnsafeRawPointer.init) : nil
    }

    /// Hands the current batch, which the caller is done with, to the helper, which destroys its messages once it
    /// has stopped parsing them.
    func retire() {
        guard let job = current else { return }
        current = nil
        job.finished.store(true, ordering: .releasing)
        condition.lock()
        jobs.retired.append(job.batch)
        condition.signal()
        condition.unlock()
    }

    /// Destroys everything retired, then stops the helper thread; returns when it has stopped.
    /// Call before the client is destroyed. Idempotent.
    func finish() {
        condition.lock()
        let started = jobs.started
        let first = !jobs.stopping
        jobs.stopping = true
        condition.signal()
        condition.unlock()
        if started && first { exited.wait() }
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.parse == nil && jobs.retired.isEmpty && !jobs.stopping { condition.wait() }
            if let job = jobs.parse {
                jobs.parse = nil
                parsePending.store(false, ordering: .relaxed)
                condition.unlock()
                parse(job)
                continue
            }
            if !jobs.retired.isEmpty {
                let batch = jobs.retired.removeFirst()
                condition.unlock()
                destroy(batch)
                continue
            }
            // Stopping, with nothing left.
            condition.unlock()
            exited.signal()
            return
        }
    }

    /// Parses the headers of every message of `job` it can claim, until the poll thread is done with the batch or a
    /// newer batch waits.
    private func parse(_ job: Job) {
        var headers: OpaquePointer?
        var count = 0
        for (index, message) in job.batch.messages.enumerated() {
            if index % 16 == 0,
                job.finished.load(ordering: .acquiring) || parsePending.load(ordering: .relaxed)
            {
                break
            }
            guard job.helperClaims(index) else { continue }
            _ = rd_kafka_message_headers(message, &headers)
            var filled = false
            if let valueWork, let slot = job.slot(index) {
                let payload = message.pointee.payload
                let length = message.pointee.len
                filled = valueWork.work(payload.map { UnsafeRawBufferPointer(start: $0, count: length) }, slot)
            }
            job.helperParsed(index, filled: filled)
            count += 1
        }
        parsedAhead.add(count, ordering: .relaxed)
    }

    /// Destroys a batch's messages; a parse job that arrives meanwhile goes first (the rest is put back).
    private func destroy(_ batch: MessageList) {
        let messages = batch.messages
        var index = 0
        while index < messages.count {
            if index % 64 == 0, index > 0, parsePending.load(ordering: .relaxed) {
                condition.lock()
                jobs.retired.insert(MessageList(messages: Array(messages[index...])), at: 0)
                condition.unlock()
                return
            }
            rd_kafka_message_destroy(messages[index])
            index += 1
        }
    }
}
