import Testing

@testable import FlowmeterCore

/// Records every top-level member a scan reports.
private struct RecordingSink: TopLevelMemberSink {
    var members: [String] = []

    mutating func member(keyStart: Int, keyEnd: Int, keyEscaped: Bool, value: MemberSpan, base: UnsafePointer<UInt8>) {
        members.append("\(keyStart)..<\(keyEnd) \(keyEscaped) \(value)")
    }

    /// Recorded as the general path would: the name must be the attribute's, unescaped.
    mutating func member(
        _ attribute: Attribute,
        keyStart: Int,
        keyEnd: Int,
        value: MemberSpan,
        base: UnsafePointer<UInt8>
    ) {
        #expect(Attribute.match(base, keyStart, keyEnd) == attribute)
        member(keyStart: keyStart, keyEnd: keyEnd, keyEscaped: false, value: value, base: base)
    }
}

/// Both scans of `bytes`: the kind each one found (`nil` when it rejected the document) and the members it reported.
func scanBoth(
    _ bytes: [UInt8],
    maxDepth: Int = 512
) -> (fastKind: JSONValueKind?, fast: [String], fullKind: JSONValueKind?, full: [String]) {
    bytes.withUnsafeBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return (nil, [], nil, []) }
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
        let fastKind = JSONDocument.scanFast(base: base, start: 0, end: buffer.count, maxDepth: maxDepth, sink: &fast)
        return (fastKind, fast.members, fullKind, full.members)
    }
}

/// The fast validating scan must agree with the full one: same verdict on object documents, same members.
@Suite struct JSONFastScanTests {
    /// What both scans say about `bytes`: the full scan's kind (or `nil` on failure) and members, then the fast
    /// scan's.
    private func compare(_ bytes: [UInt8], maxDepth: Int = 512) {
        let scans = scanBoth(bytes, maxDepth: maxDepth)
        if let fastKind = scans.fastKind {
            #expect(fastKind == scans.fullKind, "\(bytes)")
            #expect(scans.fast == scans.full, "\(bytes)")
        } else {
            #expect(scans.fullKind == nil || scans.fullKind != .object, "\(bytes)")
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

/// ``Attribute/compactKey(_:)`` against the byte-by-byte definition: `name":` of exactly one envelope member.
@Suite struct CompactKeyTests {
    private func expected(_ bytes: [UInt8]) -> (Attribute, Int)? {
        for attribute in Attribute.allCases {
            let key = Array("\(attribute.name)\":".utf8)
            if bytes.starts(with: key) { return (attribute, key.count) }
        }
        return nil
    }

    private func check(_ bytes: [UInt8]) {
        let padded = bytes + [UInt8](repeating: 0x20, count: max(0, 17 - bytes.count))
        let found = padded.withUnsafeBufferPointer { Attribute.compactKey($0.baseAddress!) }
        let wanted = expected(padded)
        #expect(found?.0 == wanted?.0 && found?.1 == wanted?.1, "\(bytes)")
    }

    @Test func everyByteAtEveryPositionOfEveryName() {
        for attribute in Attribute.allCases {
            let key = Array("\(attribute.name)\":".utf8)
            for tail: [UInt8] in [[], Array("\"x\",".utf8), Array("{}".utf8), Array(repeating: 0x22, count: 17)] {
                check(key + tail)
                for position in key.indices {
                    for byte in 0...255 {
                        var near = key + tail
                        near[position] = UInt8(byte)
                        check(near)
                    }
                }
            }
            // Whitespace before the colon, a longer or shorter name, an escape: not compact keys.
            check(Array("\(attribute.name)\" :".utf8))
            check(Array("\(attribute.name)s\":".utf8))
            check(Array("\(attribute.name.description.dropLast())\":".utf8))
            check(Array("\\u0069\(attribute.name)\":".utf8))
        }
    }

    /// Documents whose keys are compact, spaced or escaped, near the end of the buffer or not, agree with the full
    /// scan (their members recorded as the general path records them).
    @Test func documentsWithCompactKeysAgreeWithTheFullScan() {
        for attribute in Attribute.allCases {
            let name = "\(attribute.name)"
            for document in [
                "{\"\(name)\":1}", "{\"\(name)\" :1}", "{\"\(name)\":\"v\",\"\(name)\":2}",
                "{\"x\":0,\"\(name)\":null}",
                "{\"\(name)\":{\"\(name)\":[1,2]},\"id\":\"a\"}", "{ \"\(name)\":true }", "{\"\(name)\":\"\\u0041\"}",
                "{\"\(name)\":", "{\"\(name)\":}", "{\"\(name)\":1,}",
                "{\"\(name)\":1" + String(repeating: " ", count: 20),
            ] {
                let scans = scanBoth(Array(document.utf8))
                #expect(scans.fastKind == scans.fullKind, "\(document)")
                if scans.fastKind != nil { #expect(scans.fast == scans.full, "\(document)") }
            }
        }
    }
}

/// The `,"` separator taken in one comparison, at the end of the buffer and inside nested containers.
@Suite struct CommaQuoteTests {
    @Test func separatorsAgreeWithTheFullScan() {
        let documents = [
            #"{"a":1,"b":2}"#, #"{"a":1,""#, #"{"a":1,"#, #"{"a":1,"}"#, #"{"a":"x","b":"y"}"#, #"{"a":1 ,"b":2}"#,
            #"{"a":1, "b":2}"#, #"{"a":[1,"b",2,"c"],"d":{"e":"f","g":1,"h":[]}}"#, #"{"a":[1,"]}"#,
            #"{"a":{"b":1,"}}"#,
            #"{"a":{"b":1,"c"}}"#, #"{"a":["x","y",]}"#, #"{"a":{"b":1,""#, #"{"a":[1,""#, #"{"a":"x",",":1}"#,
            // The colon after a nested name taken with the value's first byte.
            #"{"a":{"b": 1}}"#, "{\"a\":{\"b\":\t1}}", #"{"a":{"b":"#, #"{"a":{"b":}}"#, #"{"a":{"b":"c"}}"#,
            #"{"a":{"b" :1}}"#, #"{"a":{"b":1,"c":{"d":[]}}}"#, "{\"a\":{\"b\":\u{1}}}", "{\"a\":{\"b\":\u{80}}}",
        ]
        for document in documents {
            let scans = scanBoth(Array(document.utf8))
            #expect(scans.fastKind == scans.fullKind, "\(document)")
            if scans.fastKind != nil { #expect(scans.fast == scans.full, "\(document)") }
        }
    }
}

/// The word-at-a-time string scan around its edges: 8-byte word boundaries, the buffer's last word, escapes.
@Suite struct JSONFastScanWordBoundaryTests {
    /// Whether both scans give the same verdict and members (as in ``JSONFastScanTests``).
    private func agree(_ bytes: [UInt8]) -> Bool {
        let scans = scanBoth(bytes)
        if let fastKind = scans.fastKind { return fastKind == scans.fullKind && scans.fast == scans.full }
        return scans.fullKind == nil || scans.fullKind != .object
    }

    @Test func everySpecialByteAtEveryPositionOfShortStrings() {
        // Bytes around the classes the SWAR test separates: controls, space, quote, backslash, DEL, non-ASCII.
        let probes: [[UInt8]] = [
            [0x00], [0x01], [0x09], [0x1F], [0x20], [0x21], [0x22], [0x23], [0x5B], [0x5C], [0x5D], [0x7E], [0x7F],
            [0x80], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0xC3], [0xFF], [0x5C, 0x6E],
            [0x5C, 0x22], [0x5C, 0x5C], [0x5C, 0x75, 0x30, 0x30, 0x33, 0x63], [0x5C, 0x78],
        ]
        for length in 0...20 {
            for position in 0...length {
                for probe in probes {
                    var content = [UInt8](repeating: 0x61, count: length)
                    if position < length {
                        content.replaceSubrange(position..<position + 1, with: probe)
                    } else if position > 0 {
                        continue
                    }
                    let string = [ASCII.quote] + content + [ASCII.quote]
                    // The string as the last value (its closing quote within the last 8 bytes), as a key, inside
                    // `data`, and at each offset from the buffer's start (short buffers: fewer than 8 bytes before it).
                    let documents: [[UInt8]] = [
                        Array("{\"k\":".utf8) + string + [ASCII.closeBrace],
                        Array("{\"k\":".utf8) + string + Array("}  ".utf8),
                        [ASCII.openBrace] + string + Array(":1}".utf8),
                        Array("{\"data\":{\"a\":".utf8) + string + Array("},\"z\":[".utf8) + string + Array("]}".utf8),
                        Array("{\"x\":".utf8) + string + Array(",\"y\":\"abcdefghijklmnop\"}".utf8),
                    ]
                    for document in documents {
                        #expect(agree(document), "\(document)")
                        // Cut short at every length: unterminated strings must not be read past the end.
                        for cut in max(0, document.count - 12)..<document.count {
                            #expect(agree(Array(document[0..<cut])), "\(document[0..<cut])")
                        }
                    }
                }
            }
        }
    }

    @Test func theLowestFlaggedByteOfAWordIsTheFirstSpecialOne() {
        func isSpecial(_ b: UInt8) -> Bool { b == 0x22 || b == 0x5C || b < 0x20 || b >= 0x80 }
        var rng = SplitMix64(state: 0x5BAD)
        let interesting: [UInt8] = [0x00, 0x01, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7E, 0x7F, 0x80, 0xFF]
        for _ in 0..<200_000 {
            var bytes = [UInt8](repeating: 0, count: 8)
            for k in 0..<8 {
                let r = rng.next()
                bytes[k] =
                    r % 3 == 0
                    ? interesting[Int((r >> 8) % UInt64(interesting.count))] : UInt8(0x20 + (r >> 8) % 0x60)
            }
            var word: UInt64 = 0
            for k in (0..<8).reversed() { word = word << 8 | UInt64(bytes[k]) }
            let special = JSONCursor.specialBytes(word)
            if let first = bytes.firstIndex(where: isSpecial) {
                #expect(special.trailingZeroBitCount / 8 == first, "\(bytes)")
            } else {
                #expect(special == 0, "\(bytes)")
            }
        }
    }
}
