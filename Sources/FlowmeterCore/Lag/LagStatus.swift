/// The health of a consumer group on a partition, or of a whole group (its worst partition).
///
/// Ordered by severity: `ok < warning < stalled < stopped < error`.
public enum LagStatus: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    /// Keeping up, or idle with nothing waiting.
    case ok
    /// Falling behind: lag is growing while the group still commits.
    case warning
    /// Not committing while records wait, for a whole window.
    case stalled
    /// Not committing while records wait, for more than twice the window (or no members).
    case stopped
    /// The committed offset is out of range, or the broker reported an error.
    case error

    private var severity: Int {
        switch self {
        case .ok: 0
        case .warning: 1
        case .stalled: 2
        case .stopped: 3
        case .error: 4
        }
    }

    public static func < (lhs: LagStatus, rhs: LagStatus) -> Bool { lhs.severity < rhs.severity }

    /// The `status` label value.
    public var description: String { rawValue }
}

/// One status sample of a partition: what one successful poll saw.
public struct LagStatusSample: Sendable, Hashable {
    /// The committed offset, or `nil` without a commit.
    public var committed: Int64?
    /// Data records waiting (0 when caught up or without a commit).
    public var lagMessages: Int64
    /// The committed offset is below the log start or past the end.
    public var outOfRange: Bool
    /// The broker answered this partition with an error (not a timeout: an unanswered poll adds no sample).
    public var brokerError: Bool

    /// Creates a sample.
    public init(committed: Int64?, lagMessages: Int64, outOfRange: Bool = false, brokerError: Bool = false) {
        self.committed = committed
        self.lagMessages = lagMessages
        self.outOfRange = outOfRange
        self.brokerError = brokerError
    }
}

/// The status of one group on one partition over a sliding window of samples (DESIGN.md section 4).
///
/// With a window of `W` samples (at least 2) and the newest sample last:
/// - **window**: the last `W` samples recorded; a poll that could not refresh the partition (stale) records
///   no sample, so the window counts successful polls, not wall-clock time.
/// - **waiting**: a sample's lag is > 0.
/// - **unchanged run**: the number of newest consecutive samples that are all waiting and all have the same
///   committed offset (a commit that moves, backwards too, or a sample with nothing waiting ends the run).
/// - **error**: the newest sample has its committed offset out of range (below the log start: records were
///   lost; past the end) or a broker error.
/// - **stopped**: the newest sample is waiting and either the unchanged run is longer than `2 × W` samples,
///   or the group has no members (known only where the broker can describe groups).
/// - **stalled**: the unchanged run is at least `W` samples: records waited and the commit did not move
///   during the whole window.
/// - **warning**: the window is full, every sample in it is waiting, the committed offset moved within it,
///   and lag is *growing*: it never decreased from one sample to the next within the window, and the newest
///   lag is strictly greater than the oldest. Noise (lag 1, 3, 2) and the saw-tooth of a consumer that
///   commits in batches do not warn; a lag that reached 0 once in the window does not warn. The price: a
///   consumer whose saw-tooth climbs slowly is not flagged until its teeth stop falling or it stops
///   committing.
/// - **ok**: everything else, including every sample with nothing waiting, however old the last commit:
///   an idle partition is not a failure. A partition without a commit is ok (its own metric says so).
///
/// The first rule that holds wins, in the order error, stopped, stalled, warning, ok.
public struct PartitionStatusTracker: Sendable, Hashable {
    /// The window size in samples (at least 2).
    public let window: Int
    /// The last ``window`` samples, oldest first.
    public private(set) var samples: [LagStatusSample] = []
    /// The length of the current unchanged run (see the type's documentation).
    public private(set) var unchangedRun = 0
    /// The status after the newest sample.
    public private(set) var status: LagStatus = .ok

    /// Creates a tracker.
    /// - Parameter window: samples in the window; values below 2 are raised to 2.
    public init(window: Int) {
        self.window = max(2, window)
    }

    /// Records a sample and returns the new status.
    ///
    /// - Parameters:
    ///   - sample: what the poll saw.
    ///   - groupHasNoMembers: `true` when the broker described the group as having no members; `nil` when
    ///     the broker cannot describe groups.
    @discardableResult
    public mutating func record(_ sample: LagStatusSample, groupHasNoMembers: Bool? = nil) -> LagStatus {
        let previous = samples.last
        if sample.lagMessages > 0, let previous, previous.lagMessages > 0, previous.committed == sample.committed,
            unchangedRun > 0
        {
            unchangedRun += 1
        } else {
            unchangedRun = sample.lagMessages > 0 ? 1 : 0
        }
        samples.append(sample)
        if samples.count > window { samples.removeFirst(samples.count - window) }
        status = evaluate(groupHasNoMembers: groupHasNoMembers ?? false)
        return status
    }

    private func evaluate(groupHasNoMembers: Bool) -> LagStatus {
        guard let newest = samples.last else { return .ok }
        if newest.outOfRange || newest.brokerError { return .error }
        guard newest.lagMessages > 0 else { return .ok }
        if unchangedRun > 2 * window || groupHasNoMembers { return .stopped }
        if unchangedRun >= window { return .stalled }
        if isGrowing { return .warning }
        return .ok
    }

    /// Whether the full window shows growing lag with a moving commit (the warning rule).
    public var isGrowing: Bool {
        guard samples.count == window, let oldest = samples.first, let newest = samples.last else { return false }
        guard samples.allSatisfy({ $0.lagMessages > 0 }) else { return false }
        guard samples.contains(where: { $0.committed != oldest.committed }) else { return false }
        guard newest.lagMessages > oldest.lagMessages else { return false }
        return zip(samples, samples.dropFirst()).allSatisfy { $1.lagMessages >= $0.lagMessages }
    }
}

/// Group status helpers.
public enum GroupStatus {
    /// The worst of the partition statuses, `error` if the group itself had a broker error, `ok` for none.
    public static func worst(_ statuses: some Sequence<LagStatus>, groupError: Bool = false) -> LagStatus {
        if groupError { return .error }
        return statuses.max() ?? .ok
    }
}

/// One row of `flowmeter.consumer_lag` (DESIGN.md 3.4): the latest lag of a group on a partition.
public struct LagSample: Sendable, Hashable {
    /// When the values were polled, in milliseconds since the epoch (`sampled_at`).
    public var sampledAtMs: Int64
    /// The group (`group_id`).
    public var groupID: String
    /// The topic.
    public var topic: String
    /// The partition.
    public var partition: Int32
    /// The committed offset; `nil` (NULL) when the group has no commit.
    public var committedOffset: Int64?
    /// The log start offset.
    public var logStartOffset: Int64
    /// The end offset.
    public var endOffset: Int64
    /// Waiting data records; `nil` without a commit.
    public var lagMessages: Int64?
    /// Time lag in seconds; `nil` without a commit (or when the waiting record has no timestamp).
    public var lagSeconds: Double?
    /// The partition's status.
    public var status: LagStatus

    /// Creates a row.
    public init(
        sampledAtMs: Int64,
        groupID: String,
        topic: String,
        partition: Int32,
        committedOffset: Int64?,
        logStartOffset: Int64,
        endOffset: Int64,
        lagMessages: Int64?,
        lagSeconds: Double?,
        status: LagStatus
    ) {
        self.sampledAtMs = sampledAtMs
        self.groupID = groupID
        self.topic = topic
        self.partition = partition
        self.committedOffset = committedOffset
        self.logStartOffset = logStartOffset
        self.endOffset = endOffset
        self.lagMessages = lagMessages
        self.lagSeconds = lagSeconds
        self.status = status
    }
}
