import Testing

@testable import FlowmeterCore

@Suite struct FastHashTests {
    /// Every prefix length from 0 to 64 bytes, and every single-byte change of a 40-byte string, hash differently;
    /// equal bytes hash equally; another seed gives other hashes.
    @Test func distinctBytesHashDistinctly() {
        let hash = FastHash(seed0: 1, seed1: 2)
        let other = FastHash(seed0: 3, seed1: 4)
        let base = Array("4bf92f35-77b3-4da6-a3ce-929d0e0e4736-0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        var seen: [UInt64: String] = [:]
        func record(_ bytes: [UInt8]) {
            let text = String(decoding: bytes, as: UTF8.self)
            let value = bytes.withUnsafeBytes { hash.hash($0) }
            #expect(hash.hash(text) == value)
            #expect(other.hash(text) != value, "\(text)")
            if let earlier = seen[value] { #expect(earlier == text, "\(earlier) and \(text) collide") }
            seen[value] = text
        }
        for length in 0...64 { record(Array(base.prefix(length))) }
        for position in 0..<40 {
            var changed = Array(base.prefix(40))
            changed[position] ^= 0x01
            record(changed)
        }
        // Zero bytes are not ignored: lengths 1 to 24 of zeros are all different.
        for length in 1...24 { record(Array(repeating: 0, count: length)) }
        #expect(seen.count == 65 + 40 + 24)
    }

    /// 200,000 random UUID-like ids: no two share the 47 bits the duplicate window compares.
    @Test func randomIDsSpreadOverTheWindowBits() {
        let hash = FastHash()
        var generator = SystemRandomNumberGenerator()
        var seen = Set<UInt64>()
        for _ in 0..<200_000 {
            let high = UInt64.random(in: 0 ... .max, using: &generator)
            let low = UInt64.random(in: 0 ... .max, using: &generator)
            let id = String(high, radix: 16) + "-" + String(low, radix: 16)
            #expect(seen.insert(hash.hash(id) & 0x7fff_ffff_ffff).inserted)
        }
    }

    /// Against a `Dictionary`: random appends, head moves and removals over 3 flows and 60 keys (hex and text), with
    /// the hash cut to 3 bits so that most entries collide and probe runs wrap around the table.
    @Test func chainTableMatchesADictionary() {
        struct Reference: Hashable {
            var flow: Int
            var key: CorrelationKey
        }
        var generator = SystemRandomNumberGenerator()
        let keys: [CorrelationKey] =
            (0..<30).map { CorrelationKey(traceHigh: UInt64($0 % 3), traceLow: UInt64($0)) }
            + (0..<30).map { CorrelationKey("order-\($0)") }
        for hashMask: UInt64 in [0x7, .max] {
            func verify(_ table: ChainTable, _ reference: [Reference: (head: Int32, tail: Int32)]) {
                for flow in 0..<3 {
                    for key in keys {
                        let expected = reference[Reference(flow: flow, key: key)]
                        let found = table.find(flow: flow, key: key).map { table[$0] }
                        #expect(found?.head == expected?.head && found?.tail == expected?.tail)
                        #expect(found.map { $0.key == key && $0.flow == Int32(flow) } ?? true)
                    }
                }
            }
            var table = ChainTable(hasher: FastHash(), hashMask: hashMask)
            var reference: [Reference: (head: Int32, tail: Int32)] = [:]
            var nextSlot: Int32 = 0
            for _ in 0..<20_000 {
                let flow = Int.random(in: 0..<3, using: &generator)
                let key = keys.randomElement(using: &generator)!
                let name = Reference(flow: flow, key: key)
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<5:
                    let previous = table.append(nextSlot, flow: flow, key: key)
                    #expect(previous == reference[name]?.tail ?? -1)
                    reference[name, default: (nextSlot, nextSlot)].tail = nextSlot
                    nextSlot += 1
                case 5:
                    guard let index = table.find(flow: flow, key: key) else { continue }
                    table[index].head = nextSlot
                    reference[name]!.head = nextSlot
                    nextSlot += 1
                default:
                    let index = table.find(flow: flow, key: key)
                    #expect((index != nil) == (reference[name] != nil))
                    if let index {
                        table.remove(at: index)
                        reference[name] = nil
                    }
                }
                #expect(table.count == reference.count)
                if nextSlot % 500 == 0 { verify(table, reference) }
            }
            verify(table, reference)
        }
    }
}
