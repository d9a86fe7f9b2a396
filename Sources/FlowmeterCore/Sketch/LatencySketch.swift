#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mergeable quantile sketch for latencies in milliseconds, with a guaranteed relative error.
///
/// Logarithmic buckets (the DDSketch scheme): a value `v ≥ 1 ms` goes to bucket `i = ⌈log_γ v⌉` with
/// `γ = (1 + α) / (1 − α)` and `α = 1 %`, and a bucket reports `2γ^i / (γ + 1)`, which is within `α` of every
/// value in it. Values below 1 ms (record timestamps have millisecond resolution, so in practice exactly 0)
/// are counted in a zero bucket that reports 0. Merging adds integer counts, so it is exact, commutative and
/// associative: the quantile of a merge of windows, topics or replicas is as accurate as that of one window.
///
/// Size is bounded whatever the count: at most ``maxBuckets`` buckets are kept, dense from the lowest to the
/// highest non-empty index. 1 ms … 1 h needs 756 of them; should a sketch span more (more than about 8 days
/// above its lowest value), the lowest buckets fold into the lowest kept one, so that only quantiles far below
/// the top lose accuracy. The folding depends only on the merged contents, so merging stays order-free.
public struct LatencySketch: Sendable, Hashable {
    /// The relative error bound.
    public static let relativeAccuracy = 0.01
    /// `(1 + α) / (1 − α)`.
    public static let gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
    /// The most buckets a sketch keeps.
    public static let maxBuckets = 1000
    private static let logGamma = log(gamma)

    /// Index of the first element of ``counts``.
    public private(set) var offset: Int
    /// Dense bucket counts from ``offset`` upwards.
    public private(set) var counts: [Int64]
    /// Values below 1 ms.
    public private(set) var zeroCount: Int64
    /// Number of values.
    public private(set) var count: Int64
    /// Sum of the values in milliseconds.
    public private(set) var sum: Double
    /// The largest value, exactly; 0 when empty.
    public private(set) var max: Double

    /// An empty sketch.
    public init() {
        offset = 0
        counts = []
        zeroCount = 0
        count = 0
        sum = 0
        max = 0
    }

    /// Rebuilds a sketch from its parts (for storage); counts are re-normalized.
    public init(offset: Int, counts: [Int64], zeroCount: Int64, sum: Double, max: Double) {
        self.init()
        self.zeroCount = Swift.max(0, zeroCount)
        self.count = self.zeroCount
        for (position, value) in counts.enumerated() where value > 0 {
            add(index: offset + position, count: value)
            self.count += value
        }
        self.sum = sum
        self.max = max
    }

    /// Whether nothing was recorded.
    public var isEmpty: Bool { count == 0 }

    /// The bucket index of a value of at least 1 ms.
    @inline(__always)
    static func index(of milliseconds: Double) -> Int {
        Int((log(milliseconds) / logGamma).rounded(.up))
    }

    /// The value a bucket reports.
    public static func value(ofIndex index: Int) -> Double {
        2 * pow(gamma, Double(index)) / (gamma + 1)
    }

    /// Records one value in milliseconds. Negative values and NaN are ignored (callers count them).
    public mutating func record(_ milliseconds: Double) {
        guard milliseconds >= 0 else { return }
        count += 1
        sum += milliseconds
        if milliseconds > max { max = milliseconds }
        if milliseconds < 1 {
            zeroCount += 1
        } else {
            add(index: Self.index(of: Swift.min(milliseconds, 1e15)), count: 1)
        }
    }

    private mutating func add(index: Int, count value: Int64) {
        if counts.isEmpty {
            offset = index
            counts = [value]
            return
        }
        if index < offset {
            let highest = offset + counts.count - 1
            if highest - index + 1 > Self.maxBuckets {
                let floor = highest - Self.maxBuckets + 1
                grow(downTo: floor)
                counts[0] += value
                return
            }
            grow(downTo: index)
        } else if index >= offset + counts.count {
            counts.append(contentsOf: repeatElement(0, count: index - offset - counts.count + 1))
            if counts.count > Self.maxBuckets { fold() }
        }
        counts[Swift.max(0, index - offset)] += value
    }

    private mutating func grow(downTo index: Int) {
        guard index < offset else { return }
        counts.insert(contentsOf: repeatElement(0, count: offset - index), at: 0)
        offset = index
    }

    /// Folds the lowest buckets so that at most ``maxBuckets`` remain.
    private mutating func fold() {
        let excess = counts.count - Self.maxBuckets
        guard excess > 0 else { return }
        var folded: Int64 = 0
        for position in 0...excess { folded += counts[position] }
        counts.removeFirst(excess)
        counts[0] = folded
        offset += excess
    }

    /// Adds another sketch's contents. Exact: the result equals a sketch that recorded both sets of values.
    public mutating func merge(_ other: LatencySketch) {
        guard !other.isEmpty else { return }
        zeroCount += other.zeroCount
        count += other.count
        sum += other.sum
        if other.max > max { max = other.max }
        for (position, value) in other.counts.enumerated() where value > 0 {
            add(index: other.offset + position, count: value)
        }
        trimZeros()
    }

    private mutating func trimZeros() {
        while let first = counts.first, first == 0, counts.count > 1 {
            counts.removeFirst()
            offset += 1
        }
        while let last = counts.last, last == 0, counts.count > 1 { counts.removeLast() }
        if counts == [0] { counts = [] }
    }

    /// The value at quantile `q` (0…1) in milliseconds, or `nil` when empty.
    ///
    /// The rank is `⌊q · (count − 1)⌋` (0-based) over the sorted values; the answer is within
    /// ``relativeAccuracy`` of the value of that rank.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0, q >= 0, q <= 1 else { return nil }
        let rank = Int64((q * Double(count - 1)).rounded(.down))
        if rank < zeroCount { return 0 }
        var seen = zeroCount
        for (position, value) in counts.enumerated() {
            seen += value
            if seen > rank { return Swift.min(Self.value(ofIndex: offset + position), max) }
        }
        return max
    }
}
