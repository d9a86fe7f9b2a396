import Testing

@testable import FlowmeterCore

/// Records every top-level member a scan reports.
private struct RecordingSink: TopLevelMemberSink {
    var members: [String] = []

    mutating func member(keyStart: Int, keyEnd: Int, keyEscaped: Bool, value: MemberSpan, base: UnsafePointer<UInt8>) {
        members.append("\(keyStart)..<\(keyEnd) \(keyEscaped) \(value)")
    }
}

/// The fast validating scan must agree with the full one: same verdict on object documents, same members.
@Suite struct JSONFastScanTests {
    /// What both scans say about `bytes`: the full scan's kind (or `nil` on failure) and members, then the fast
    /// scan's.
    private func compare(_ bytes: [UInt8], maxDepth: Int = 512) {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var full = RecordingSink()
            let fullKind = try? JSONDocument.scan(
                base: base,
                start: 0,
                end: buffer.count,
                validate: true,
                maxDepth: maxDepth,
                sink: &full
            )
            var fast = RecordingSink()
            let fastKind = JSONDocument.scanFast(
                base: base,
                start: 0,
                end: buffer.count,
                maxDepth: maxDepth,
                sink: &fast
            )
            if let fastKind {
                #expect(fastKind == fullKind, "\(bytes)")
                #expect(fast.members == full.members, "\(bytes)")
            } else {
                #expect(fullKind == nil || fullKind != .object, "\(bytes)")
            }
        }
    }

    @Test func agreesOnHandWrittenDocuments() {
        let values = [
            "{}", "[]", "\"a\"", "0", "-0", "1.5e+10", "-1E-2", "0.0", "true", "false", "null", "[[[[]]]]",
            "{\"a\" : [1, {\"b\":null}, \"c\"]}", "\"\\u00e9\\u003c\\n\\t\\\\\\/\\\"\"", "\"\\ud83d\\ude00\"",
            "\"é😀\u{7F}\"", "{\"a\":1,\"a\":2}", "[1,-2.5,3e0,true,false,null,\"x\",{},[]]", "{\"\":\"\"}", "{",
            "}", "[", "{\"a\"}", "{\"a\":}", "{,}", "[1,]", "{\"a\":1,}", "[,1]", "01", "-01", "1.", ".5", "+1",
            "1e", "1e+", "-", "tru", "nul", "True", "\"a", "\"\\x\"", "\"\\u12g4\"", "\"\\u12\"", "\"\t\"",
            "{} {}", "[1] x", "'a'", "{\"a\" 1}", "[1 2]", "{a:1}", "{\"a\":1 \"b\":2}", "[\"a\":1]", "{\"a\",1}",
            "[}", "{]", "truex", "[truex]", "nulll", "[{}]", "[[],{}]", "{\"a\":{}}", "{\"a\":[]}",
            "{\"a\":[{\"b\":[]},{}]}", "{\"a\":\"12345678901234567890\"}", "{\"a\\u0041\":\"\\u0041\"}",
        ]
        for value in values {
            for text in [value, "{\"k\":\(value)}", " {\"k\" :\n\(value) , \"z\":1 } ", "{\"k\":[\(value)]}"] {
                compare(Array(text.utf8))
            }
        }
        let deep = String(repeating: "[", count: 70) + String(repeating: "]", count: 70)
        for depth in [1, 2, 3, 70, 71, 72, 512] {
            compare(Array("{\"k\":\(deep)}".utf8), maxDepth: depth)
            compare(Array("{\"k\":[[{}]]}".utf8), maxDepth: depth)
        }
    }

    @Test func agreesOnFixturesAndMutations() {
        let corpus = FuzzTests.corpus()
        var rng = SplitMix64(state: 0xFA57)
        for value in corpus { compare(value) }
        for _ in 0..<20_000 {
            guard let seed = corpus.randomElement(using: &rng) else { break }
            compare(FuzzTests.mutate(seed, corpus: corpus, rng: &rng))
        }
    }
}

/// The collector's word-compare of envelope names against ``Attribute/match(_:_:_:)``.
@Suite struct AttributeCollectorTests {
    @Test func envelopeNamesAndNearMissesLandInTheSameSlots() {
        var names = Attribute.allCases.map { Array("\($0.name)".utf8) }
        for attribute in Attribute.allCases {
            let name = Array("\(attribute.name)".utf8)
            for i in name.indices {
                for byte: UInt8 in [0x00, 0x20, 0x41, 0x5F, 0x61, 0x7A, 0x80, 0xFF, name[i] ^ 1, name[i] ^ 0x20] {
                    var near = name
                    near[i] = byte
                    names.append(near)
                }
            }
            names.append(name + [0x73])
            names.append(Array(name.dropLast()))
        }
        for name in names {
            name.withUnsafeBufferPointer { key in
                var collector = AttributeCollector()
                let span = MemberSpan(valueStart: 0, valueEnd: 1, kind: .null, escaped: false)
                collector.member(keyStart: 0, keyEnd: key.count, keyEscaped: false, value: span, base: key.baseAddress!)
                let expected = Attribute.match(key.baseAddress!, 0, key.count)
                for attribute in Attribute.allCases {
                    #expect((collector[attribute] != nil) == (attribute == expected), "\(name) \(attribute)")
                }
                #expect(collector.unknownCount == (expected == nil ? 1 : 0), "\(name)")
            }
        }
    }
}
