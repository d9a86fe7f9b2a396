internal import CPrefetch

/// A set that remembers at most `capacity` elements, forgetting the oldest insertion first (FIFO).
struct BoundedSet<Element: Hashable & Sendable>: Sendable {
    let capacity: Int
    private var members: Set<Element> = []
    private var ring: [Element] = []
    private var head = 0

    init(capacity: Int) { self.capacity = Swift.max(0, capacity) }

    var count: Int { members.count }

    /// Inserts `element`; returns `false` if it was already remembered.
    mutating func insert(_ element: Element) -> Bool {
        guard capacity > 0 else { return true }
        guard members.insert(element).inserted else { return false }
        if ring.count < capacity {
            ring.append(element)
        } else {
            members.remove(ring[head])
            ring[head] = element
            head += 1
            if head == capacity { head = 0 }
        }
        return true
    }
}

/// The last `capacity` distinct 64-bit fingerprints (CloudEvent id hashes, for duplicate detection), in about
/// 9.2 bytes per fingerprint at a full window of 100,000.
///
/// Each fingerprint is first mixed (a bijection, so that inputs differing only in some bits still spread), then
/// split: its low 32 bits go to a ring in insertion order (4 bytes each; once full, `ring[head]` is the oldest), and
/// an open-addressing index (linear probing, at most 4/5 full, backward-shift deletion) holds, per entry, its ring
/// position, its distance from its home slot (4 bits, 15 meaning 15 or more) and a tag of the next `tagBits` bits of
/// the mixed value (4 bytes per slot). An entry's home slot is computed from the 32 bits in the ring, so entries can
/// be moved without their full value, and the stored distance lets a removal shift its run back without reading the
/// ring. Two fingerprints are taken for the same when their 32 ring bits and their tags agree: `32 + tagBits` bits,
/// 43 at the default window of 100,000 (tagBits is 28 minus the bits of a ring position: 11 up to 131,071 ids, 8 up
/// to 1,048,575, 1 at the largest window, 2^26). A lookup compares with the few entries of its probe run, so a new
/// id is taken for a duplicate with a probability of about 10 × 2^-43 ≈ 1.1e-12 at the default window (about once
/// in 10^12 events; 7e-14 before the distance took 4 of the tag's bits, in the eleventh session).
///
/// The previous layout kept the whole 64-bit value in the ring (13 bytes per fingerprint, 1.3 MB per full default
/// window); a `BoundedSet<Int>` (a `Set<Int>` at most 3/4 full plus the ring) takes about 30 bytes.
struct FingerprintWindow: Sendable {
    /// The largest window: 2^26 ids (a ring position takes 27 bits, leaving the distance and a 1-bit tag).
    static let maxCapacity = 1 << 26
    /// Bits of a slot that hold the entry's distance from its home slot; the largest value means "that far or
    /// farther" (the ring value then gives the home).
    static let distanceBits: UInt32 = 4
    static let farDistance = (1 << Int(distanceBits)) - 1

    let capacity: Int
    /// The low 32 bits of the mixed fingerprints, in insertion order.
    private var ring: [UInt32] = []
    private var head = 0
    /// Slot → (ring index + 1) | distance << positionBits | tag; 0 is empty. A power of two in size.
    private var slots: [UInt32] = []
    private var shift: UInt32 = 32
    /// Bits of a slot that hold the ring position (+ 1); above them the distance, then the tag.
    private let positionBits: UInt32
    private let positionMask: UInt32
    private let tagMask: UInt32

    init(capacity: Int) {
        let capacity = Swift.max(0, Swift.min(capacity, Self.maxCapacity))
        self.capacity = capacity
        // Ring positions + 1 run from 1 to `capacity`.
        positionBits = UInt32(Swift.max(1, Int.bitWidth - capacity.leadingZeroBitCount))
        positionMask = UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(positionBits)) - 1)
        let lowBits = positionBits + Self.distanceBits
        tagMask = lowBits >= 32 ? 0 : ~UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(lowBits)) - 1)
    }

    var count: Int { ring.count }

    /// Bits of the mixed value that tell two fingerprints with the same ring bits apart.
    var tagBits: Int { tagMask.nonzeroBitCount }

    /// Inserts `fingerprint`; returns `false` if it was already remembered.
    mutating func insert(_ fingerprint: UInt64) -> Bool {
        guard capacity > 0 else { return true }
        let mixed = Self.mix(fingerprint)
        let low = UInt32(truncatingIfNeeded: mixed)
        let tag = UInt32(truncatingIfNeeded: mixed >> 32) & tagMask
        if !slots.isEmpty {
            var slot = home(low)
            let mask = slots.count - 1
            while slots[slot] != 0 {
                let entry = slots[slot]
                if entry & tagMask == tag, ring[Int(entry & positionMask) - 1] == low { return false }
                slot = (slot + 1) & mask
            }
        }
        if ring.count < capacity {
            // Keep the index at most 4/5 full (the ring never holds more than `capacity`).
            if (ring.count + 1) * 5 > slots.count * 4 { grow() }
            // Doubling, but never past the window: a full window holds exactly `capacity` fingerprints.
            if ring.count == ring.capacity { ring.reserveCapacity(Swift.min(capacity, Swift.max(16, ring.count * 2))) }
            ring.append(low)
            place(ring.count - 1, tag: tag)
        } else {
            remove(head)
            ring[head] = low
            place(head, tag: tag)
            head += 1
            if head == capacity { head = 0 }
        }
        return true
    }

    /// Asks the CPU for the index slots an ``insert(_:)`` of `fingerprint` reads first: its home slot and, once the
    /// window is full, the oldest entry's (which the insert removes). A hint, no change. (`mutating` only so that a call
    /// on a window inside an array element works in place: a non-mutating call copied the window, retaining its two
    /// arrays.)
    @inline(__always)
    mutating func prefetch(_ fingerprint: UInt64) {
        guard capacity > 0, !slots.isEmpty else { return }
        slots.withUnsafeBufferPointer { slots in
            guard let base = slots.baseAddress else { return }
            flowmeter_prefetch(base + home(UInt32(truncatingIfNeeded: Self.mix(fingerprint))))
            if ring.count == capacity { flowmeter_prefetch(base + home(ring[head])) }
        }
    }

    /// A bijection of 64-bit values that lets every input bit change every output bit (MurmurHash3's finalizer).
    @inline(__always) private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }

    @inline(__always) private func home(_ low: UInt32) -> Int {
        // Fibonacci hashing on the ring bits: the top bits of the product.
        Int(truncatingIfNeeded: (low &* 0x9E37_79B9) >> shift)
    }

    /// The slot entry for ring position `index` at `distance` from its home (saturated at ``farDistance``).
    @inline(__always) private func entry(_ index: Int, distance: Int, tag: UInt32) -> UInt32 {
        UInt32(index + 1) | UInt32(Swift.min(distance, Self.farDistance)) << positionBits | tag
    }

    /// The distance an entry stores (``farDistance`` for that far or farther).
    @inline(__always) private func storedDistance(_ entry: UInt32) -> Int {
        Int((entry >> positionBits) & UInt32(Self.farDistance))
    }

    /// How far the entry in `slot` sits from its home slot: from the entry itself, or from its ring value when it
    /// is ``farDistance`` or farther.
    @inline(__always) private func distance(of entry: UInt32, at slot: Int) -> Int {
        let stored = storedDistance(entry)
        if stored < Self.farDistance { return stored }
        return (slot - home(ring[Int(entry & positionMask) - 1])) & (slots.count - 1)
    }

    private mutating func place(_ index: Int, tag: UInt32) {
        let mask = slots.count - 1
        let start = home(ring[index])
        var slot = start
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = entry(index, distance: (slot - start) & mask, tag: tag)
    }

    /// Removes the index entry of `ring[index]`, shifting later entries of its probe run back. Each entry's distance
    /// from its home says whether it may move (its home is not in the stretch it would skip), so the ring is read
    /// only for entries ``farDistance`` or more from home. (Reading the ring value of each entry of the run, a cache
    /// miss each, was half of this function's samples in a backfill.)
    private mutating func remove(_ index: Int) {
        let mask = slots.count - 1
        let position = UInt32(index + 1)
        var hole = home(ring[index])
        while slots[hole] & positionMask != position { hole = (hole + 1) & mask }
        var next = hole
        while true {
            next = (next + 1) & mask
            let moving = slots[next]
            guard moving != 0 else { break }
            let distance = distance(of: moving, at: next)
            let gap = (next - hole) & mask
            // The entry may move back to the hole unless its home lies cyclically in (hole, next].
            if distance >= gap {
                slots[hole] = entry(Int(moving & positionMask) - 1, distance: distance - gap, tag: moving & tagMask)
                hole = next
            }
        }
        slots[hole] = 0
    }

    private mutating func grow() {
        var size = Swift.max(16, slots.count * 2)
        while (ring.count + 1) * 5 > size * 4 { size *= 2 }
        let old = slots
        slots = [UInt32](repeating: 0, count: size)
        shift = UInt32(32 - size.trailingZeroBitCount)
        for entry in old where entry != 0 {
            let index = Int(entry & positionMask) - 1
            place(index, tag: entry & tagMask)
        }
    }

    /// Index entries stored as ``farDistance`` or farther from home (tests).
    var farEntries: Int {
        slots.reduce(0) { $1 != 0 && storedDistance($1) == Self.farDistance ? $0 + 1 : $0 }
    }

    /// Checks the index against the ring (tests): every ring position is indexed once, in its home slot's probe run
    /// (no empty slot between), and every stored distance is the true one or ``farDistance`` for one that far or
    /// farther. Returns the first violation.
    func invariantViolation() -> String? {
        guard !slots.isEmpty else { return ring.isEmpty ? nil : "ring without an index" }
        let mask = slots.count - 1
        var seen = Set<Int>()
        for (slot, entry) in slots.enumerated() where entry != 0 {
            let index = Int(entry & positionMask) - 1
            guard index >= 0, index < ring.count else { return "slot \(slot): position \(index) outside the ring" }
            guard seen.insert(index).inserted else { return "position \(index) indexed twice" }
            let start = home(ring[index])
            let trueDistance = (slot - start) & mask
            var probe = start
            while probe != slot {
                if slots[probe] == 0 { return "slot \(slot): empty slot \(probe) in its probe run" }
                probe = (probe + 1) & mask
            }
            let stored = storedDistance(entry)
            if stored != Swift.min(trueDistance, Self.farDistance) {
                return "slot \(slot): distance \(stored) stored, \(trueDistance) true"
            }
        }
        return seen.count == ring.count ? nil : "\(ring.count - seen.count) ring positions not indexed"
    }
}

/// A FIFO queue on a growable ring buffer.
struct RingQueue<Element: Sendable>: Sendable {
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    var first: Element? { count == 0 ? nil : storage[head] }

    mutating func append(_ element: Element) {
        if count == storage.count { grow() }
        storage[(head + count) % storage.count] = element
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        return element
    }

    /// Keeps only the elements for which `keep` is true, in order.
    mutating func retain(_ keep: (Element) -> Bool) {
        var kept: [Element?] = []
        kept.reserveCapacity(Swift.max(16, count))
        while let element = popFirst() {
            if keep(element) { kept.append(element) }
        }
        let keptCount = kept.count
        kept.append(contentsOf: repeatElement(nil, count: Swift.max(16, keptCount) - keptCount))
        storage = kept
        head = 0
        count = keptCount
    }

    private mutating func grow() {
        let newCapacity = Swift.max(16, storage.count * 2)
        var grown: [Element?] = []
        grown.reserveCapacity(newCapacity)
        for position in 0..<count { grown.append(storage[(head + position) % storage.count]) }
        grown.append(contentsOf: repeatElement(nil, count: newCapacity - count))
        storage = grown
        head = 0
    }
}

/// A binary min-heap of pending-request deadlines, ordered by (deadline, sequence).
struct DeadlineHeap: Sendable {
    struct Entry: Sendable, Comparable {
        var deadlineMs: Int64
        var sequence: UInt64
        /// Where the owner keeps the entry's item (not part of the order).
        var slot: Int32
        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.deadlineMs, lhs.sequence) < (rhs.deadlineMs, rhs.sequence)
        }
    }

    private(set) var entries: [Entry] = []

    var count: Int { entries.count }
    var first: Entry? { entries.first }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        siftUp(entries.count - 1)
    }

    mutating func popFirst() -> Entry? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let top = entries.removeLast()
        if !entries.isEmpty { siftDown(0) }
        return top
    }

    /// Keeps only the entries for which `keep` is true and restores the heap order.
    mutating func retain(_ keep: (Entry) -> Bool) {
        entries.removeAll { !keep($0) }
        var index = entries.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child] < entries[parent] else { return }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { return }
            var smallest = left
            if left + 1 < entries.count && entries[left + 1] < entries[left] { smallest = left + 1 }
            guard entries[smallest] < entries[parent] else { return }
            entries.swapAt(smallest, parent)
            parent = smallest
        }
    }
}

/// The latency bucket layout every Flowmeter histogram shares (DESIGN.md 3.3); 0.5 s is the SLO boundary.
public enum LatencyBuckets {
    /// Upper bounds in seconds.
    public static let seconds: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
    ]
    /// The `le` label values, `+Inf` last.
    public static let labels: [String] = [
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30",
        "60", "120", "300", "600", "+Inf",
    ]
}

/// A Prometheus histogram over the shared latency bucket layout (DESIGN.md 3.3), fed in whole milliseconds.
struct SecondsHistogram: Sendable, Hashable {
    /// Upper bounds in milliseconds.
    static let boundsMs: [Double] = [
        1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    ]
    /// The `le` label values, `+Inf` last.
    static let leLabels = LatencyBuckets.labels

    /// Per-bucket (not cumulative) counts; the last one is above the highest bound.
    var buckets = [Int64](repeating: 0, count: 19)
    var count: Int64 = 0
    var sumMs: Int64 = 0

    /// Records `milliseconds`, clamped to 0 when negative.
    mutating func record(milliseconds: Int64) {
        let value = Swift.max(0, milliseconds)
        let asDouble = Double(value)
        var index = 0
        let bounds = Self.boundsMs
        while index < bounds.count && asDouble > bounds[index] { index += 1 }
        buckets[index] += 1
        count += 1
        sumMs &+= value
    }

    /// Appends `_bucket`, `_sum` and `_count` lines for the series `{label="labelValue"}` (an escaped value).
    func write(name: String, label: String, labelValue: String, into output: inout String) {
        var cumulative: Int64 = 0
        for index in 0..<buckets.count {
            cumulative += buckets[index]
            output += name
            output += "_bucket{"
            output += label
            output += "=\""
            output += labelValue
            output += "\",le=\""
            output += Self.leLabels[index]
            output += "\"} "
            output += String(cumulative)
            output += "\n"
        }
        for (suffix, value) in [("_sum{", formatSeconds(milliseconds: sumMs)), ("_count{", String(count))] {
            output += name
            output += suffix
            output += label
            output += "=\""
            output += labelValue
            output += "\"} "
            output += value
            output += "\n"
        }
    }
}

/// Exact decimal seconds for whole milliseconds (`1234` → `1.234`).
func formatSeconds(milliseconds: Int64) -> String {
    let negative = milliseconds < 0
    let magnitude = milliseconds.magnitude
    let whole = magnitude / 1000
    let fraction = magnitude % 1000
    var text = negative ? "-" : ""
    text += String(whole)
    if fraction != 0 {
        var digits = String(fraction)
        while digits.utf8.count < 3 { digits = "0" + digits }
        while digits.utf8.last == UInt8(ascii: "0") { digits.removeLast() }
        text += "." + digits
    }
    return text
}

/// Escapes a label value for the Prometheus text format: backslash, double quote and line feed.
func escapeLabelValue(_ value: String) -> String {
    guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return value }
    var escaped = ""
    escaped.reserveCapacity(value.utf8.count + 8)
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\\": escaped += "\\\\"
        case "\"": escaped += "\\\""
        case "\n": escaped += "\\n"
        default: escaped.unicodeScalars.append(scalar)
        }
    }
    return escaped
}

/// Appends the `# HELP` and `# TYPE` lines of a metric.
func writeHeader(name: String, type: String, help: String, into output: inout String) {
    output += "# HELP "
    output += name
    output += " "
    output += help
    output += "\n# TYPE "
    output += name
    output += " "
    output += type
    output += "\n"
}

/// Appends one sample line `name{label="labelValue"[,label2="labelValue2"]} value` (label values escaped), without
/// building intermediate strings.
func writeSample(
    name: String,
    label: String,
    labelValue: String,
    label2: String? = nil,
    labelValue2: String = "",
    value: Int64,
    into output: inout String
) {
    output += name
    output += "{"
    output += label
    output += "=\""
    output += labelValue
    if let label2 {
        output += "\","
        output += label2
        output += "=\""
        output += labelValue2
    }
    output += "\"} "
    output += String(value)
    output += "\n"
}
