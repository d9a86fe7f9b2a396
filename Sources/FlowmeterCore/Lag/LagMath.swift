/// The offsets of one partition that lag is computed from, as polled at one moment.
///
/// All offsets are Kafka offsets: ``committed`` is the *next* offset the group will read, ``end`` is one past
/// the last record or transaction marker (the high watermark, or the last stable offset under
/// `read_committed`).
public struct PartitionOffsets: Sendable, Hashable {
    /// The group's committed offset, or `nil` when the group has no commit on this partition.
    public var committed: Int64?
    /// The first offset still in the log (the low watermark).
    public var logStart: Int64
    /// One past the last offset in the log (the high watermark).
    public var end: Int64

    /// Creates a set of offsets.
    public init(committed: Int64?, logStart: Int64, end: Int64) {
        self.committed = committed
        self.logStart = logStart
        self.end = end
    }

    /// Where the group will read next: the committed offset, or the log start when the commit fell below it
    /// (retention or compaction removed those records). `nil` without a commit.
    public var position: Int64? {
        committed.map { max($0, logStart) }
    }

    /// Whether records may be waiting at all: there is a commit and its position is before the end.
    ///
    /// Only then is the first waiting record worth looking up; otherwise the group is caught up.
    public var mayHaveWaitingRecords: Bool {
        guard let position else { return false }
        return position < end
    }

    /// Whether the committed offset lies outside the log: below its start or past its end.
    public var isOutOfRange: Bool {
        guard let committed else { return false }
        return committed < logStart || committed > end
    }
}

/// The first *data* record at or after a group's position (transaction markers are never data records).
public struct WaitingRecord: Sendable, Hashable {
    /// Its offset.
    public var offset: Int64
    /// Its timestamp in milliseconds since the epoch (CreateTime or LogAppendTime, as the topic says).
    public var timestampMs: Int64

    /// Creates a record description.
    public init(offset: Int64, timestampMs: Int64) {
        self.offset = offset
        self.timestampMs = timestampMs
    }
}

/// Lag of one group on one partition, as DESIGN.md section 4 defines it. Never estimated: what is unknown
/// is `nil`, not a made-up number.
public struct PartitionLag: Sendable, Hashable {
    /// Data records the group has not consumed; `nil` without a commit.
    public var messages: Int64?
    /// Seconds from the first unconsumed record's timestamp to the poll; 0 when caught up; `nil` without a
    /// commit or when that record carries no timestamp.
    public var seconds: Double?
    /// Records removed from the log before the group read them (log start − committed offset, when the commit
    /// is below the log start); 0 otherwise.
    public var lostMessages: Int64
    /// Whether the group has no commit on the partition.
    public var noCommit: Bool
    /// Whether the committed offset is outside `[log start, end]` (an error status).
    public var outOfRange: Bool

    /// Creates a value.
    public init(messages: Int64?, seconds: Double?, lostMessages: Int64, noCommit: Bool, outOfRange: Bool) {
        self.messages = messages
        self.seconds = seconds
        self.lostMessages = lostMessages
        self.noCommit = noCommit
        self.outOfRange = outOfRange
    }
}

/// Lag math over plain values: no I/O, no clock.
public enum LagMath {
    /// Computes a partition's lag.
    ///
    /// - Offset lag counts from the position (the committed offset, or the log start if higher) to the end.
    ///   When `firstWaiting` is `nil` (no data record exists between the position and the end: the group is
    ///   caught up, possibly with only transaction markers after it) the lag is 0, not the number of markers.
    ///   When the first waiting data record is after the position, the markers (or aborted records) before it
    ///   are not counted. Markers *between* waiting data records are counted: librdkafka 2.0.2 cannot tell
    ///   them apart without reading the whole range.
    /// - Time lag is `nowMs − firstWaiting.timestampMs`, in seconds, never interpolated; 0 when caught up.
    ///   A record stamped in the future (clock skew) gives 0, not a negative lag.
    /// - A commit below the log start counts `logStart − committed` lost records, which are not lag.
    ///
    /// - Parameters:
    ///   - offsets: the committed offset and watermarks, polled in that order (so `committed <= end` unless
    ///     the commit is out of range).
    ///   - firstWaiting: the first data record at or after ``PartitionOffsets/position`` and before
    ///     ``PartitionOffsets/end``, or `nil` when there is none. Ignored without a commit.
    ///   - nowMs: the poll time in milliseconds since the epoch.
    /// - Returns: The lag.
    public static func lag(offsets: PartitionOffsets, firstWaiting: WaitingRecord?, nowMs: Int64) -> PartitionLag {
        guard let committed = offsets.committed, let position = offsets.position else {
            return PartitionLag(messages: nil, seconds: nil, lostMessages: 0, noCommit: true, outOfRange: false)
        }
        let lost = committed < offsets.logStart ? offsets.logStart - committed : 0
        guard position < offsets.end, let first = firstWaiting, first.offset >= position, first.offset < offsets.end
        else {
            return PartitionLag(
                messages: 0,
                seconds: 0,
                lostMessages: lost,
                noCommit: false,
                outOfRange: offsets.isOutOfRange
            )
        }
        let seconds: Double? = first.timestampMs >= 0 ? timeLag(nowMs: nowMs, timestampMs: first.timestampMs) : nil
        return PartitionLag(
            messages: offsets.end - first.offset,
            seconds: seconds,
            lostMessages: lost,
            noCommit: false,
            outOfRange: offsets.isOutOfRange
        )
    }

    /// `now − timestamp` in seconds, at least 0.
    public static func timeLag(nowMs: Int64, timestampMs: Int64) -> Double {
        Double(max(0, nowMs - timestampMs)) / 1000
    }
}
