import Foundation
import Testing

@testable import FlowmeterCore

/// The fast paths of the trace and time parsers against every byte at every position.
@Suite struct DecoderFastPathTests {
    @Test func traceparentAcceptsExactlyLowercaseHexAtEveryPosition() throws {
        let valid = Array("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".utf8)
        let reference = try #require(TraceContext.parse(String(decoding: valid, as: UTF8.self), source: .headerTraceid))
        #expect(reference.traceID == "0af7651916cd43dd8448eb211c80319c")
        #expect(reference.parentID == "b7ad6b7169203331")
        let hexPositions = Array(3..<35) + Array(36..<52)
        for position in hexPositions {
            for byte in 0...255 {
                var text = valid
                text[position] = UInt8(byte)
                let parsed = text.withUnsafeBufferPointer { TraceContext.parse(bytes: $0, source: .headerTraceid) }
                let isLowerHex = (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)
                #expect((parsed != nil) == isLowerHex, "byte \(byte) at \(position)")
                if let parsed {
                    let expected = String(decoding: text[3..<35], as: UTF8.self)
                    #expect(parsed.traceID == expected || expected.allSatisfy { $0 == "0" })
                    #expect(parsed.parentID == String(decoding: text[36..<52], as: UTF8.self))
                }
            }
        }
    }

    @Test func wholeSecondTimesMatchTheGeneralParser() {
        let texts = [
            "2025-11-03T09:12:04Z", "2024-02-29T23:59:60Z", "2023-02-29T00:00:00Z", "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z", "2025-01-00T00:00:00Z", "2025-01-31T24:00:00Z", "2025-01-31T23:60:00Z",
            "2025-01-31T23:59:61Z", "1677-01-01T00:00:00Z", "2262-12-31T00:00:00Z", "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z", "2025-11-03t09:12:04Z", "2025-11-03T09:12:04z", "2025-11-03 09:12:04Z",
        ]
        for text in texts {
            let fast = RFC3339.parse(text)
            // The same instant spelled with a fraction takes the general path.
            let general = RFC3339.parse(text.replacingOccurrences(of: "Z", with: ".0Z"))
            #expect(fast?.epochNanoseconds == general?.epochNanoseconds, "\(text)")
            #expect(fast?.leapSecond == general?.leapSecond, "\(text)")
        }
        let valid = Array("2025-11-03T09:12:04Z".utf8)
        for position in 0..<valid.count {
            for byte in 0...255 {
                var text = valid
                text[position] = UInt8(byte)
                let fast = text.withUnsafeBufferPointer { RFC3339.parse(bytes: $0) }
                var longer = text
                longer.insert(contentsOf: Array(".0".utf8), at: 19)
                let general = longer.withUnsafeBufferPointer { RFC3339.parse(bytes: $0) }
                #expect(fast?.epochNanoseconds == general?.epochNanoseconds, "byte \(byte) at \(position)")
                #expect(fast?.lenient == general?.lenient, "byte \(byte) at \(position)")
            }
        }
    }

    /// The names the decoder reads on every record, matched in one pass, against the general comparison: every byte
    /// at every position of each name, other lengths, and the case variants.
    @Test func wellKnownHeaderNamesMatchTheGeneralComparison() {
        let names: [(String, WellKnownHeader, Bool)] = [
            ("__topic", .dlqTopic, false), ("__offset", .dlqOffset, false), ("rawPayload", .rawPayload, true),
            ("ce_specversion", .ceSpecversion, true),
        ]
        func expected(_ name: String) -> WellKnownHeader? {
            names.first { namesEqual(name, $0.0, caseInsensitive: $0.2) }?.1
        }
        for (name, _, _) in names {
            let bytes = Array(name.utf8)
            for position in 0..<bytes.count {
                for byte in 0...255 {
                    var text = bytes
                    text[position] = UInt8(byte)
                    let candidate = String(decoding: text, as: UTF8.self)
                    #expect(
                        WellKnownHeader.match(candidate) == expected(candidate),
                        "byte \(byte) at \(position) of \(name)"
                    )
                }
            }
            for candidate in [
                name.uppercased(), name.lowercased(), String(name.dropLast()), name + "x", "x" + name,
                String(name.dropFirst()), name.replacingOccurrences(of: "_", with: "\u{7F}"),
            ] {
                #expect(WellKnownHeader.match(candidate) == expected(candidate), "\(candidate)")
            }
        }
        #expect(WellKnownHeader.match("RAWPAYLOAD") == .rawPayload)
        #expect(WellKnownHeader.match("Ce_SpecVersion") == .ceSpecversion)
        #expect(WellKnownHeader.match("__Topic") == nil)
        #expect(WellKnownHeader.match("__OFFSET") == nil)
        #expect(WellKnownHeader.match("partitionKey") == nil)
        #expect(WellKnownHeader.match("") == nil)
    }

    /// The decoder reads those headers as before: the last of several wins, any case where allowed.
    @Test func wellKnownHeadersDecodeAsTheirLastValue() {
        let decoder = CloudEventDecoder()
        func decode(_ headers: [RecordHeader], value: String = "not json") -> DecodedEvent {
            decoder.decode(
                topic: "orders",
                partition: 0,
                offset: 1,
                timestampMs: 1_000,
                headers: headers,
                key: nil,
                value: Array(value.utf8)
            )
        }
        #expect(decode([RecordHeader(name: "RawPayload", string: "true")]).parserClass == .raw)
        #expect(decode([RecordHeader(name: "rawpayload", string: "T")]).parserClass == .raw)
        #expect(
            decode([
                RecordHeader(name: "rawPayload", string: "true"), RecordHeader(name: "RAWPAYLOAD", string: "false"),
            ])
            .parserClass == .malformed
        )
        #expect(decode([RecordHeader(name: "raw_payload", string: "true")]).parserClass == .malformed)
        let dlqHeaders = [RecordHeader(name: "__topic", string: "orders"), RecordHeader(name: "__offset", string: "7")]
        #expect(decode(dlqHeaders).role == .dlq)
        #expect(decode([RecordHeader(name: "__Topic", string: "orders"), dlqHeaders[1]]).role == .normal)
        #expect(decode([dlqHeaders[0]]).role == .normal)
        let binary = decode([
            RecordHeader(name: "CE_SPECVERSION", string: "1.0"), RecordHeader(name: "ce_id", string: "a"),
        ])
        #expect(binary.parserClass == .binaryCloudEvent)
        #expect(binary.id == "a")
        let structured = decode(
            [RecordHeader(name: "ce_specversion", string: "1.0"), RecordHeader(name: "ce-specversion", string: "1.0")],
            value: #"{"specversion":"1.0","id":"x","source":"s","type":"t"}"#
        )
        #expect(structured.parserClass == .binaryCloudEvent)
        let plain = decode(
            [RecordHeader(name: "ce-specversion", string: "1.0")],
            value: #"{"specversion":"1.0","id":"x","source":"s","type":"t"}"#
        )
        #expect(plain.parserClass == .cloudEvent)
    }

    /// The unsigned path of the day count against the signed formula (H. Hinnant's, as before).
    @Test func daysFromCivilMatchesTheSignedFormula() {
        func reference(_ year: Int, _ month: Int, _ day: Int) -> Int {
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let mp = (month + 9) % 12
            let doy = (153 * mp + 2) / 5 + day - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            return era * 146_097 + doe - 719_468
        }
        for year in Array(-5...2_500) + [9_999, 10_000, 99_999] {
            for month in -1...14 {
                for day in [-1, 0, 1, 15, 28, 29, 30, 31, 32] {
                    #expect(
                        RFC3339.daysFromCivil(year: year, month: month, day: day) == reference(year, month, day),
                        "\(year)-\(month)-\(day)"
                    )
                }
            }
        }
    }
}
