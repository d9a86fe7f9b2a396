import FlowmeterCore
import Testing

@testable import FlowmeterApp

/// The intake's header scratch array: refilled record after record, it must always equal the record's headers.
@Suite struct HeaderRefillTests {
    @Test func refilledHeadersEqualFreshOnes() {
        var generator = SystemRandomNumberGenerator()
        let names = ["partitionKey", "traceparent", "rawPayload", "a-header-name-longer-than-fifteen-bytes", "", "ü"]
        var scratch: [RecordHeader] = []
        for _ in 0..<2_000 {
            let record: [(name: [UInt8], value: [UInt8]?)] = (0..<Int.random(in: 0...5, using: &generator)).map { _ in
                let name = Array(names.randomElement(using: &generator)!.utf8)
                let value: [UInt8]? =
                    Int.random(in: 0..<5, using: &generator) == 0
                    ? nil : (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255) }
                return (name, value)
            }
            var count = 0
            for header in record {
                header.name.withUnsafeBytes { name in
                    if let value = header.value {
                        value.withUnsafeBytes { Intake.refill(&scratch, at: count, name: name, value: $0) }
                    } else {
                        Intake.refill(&scratch, at: count, name: name, value: nil)
                    }
                }
                count += 1
            }
            if scratch.count > count { scratch.removeLast(scratch.count - count) }
            let fresh = record.map { RecordHeader(name: String(decoding: $0.name, as: UTF8.self), value: $0.value) }
            #expect(scratch == fresh)
        }
    }

    /// Invalid UTF-8 in a name is repaired as a fresh string would be, and the next record's valid name replaces it.
    @Test func invalidNamesAreRepairedLikeFreshOnes() {
        var scratch: [RecordHeader] = []
        let invalid: [UInt8] = [0x61, 0xFF, 0x62]
        invalid.withUnsafeBytes { Intake.refill(&scratch, at: 0, name: $0, value: nil) }
        #expect(scratch == [RecordHeader(name: String(decoding: invalid, as: UTF8.self), value: nil)])
        invalid.withUnsafeBytes { Intake.refill(&scratch, at: 0, name: $0, value: nil) }
        #expect(scratch[0].name == "a\u{FFFD}b")
        Array("ab".utf8).withUnsafeBytes { Intake.refill(&scratch, at: 0, name: $0, value: $0) }
        #expect(scratch == [RecordHeader(name: "ab", string: "ab")])
    }
}
