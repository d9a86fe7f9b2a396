import Foundation
import Testing

@testable import FlowmeterCore

@Suite struct LatencySketchTests {
    /// A deterministic PRNG so that failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func exactQuantile(_ sorted: [Double], _ q: Double) -> Double {
        sorted[Int((q * Double(sorted.count - 1)).rounded(.down))]
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func quantilesAreWithinOnePercentOfExactValuesOnRandomData(seed: UInt64) throws {
        var rng = SplitMix(state: seed)
        // Log-uniform over 1 ms … 1 h, with some exact zeros: every decade is exercised.
        let values: [Double] = (0..<5000).map { _ in
            if Int.random(in: 0..<50, using: &rng) == 0 { return 0 }
            let exponent = Double.random(in: 0...log10(3_600_000), using: &rng)
            return (pow(10, exponent) * 1000).rounded() / 1000
        }
        var sketch = LatencySketch()
        for value in values { sketch.record(value) }
        let sorted = values.sorted()
        #expect(sketch.count == Int64(values.count))
        #expect(sketch.max == sorted.last)
        for q in [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = Self.exactQuantile(sorted, q)
            let estimate = try #require(sketch.quantile(q))
            if exact < 1 {
                #expect(estimate == 0, "q=\(q)")
            } else {
                #expect(
                    abs(estimate - exact) <= exact * (LatencySketch.relativeAccuracy + 1e-12),
                    "q=\(q) exact=\(exact) got \(estimate)"
                )
            }
        }
        #expect(sketch.counts.count <= 760)
    }

    @Test func mergeIsExactCommutativeAndAssociative() {
        var rng = SplitMix(state: 42)
        var parts = [LatencySketch(), LatencySketch(), LatencySketch()]
        var whole = LatencySketch()
        for _ in 0..<3000 {
            let value = Double(Int.random(in: 0...600_000, using: &rng))
            parts[Int.random(in: 0..<3, using: &rng)].record(value)
            whole.record(value)
        }
        var abThenC = parts[0]
        abThenC.merge(parts[1])
        abThenC.merge(parts[2])
        var bcThenA = parts[1]
        bcThenA.merge(parts[2])
        var cb = parts[2]
        cb.merge(parts[1])
        var a = parts[0]
        a.merge(bcThenA)
        // b+c == c+b, and (a+b)+c == a+(b+c).
        #expect(bcThenA == cb)
        #expect(abThenC.counts == a.counts && abThenC.offset == a.offset && abThenC.zeroCount == a.zeroCount)
        // Equal to a sketch that saw everything: merging loses nothing.
        #expect(abThenC.counts == whole.counts)
        #expect(abThenC.offset == whole.offset)
        #expect(abThenC.zeroCount == whole.zeroCount)
        #expect(abThenC.count == whole.count)
        #expect(abThenC.max == whole.max)
        for q in [0.5, 0.95, 0.99] { #expect(abThenC.quantile(q) == whole.quantile(q)) }
    }

    @Test func sizeStaysBoundedWhateverTheCountAndSpan() {
        var sketch = LatencySketch()
        for exponent in 0...40 {
            for _ in 0..<1000 { sketch.record(pow(2, Double(exponent))) }
        }
        #expect(sketch.counts.count <= LatencySketch.maxBuckets)
        #expect(sketch.count == 41_000)
        // The top of the distribution keeps its accuracy.
        let top = sketch.quantile(1.0)!
        #expect(abs(top - pow(2, 40)) <= pow(2, 40) * 0.01)
        var other = LatencySketch()
        other.record(0.5)
        other.record(1)
        var merged = sketch
        merged.merge(other)
        #expect(merged.counts.count <= LatencySketch.maxBuckets)
        #expect(merged.count == 41_002)
    }

    @Test func edgeCases() {
        var sketch = LatencySketch()
        #expect(sketch.quantile(0.5) == nil)
        sketch.record(-5)
        sketch.record(.nan)
        #expect(sketch.isEmpty)
        sketch.record(0)
        #expect(sketch.quantile(0.99) == 0)
        sketch.record(500)
        #expect(abs(sketch.quantile(1)! - 500) <= 5)
        let rebuilt = LatencySketch(
            offset: sketch.offset,
            counts: sketch.counts,
            zeroCount: sketch.zeroCount,
            sum: sketch.sum,
            max: sketch.max
        )
        #expect(rebuilt == sketch)
        #expect(LatencySketch.index(of: 1) == 0)
    }
}
