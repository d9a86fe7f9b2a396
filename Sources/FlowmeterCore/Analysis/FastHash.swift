internal import CPrefetch

/// A seeded 64-bit hash for the per-record tables (duplicate-window fingerprints, correlation keys): the 128-bit
/// multiply-and-fold mixing of wyhash, a few instructions per 16 bytes where `Hasher` (SipHash-1-3) spends a seed, a
/// round per 8 bytes and a finalization on every lookup.
///
/// It is keyed by a random seed per table, so inputs that collide cannot be prepared without knowing the seed (the
/// purpose of `Hasher`'s per-process seed); it is not a cryptographic hash.
struct FastHash: Sendable {
    private let seed0: UInt64
    private let seed1: UInt64

    /// A hash keyed by a fresh random seed.
    init() {
        var generator = SystemRandomNumberGenerator()
        self.init(seed0: generator.next(), seed1: generator.next())
    }

    /// A hash keyed by the given seed (tests).
    init(seed0: UInt64, seed1: UInt64) {
        self.seed0 = seed0
        self.seed1 = seed1
    }

    private static let k0: UInt64 = 0xa076_1d64_78bd_642f
    private static let k1: UInt64 = 0xe703_7ed1_a0b4_28db
    private static let k2: UInt64 = 0x8ebc_6af0_9c88_c6e3

    /// The high and low halves of the full product, folded.
    @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// The hash of two words.
    @inline(__always)
    func hash(_ a: UInt64, _ b: UInt64) -> UInt64 {
        Self.fold(Self.fold(a ^ seed0, b ^ seed1 ^ Self.k0) ^ Self.k1, seed0 ^ Self.k2)
    }

    /// The hash of a byte string.
    func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let count = bytes.count
        var state = seed0 ^ Self.fold(UInt64(truncatingIfNeeded: count) ^ Self.k0, seed1 ^ Self.k1)
        guard let base = bytes.baseAddress, count > 0 else { return Self.fold(state ^ Self.k2, seed1 ^ Self.k0) }
        var offset = 0
        while count - offset > 16 {
            let a = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            let b = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            state = Self.fold(a ^ Self.k1, b ^ state)
            offset += 16
        }
        // The last 1 to 16 bytes: two words that may overlap the ones before (the length is in the state).
        let a: UInt64
        let b: UInt64
        let rest = count - offset
        if rest >= 8 {
            a = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: Swift.max(0, count - 16), as: UInt64.self))
            b = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
        } else {
            a = Self.partialWord(base + offset, rest)
            b = 0
        }
        state = Self.fold(a ^ Self.k1, b ^ state ^ Self.k2)
        return Self.fold(state ^ Self.k0, seed1 ^ Self.k2)
    }

    /// The hash of a string's UTF-8 bytes.
    func hash(_ text: String) -> UInt64 {
        if let value = text.utf8.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) {
            return value
        }
        var copy = text
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// Up to 7 bytes as a little-endian word (zero-filled).
    @inline(__always)
    private static func partialWord(_ pointer: UnsafeRawPointer, _ count: Int) -> UInt64 {
        var word: UInt64 = 0
        for index in 0..<count {
            word |= UInt64(pointer.load(fromByteOffset: index, as: UInt8.self)) << UInt64(8 * index)
        }
        return word
    }
}

/// The FIFO chains of ``FlowWaiters`` by flow and correlation key: one open-addressing table for all flows (linear
/// probing, at most 3/4 full, backward-shift deletion), hashed with ``FastHash``.
///
/// Each entry holds 32 bits of its hash (its tag), so a lookup reads one slot of one array: a probe compares the tag
/// and, only when it matches, the key. (The full hashes had an array of their own; in a backlog's table of hundreds
/// of thousands of keys, a lookup then missed the cache twice, once in each array: `perf annotate` put 71% of
/// `find`'s samples on the load of the hash and 18% on the key's.)
struct ChainTable: Sendable {
    struct Entry: Sendable {
        var key: CorrelationKey
        var flow: Int32
        /// The oldest and newest waiter's slot.
        var head: Int32
        var tail: Int32
        /// The low 32 bits of the entry's hash (never 0), or 0 for an empty slot.
        fileprivate var tag: UInt32
    }

    private static let empty = Entry(
        key: CorrelationKey(traceHigh: 0, traceLow: 0),
        flow: -1,
        head: -1,
        tail: -1,
        tag: 0
    )

    private let hasher: FastHash
    /// Bits of the hash kept (all but in tests, which keep few to make entries collide).
    private let hashMask: UInt64
    private var entries: [Entry] = []
    private var mask = -1
    private(set) var count = 0

    init(hasher: FastHash = FastHash(), hashMask: UInt64 = .max) {
        self.hasher = hasher
        self.hashMask = hashMask
    }

    /// The entry in a slot ``find(flow:key:)`` gave (read and changed in place: no copy of the key's text).
    subscript(index: Int) -> Entry {
        _read { yield entries[index] }
        _modify { yield &entries[index] }
    }

    /// The tag of `flow` and `key`: the low 32 bits of their hash, 1 where those are 0.
    @inline(__always)
    private func tag(flow: Int, key: CorrelationKey) -> UInt32 {
        let value = UInt32(truncatingIfNeeded: key.hash(with: hasher, flow: flow) & hashMask)
        return value == 0 ? 1 : value
    }

    /// The slot of the entry of `flow` and `key`, if there is one.
    func find(flow: Int, key: CorrelationKey) -> Int? {
        guard count > 0 else { return nil }
        return find(flow: flow, key: key, tag: tag(flow: flow, key: key))
    }

    @inline(__always)
    private func find(flow: Int, key: CorrelationKey, tag: UInt32) -> Int? {
        entries.withUnsafeBufferPointer { entries in
            var index = Int(tag) & mask
            while true {
                let stored = entries[index].tag
                if stored == 0 { return nil }
                if stored == tag && entries[index].flow == Int32(truncatingIfNeeded: flow)
                    && entries[index].key == key
                {
                    return index
                }
                index = (index &+ 1) & mask
            }
        }
    }

    /// Asks the CPU for the home slot of `flow` and `key` (both cache lines an entry may span), so that a
    /// ``find(flow:key:)`` or ``append(_:flow:key:)`` of them soon after finds it in cache: a hint, no change.
    @inline(__always)
    func prefetch(flow: Int, key: CorrelationKey) {
        guard count > 0 else { return }
        let index = Int(tag(flow: flow, key: key)) & mask
        entries.withUnsafeBufferPointer { entries in
            guard let base = entries.baseAddress else { return }
            let entry = UnsafeRawPointer(base + index)
            flowmeter_prefetch(entry)
            flowmeter_prefetch(entry + (MemoryLayout<Entry>.size - 1))
        }
    }

    /// Makes `slot` the tail of the chain of `flow` and `key`, starting the chain if there is none; returns the
    /// previous tail, or -1.
    mutating func append(_ slot: Int32, flow: Int, key: CorrelationKey) -> Int32 {
        let tag = tag(flow: flow, key: key)
        if count > 0, let index = find(flow: flow, key: key, tag: tag) {
            let previous = entries[index].tail
            entries[index].tail = slot
            return previous
        }
        if (count + 1) * 4 > entries.count * 3 { grow() }
        place(Entry(key: key, flow: Int32(truncatingIfNeeded: flow), head: slot, tail: slot, tag: tag))
        count += 1
        return -1
    }

    /// Removes the entry in `index` (a slot ``find(flow:key:)`` gave); other entries may move.
    mutating func remove(at index: Int) {
        var hole = index
        var next = index
        while true {
            next = (next &+ 1) & mask
            let stored = entries[next].tag
            if stored == 0 { break }
            let home = Int(stored) & mask
            // The entry in `next` may fill the hole unless its home lies cyclically in (hole, next].
            let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !stays {
                entries.swapAt(hole, next)
                hole = next
            }
        }
        entries[hole] = Self.empty
        count -= 1
    }

    private mutating func place(_ entry: Entry) {
        var index = Int(entry.tag) & mask
        while entries[index].tag != 0 { index = (index &+ 1) & mask }
        entries[index] = entry
    }

    private mutating func grow() {
        // The tag's 32 bits choose the home slot, so the table stops doubling at 2^32 slots (far beyond any bound).
        let capacity = Swift.max(16, entries.count * 2)
        let old = entries
        entries = Array(repeating: Self.empty, count: capacity)
        mask = capacity - 1
        for entry in old where entry.tag != 0 {
            place(entry)
        }
    }
}
