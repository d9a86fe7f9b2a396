import Testing

@testable import FlowmeterCore

@Suite struct FingerprintWindowTests {
    @Test func remembersTheLastCapacityDistinctFingerprints() {
        var window = FingerprintWindow(capacity: 3)
        // 4 evicts 1, the second 1 evicts 2; then 3 and 4 are still remembered and 2 is not.
        let inserted = [1, 2, 1, 3, 4, 1, 3, 4, 2].map { window.insert($0) }
        #expect(inserted == [true, true, false, true, true, true, false, false, true])
        #expect(window.count == 3)
    }

    @Test func zeroCapacityRemembersNothing() {
        var window = FingerprintWindow(capacity: 0)
        let inserted = [7, 7].map { window.insert($0) }
        #expect(inserted == [true, true])
        #expect(window.count == 0)
    }

    /// Against the generic `BoundedSet` (a `Set` and a ring): the same answers for every insert, with
    /// fingerprints drawn from small ranges (many duplicates, long probe runs after evictions) and from the full
    /// 64-bit range, through growth and a full window.
    /// A window larger than the largest is clamped to it; the tag shrinks with the ring position's width but answers
    /// stay exact in practice (against the reference set with a capacity that needs 18 position bits).
    @Test func largeWindowsClampAndStillAnswer() {
        #expect(FingerprintWindow(capacity: .max).capacity == FingerprintWindow.maxCapacity)
        #expect(FingerprintWindow(capacity: -5).capacity == 0)
        var window = FingerprintWindow(capacity: 150_000)
        var reference = BoundedSet<UInt64>(capacity: 150_000)
        var generator = SplitMix(seed: 42)
        var mismatches = 0
        var duplicates = 0
        for _ in 0..<400_000 {
            let fingerprint = generator.next() % 300_000
            let answer = window.insert(fingerprint)
            if answer != reference.insert(fingerprint) { mismatches += 1 }
            if !answer { duplicates += 1 }
        }
        #expect(mismatches == 0)
        #expect(duplicates > 100_000)
        #expect(window.count == 150_000)
        #expect(window.invariantViolation() == nil)
        #expect(window.tagBits == 10)
    }

    /// The index through growth and a long churn at 4/5 full: every entry indexed once, in its probe run, with its
    /// true distance from home (or the far mark), including entries far enough to need the mark, which removals
    /// then shift by their ring value.
    @Test func indexStaysConsistentThroughChurn() {
        var window = FingerprintWindow(capacity: 3_200)  // 4,096 slots once full: 78 % full
        var reference = BoundedSet<UInt64>(capacity: 3_200)
        var generator = SplitMix(seed: 7)
        var mismatches = 0
        var mostFar = 0
        for step in 1...60_000 {
            let fingerprint = generator.next() % 9_000
            if window.insert(fingerprint) != reference.insert(fingerprint) { mismatches += 1 }
            if step % 500 == 0 {
                #expect(window.invariantViolation() == nil, "after \(step) inserts")
                mostFar = max(mostFar, window.farEntries)
            }
        }
        #expect(mismatches == 0)
        #expect(mostFar > 0)
        #expect(window.tagBits == 16)
    }

    @Test(arguments: [1, 2, 7, 100, 1000])
    func answersLikeTheReferenceSet(capacity: Int) {
        var generator = SplitMix(seed: UInt64(capacity))
        for range: UInt64 in [UInt64(capacity) * 2 + 1, UInt64(capacity) * 8 + 3, .max] {
            var window = FingerprintWindow(capacity: capacity)
            var reference = BoundedSet<UInt64>(capacity: capacity)
            var mismatches = 0
            for step in 0..<50_000 {
                let value = range == .max ? generator.next() : generator.next() % range
                // Values differing only in high bits too (they must still spread over the slots).
                let fingerprint = step % 3 == 0 ? value << 32 : value
                if window.insert(fingerprint) != reference.insert(fingerprint) { mismatches += 1 }
            }
            #expect(mismatches == 0)
            #expect(window.count == reference.count)
            #expect(window.invariantViolation() == nil)
        }
    }
}

/// A deterministic 64-bit generator (SplitMix64).
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
