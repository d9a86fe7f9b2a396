internal import CRdKafka
import Foundation
import Synchronization

/// Keeps librdkafka 2.0.2's fetcher awake while a consumer reads a backlog.
///
/// Once the consumer queue is over `queued.min.messages` or `queued.max.messages.kbytes`, librdkafka 2.0.2 takes
/// every partition out of its fetch list, and its broker thread sleeps until something wakes it, for up to a second
/// (`rd_kafka_max_block_ms`, a constant; 2.1.0 made the wait `fetch.queue.backoff.ms`). Consuming from the queue does
/// not wake it. A reader that drains the queue within that second then waits with nothing to read: traced per
/// thread, a 1,000,000-record backfill went idle for 0.2-0.3 s once a second, right before each burst of fetching.
///
/// Any request queued for a broker wakes its thread, which then decides again which partitions to fetch. While
/// the caller reads full batches (``noteFullBatch()``), this thread asks for the watermarks of one assigned partition
/// every ``interval`` (two small ListOffsets requests), going round the assignment so that, in a cluster, each
/// partition leader's thread is reached in turn. Nothing is read or changed: the answer is dropped.
final class FetchWakeup: @unchecked Sendable {
    // @unchecked: `handle` is a thread-safe librdkafka client; the rest are atomics, a lock and a semaphore.
    private let handle: OpaquePointer
    /// How often to wake the fetcher while a backlog is read.
    static let interval: Duration = .milliseconds(50)
    /// The caller's last full batch, in `ContinuousClock` nanoseconds since `epoch` (0: none yet).
    private let lastFullBatch = Atomic<Int64>(0)
    private let state = Mutex<(started: Bool, stopping: Bool, stopped: Bool)>((false, false, false))
    private let exited = DispatchSemaphore(value: 0)
    /// Signalled by ``stop(timeout:)``: ends the thread's pause at once (closing the consumer does not wait 50 ms).
    private let stopSignal = DispatchSemaphore(value: 0)
    private let epoch = ContinuousClock.now
    /// Wake-ups sent (for tests and the curious).
    let wakeups = Atomic<Int>(0)

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    private func nowNanoseconds() -> Int64 {
        let (seconds, attoseconds) = (ContinuousClock.now - epoch).components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The caller polled as many records as it asked for: the queue holds a backlog. Starts the thread on first use.
    func noteFullBatch() {
        lastFullBatch.store(max(1, nowNanoseconds()), ordering: .relaxed)
        let start = state.withLock { state in
            guard !state.started, !state.stopping else { return false }
            state.started = true
            return true
        }
        if start {
            let thread = Thread { [self] in
                setCurrentThreadName("rdk-fetch-wake")
                run()
            }
            thread.start()
        }
    }

    /// Stops the thread (after its request in flight, if any); call before the client is destroyed.
    /// - Returns: Whether it stopped within `timeout`. librdkafka 2.0.2's watermark query can outlast its own timeout
    ///   while a partition has no leader (see `KafkaAdmin`); then the client must not be destroyed under it.
    func stop(timeout: Duration) -> Bool {
        let wait = state.withLock { state in
            defer { state.stopping = true }
            return state.started && !state.stopping && !state.stopped
        }
        guard wait else { return state.withLock { !$0.started || $0.stopped } }
        stopSignal.signal()
        let (seconds, attoseconds) = timeout.components
        let deadline =
            DispatchTime.now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        guard exited.wait(timeout: deadline) == .success else { return false }
        state.withLock { $0.stopped = true }
        return true
    }

    private func run() {
        defer { exited.signal() }
        var next = 0
        // No full batch for this long: no backlog, nothing to do.
        let quiet: Int64 = 200_000_000
        let (seconds, attoseconds) = Self.interval.components
        let pause = DispatchTimeInterval.nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        while !state.withLock({ $0.stopping }) {
            if stopSignal.wait(timeout: .now() + pause) == .success { return }
            if state.withLock({ $0.stopping }) { return }
            guard nowNanoseconds() - lastFullBatch.load(ordering: .relaxed) < quiet else { continue }
            var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { continue }
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let count = Int(list.pointee.cnt)
            guard count > 0 else { continue }
            let element = list.pointee.elems[next % count]
            next &+= 1
            var low: Int64 = -1
            var high: Int64 = -1
            _ = rd_kafka_query_watermark_offsets(handle, element.topic, element.partition, &low, &high, 200)
            wakeups.add(1, ordering: .relaxed)
        }
    }
}
