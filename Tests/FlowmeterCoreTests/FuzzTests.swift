import Foundation
import Testing

@testable import FlowmeterCore

/// A tiny deterministic PRNG (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct FuzzTests {
    static let tokens: [[UInt8]] =
        [
            "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "0", "-", "1e", ".", "true", "null",
            "\"specversion\"",
            "\"data\"", "\"data_base64\"", "\"time\"", "\"id\"", "\"topic\"", "\"pubsubname\"", "\"traceparent\"", " ",
            "\n",
            "\u{FEFF}", "é", "😀", "\"2025-11-03T09:12:04Z\"", "\"1.0\"", "\"outbox-\"", "\"text/plain\"",
        ].map { Array($0.utf8) } + [[0xFF], [0xC0], [0xED, 0xA0, 0x80], [0x00], [0xF4, 0x90]]

    /// The values of every fixture, shared (if present) and the project's.
    static func corpus() -> [[UInt8]] {
        var values: [[UInt8]] = []
        for directory in [Fixtures.projectDirectory, Fixtures.sharedDirectory] {
            guard let cases = try? Fixtures.load(from: directory) else { continue }
            values += cases.compactMap(\.value).filter { $0.count <= 65_536 }
        }
        return values
    }

    static func mutate(_ input: [UInt8], corpus: [[UInt8]], rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        let rounds = Int.random(in: 1...4, using: &rng)
        for _ in 0..<rounds {
            switch Int.random(in: 0..<7, using: &rng) {
            case 0 where !bytes.isEmpty:
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                }
            case 1 where !bytes.isEmpty:
                bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
            case 2:
                let token = tokens.randomElement(using: &rng)!
                bytes.insert(contentsOf: token, at: Int.random(in: 0...bytes.count, using: &rng))
            case 3 where !bytes.isEmpty:
                let a = Int.random(in: 0..<bytes.count, using: &rng)
                let b = Int.random(in: a...min(bytes.count, a + 32), using: &rng)
                bytes.removeSubrange(a..<b)
            case 4:
                let other = corpus.randomElement(using: &rng) ?? []
                let cutA = Int.random(in: 0...bytes.count, using: &rng)
                let cutB = Int.random(in: 0...other.count, using: &rng)
                bytes = Array(bytes[..<cutA]) + Array(other[cutB...])
            case 5 where !bytes.isEmpty:
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            case 6 where !bytes.isEmpty:
                let a = Int.random(in: 0..<bytes.count, using: &rng)
                let b = Int.random(in: a...min(bytes.count, a + 16), using: &rng)
                bytes.insert(contentsOf: bytes[a..<b], at: Int.random(in: 0...bytes.count, using: &rng))
            default:
                break
            }
        }
        return bytes
    }

    static let headerSets: [[RecordHeader]] = [
        [],
        [RecordHeader(name: "rawPayload", string: "true"), RecordHeader(name: "traceid", string: "00-x")],
        [RecordHeader(name: "__topic", string: "a%2"), RecordHeader(name: "__offset", string: "%3")],
        [
            RecordHeader(name: "ce_specversion", string: "1.0"),
            RecordHeader(name: "ce_time", string: "2025-11-03T09:12:04Z"),
            RecordHeader(name: "content-type", string: "application/json"),
        ],
        [RecordHeader(name: "ce_specversion", string: "1.0"), RecordHeader(name: "ce_specversion", value: nil)],
    ]

    static func checkInvariants(_ event: DecodedEvent, _ input: [UInt8], maxParseBytes: Int) {
        #expect(event.valueBytes == input.count)
        #expect(event.flags.contains(.oversize) == (input.count > maxParseBytes))
        switch event.parserClass {
        case .malformed:
            #expect(event.parseError != nil)
            #expect(event.invalidReason == .malformedJSON)
        case .cloudEvent, .binaryCloudEvent:
            #expect(event.producerKind != nil)
        case .raw:
            #expect(event.invalidReason != nil)
            #expect(event.producerKind == nil)
        case .tombstone:
            Issue.record("a non-nil value decoded as a tombstone")
        }
        if let range = event.dataRange {
            #expect(range.lowerBound >= 0 && range.upperBound <= input.count)
        }
    }

    /// At least 100,000 random and mutated inputs: no crash, basic invariants, deterministic results.
    @Test func randomAndMutatedInputsNeverCrash() {
        var rng = SplitMix64(state: 0x5EED_F10E)
        let corpus = Self.corpus()
        #expect(!corpus.isEmpty)
        let strict = CloudEventDecoder()
        let skimming = CloudEventDecoder(options: DecoderOptions(maxParseBytes: 64, maxNestingDepth: 16))
        var count = 0
        for iteration in 0..<110_000 {
            let input: [UInt8]
            if iteration % 4 == 0 || corpus.isEmpty {
                let length = Int.random(in: 0...200, using: &rng)
                if Bool.random(using: &rng) {
                    input = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                } else {
                    var bytes: [UInt8] = []
                    while bytes.count < length { bytes += Self.tokens.randomElement(using: &rng)! }
                    input = bytes
                }
            } else {
                input = Self.mutate(corpus.randomElement(using: &rng)!, corpus: corpus, rng: &rng)
            }
            let decoder = iteration % 3 == 0 ? skimming : strict
            let headers = Self.headerSets[iteration % Self.headerSets.count]
            let topic = iteration % 5 == 0 ? "x.dlq" : "progress.updated"
            let timestamps: [Int64] = [1_762_161_124_318, .max, .min, 0, -1, 1_762_161_184_318]
            let timestampMs = timestamps[(iteration / 5) % timestamps.count]
            let event = decoder.decode(
                topic: topic,
                partition: 0,
                offset: Int64(iteration),
                timestampMs: timestampMs,
                headers: headers,
                key: nil,
                value: input
            )
            Self.checkInvariants(event, input, maxParseBytes: decoder.options.maxParseBytes)
            _ = event.extractDataString(atPath: ["a", "0", "b"], in: input)
            _ = input.withUnsafeBytes { JSONPath.extractString(atPath: ["data", "x"], in: $0) }
            if iteration % 16 == 0 {
                let again = decoder.decode(
                    topic: topic,
                    partition: 0,
                    offset: Int64(iteration),
                    timestampMs: timestampMs,
                    headers: headers,
                    key: nil,
                    value: input
                )
                #expect(again == event)
            }
            count += 1
        }
        #expect(count >= 100_000)
    }

    /// Every prefix of every fixture value decodes without a crash; a strict prefix of a valid object is malformed.
    @Test func everyTruncationIsHandled() {
        let decoder = CloudEventDecoder()
        for value in Self.corpus() where value.count <= 4096 {
            for cut in stride(from: 0, to: value.count, by: max(1, value.count / 97)) {
                let prefix = Array(value[..<cut])
                let event = decoder.decode(
                    topic: "t",
                    partition: 0,
                    offset: 0,
                    timestampMs: 0,
                    headers: [],
                    key: nil,
                    value: prefix
                )
                if value.first == 0x7B && value.last == 0x7D {
                    #expect(event.parserClass == .malformed)
                }
            }
        }
    }
}
