#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The simulator's seeded pseudo-random numbers: xoshiro256** seeded through SplitMix64.
///
/// Every derived draw (uniform, bounded integers, normal, log-normal, exponential, hex, UUIDs) is written out
/// here rather than taken from the standard library, whose algorithms for `random(in:using:)` are not specified:
/// the same seed gives the same sequence on every platform and Swift version.
public struct SimulationRandom: RandomNumberGenerator, Sendable, Hashable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Creates a generator; equal seeds give equal sequences.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    /// A uniform draw from [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform integer in `0..<bound` (Lemire's multiply-shift with rejection, so it is unbiased).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let range = UInt64(bound)
        while true {
            let product = next().multipliedFullWidth(by: range)
            if product.low >= (0 &- range) % range { return Int(product.high) }
        }
    }

    /// One element of a non-empty array.
    public mutating func pick<Element>(_ elements: [Element]) -> Element {
        elements[below(elements.count)]
    }

    /// True with probability `probability`.
    public mutating func chance(_ probability: Double) -> Bool {
        uniform() < probability
    }

    /// A standard normal draw (Box–Muller; one pair of uniforms per draw, so the state stays a plain value).
    public mutating func standardNormal() -> Double {
        let u1 = 1 - uniform()  // (0, 1]: log is finite
        let u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A log-normal draw with the given median and shape: `median · e^(sigma · Z)`.
    public mutating func logNormal(median: Double, sigma: Double) -> Double {
        median * exp(sigma * standardNormal())
    }

    /// An exponential draw with the given mean (the gaps of a Poisson process).
    public mutating func exponential(mean: Double) -> Double {
        -mean * log(1 - uniform())
    }

    /// `count` lowercase hex digits.
    public mutating func hex(_ count: Int) -> String {
        var digits: [UInt8] = []
        digits.reserveCapacity(count)
        var bits: UInt64 = 0
        var available = 0
        for _ in 0..<count {
            if available == 0 {
                bits = next()
                available = 16
            }
            digits.append(hexDigits[Int(bits & 0xF)])
            bits >>= 4
            available -= 1
        }
        return String(decoding: digits, as: UTF8.self)
    }

    /// `count` lowercase hex digits, not all zero (W3C trace and parent ids must not be all zero).
    public mutating func nonZeroHex(_ count: Int) -> String {
        while true {
            let text = hex(count)
            if text.utf8.contains(where: { $0 != UInt8(ascii: "0") }) { return text }
        }
    }

    /// A random (version 4, variant 1) UUID in lowercase hyphenated form, as Go's `google/uuid` writes it.
    public mutating func uuidV4() -> String {
        var high = next()
        var low = next()
        high = (high & ~0xF000) | 0x4000  // version 4 in bits 12-15 of time_hi_and_version
        low = (low & ~(0xC000 << 48)) | (0x8000 << 48)  // variant 10xx
        var digits: [UInt8] = []
        digits.reserveCapacity(36)
        for position in 0..<32 {
            if position == 8 || position == 12 || position == 16 || position == 20 { digits.append(UInt8(ascii: "-")) }
            let word = position < 16 ? high : low
            digits.append(hexDigits[Int((word >> UInt64(60 - 4 * (position % 16))) & 0xF)])
        }
        return String(decoding: digits, as: UTF8.self)
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

private func rotateLeft(_ value: UInt64, _ count: UInt64) -> UInt64 {
    (value << count) | (value >> (64 - count))
}
