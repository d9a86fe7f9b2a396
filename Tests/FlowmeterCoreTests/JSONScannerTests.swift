import Testing

@testable import FlowmeterCore

/// Scans `bytes` as one document; returns the failure, or `nil` if valid.
func jsonFailure(_ bytes: [UInt8], maxDepth: Int = 512, validate: Bool = true) -> JSONFailure? {
    bytes.withUnsafeBufferPointer { buffer -> JSONFailure? in
        guard let base = buffer.baseAddress else { return JSONFailure(.unexpectedEnd, 0) }
        var sink = IgnoringMemberSink()
        do throws(JSONFailure) {
            _ = try JSONDocument.scan(
                base: base,
                start: 0,
                end: buffer.count,
                validate: validate,
                maxDepth: maxDepth,
                sink: &sink
            )
            return nil
        } catch {
            return error
        }
    }
}

@Suite struct JSONScannerTests {
    /// RFC 8259 documents that must be accepted. Escaped lone surrogates (`\ud800`) are accepted: the RFC's
    /// grammar allows them (§8.2) and Go's encoding/json, which Dapr uses, accepts them too.
    @Test(arguments: [
        "{}", "[]", "\"a\"", "0", "-0", "1.5e+10", "-1E-2", "0.0", "123456789012345678901234567890", "true", "false",
        "null", " \t\r\n{\"a\" : [1, {\"b\":null}, \"c\"]}\n ", "\"\\u00e9\\u003c\\n\\t\\\\\\/\\\"\"",
        "\"\\ud83d\\ude00\"", "\"\\ud800\"", "\"\\udc00x\"", "\"é😀\u{7F}\"", "{\"a\":1,\"a\":2}", "[[[[]]]]",
        "{\"\":\"\"}", "[1,-2.5,3e0,true,false,null,\"x\",{},[]]",
    ])
    func valid(_ text: String) {
        #expect(jsonFailure(Array(text.utf8)) == nil, "\(text)")
    }

    @Test(arguments: [
        "", " ", "{", "}", "[", "{\"a\"}", "{\"a\":}", "{,}", "[1,]", "{\"a\":1,}", "[,1]", "01", "-01", "1.", ".5",
        "+1", "1e", "1e+", "-", "--1", "tru", "nul", "True", "NULL", "\"a", "\"\\x\"", "\"\\u12g4\"", "\"\\u12\"",
        "\"\t\"", "\"a\nb\"", "{} {}", "[1] x", "NaN", "Infinity", "'a'", "{\"a\" 1}", "[1 2]", "{a:1}",
        "{\"a\":1 \"b\":2}", "[\"a\":1]", "{\"a\",1}", "1 2", "\"\\\"", "[}", "{]",
    ])
    func invalid(_ text: String) {
        #expect(jsonFailure(Array(text.utf8)) != nil, "\(text)")
    }

    /// Invalid UTF-8 inside strings: overlongs, surrogates, above U+10FFFF, stray and truncated sequences.
    @Test(
        arguments: [
            [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xC1, 0xBF, 0x22], [0x22, 0xE0, 0x80, 0xAF, 0x22],
            [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xED, 0xBF, 0xBF, 0x22], [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22],
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], [0x22, 0xFF, 0x22],
            [0x22, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22], [0x22, 0xC3], [0x22, 0x00, 0x22], [0x22, 0x1F, 0x22],
            [0xEF, 0xBB, 0xBF, 0x7B, 0x7D],
        ] as [[UInt8]]
    )
    func invalidBytes(_ bytes: [UInt8]) {
        #expect(jsonFailure(bytes) != nil, "\(bytes)")
    }

    @Test func validMultiByteUTF8() {
        // U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF.
        let bytes: [UInt8] = [
            0x22, 0xC2, 0x80, 0xDF, 0xBF, 0xE0, 0xA0, 0x80, 0xED, 0x9F, 0xBF, 0xEE, 0x80, 0x80, 0xEF, 0xBF, 0xBF,
            0xF0, 0x90, 0x80, 0x80, 0xF4, 0x8F, 0xBF, 0xBF, 0x22,
        ]
        #expect(jsonFailure(bytes) == nil)
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = [UInt8](repeating: 0x5B, count: 100_000)
        let failure = jsonFailure(deep)
        #expect(failure?.code == .tooDeep(512))
        #expect(failure?.message == "nesting deeper than 512 levels at byte 512")

        let closed = [UInt8](repeating: 0x5B, count: 100_000) + [UInt8](repeating: 0x5D, count: 100_000)
        #expect(jsonFailure(closed, maxDepth: 200_000) == nil)
        #expect(jsonFailure(closed, maxDepth: 99_999) != nil)
    }

    @Test func depthLimitIsExact() {
        let ok = [UInt8](repeating: 0x5B, count: 512) + [UInt8](repeating: 0x5D, count: 512)
        #expect(jsonFailure(ok) == nil)
        let tooDeep = [UInt8](repeating: 0x5B, count: 513) + [UInt8](repeating: 0x5D, count: 513)
        #expect(jsonFailure(tooDeep) != nil)
        let object = Array(
            ("{\"a\":" + String(repeating: "[", count: 511) + String(repeating: "]", count: 511) + "}").utf8
        )
        #expect(jsonFailure(object) == nil)
    }

    @Test func messagesNameTheByte() {
        #expect(jsonFailure(Array("{\"a\":1".utf8))?.message == "unexpected end of input at byte 6")
        #expect(jsonFailure(Array("[1,x]".utf8))?.message == "unexpected character 'x' at byte 3")
        #expect(jsonFailure(Array("01".utf8))?.message == "trailing characters after the JSON value at byte 1")
        #expect(jsonFailure(Array("\"\\q\"".utf8))?.message == "invalid escape sequence in string at byte 1")
        #expect(jsonFailure([0x22, 0xFF, 0x22])?.message == "invalid UTF-8 at byte 1")
    }

    /// Skimming (oversize mode) still finds structural truncation.
    @Test func skimmingFindsTruncation() {
        #expect(jsonFailure(Array("{\"data\":{\"a\":[1,2".utf8), validate: false) != nil)
        #expect(jsonFailure(Array("{\"data\":{\"a\":\"x\\\"}\"},\"id\":\"1\"}".utf8), validate: false) == nil)
    }

    @Test func unescapeMaterializesStrings() {
        let text = Array("a\\u003cb\\u0026\\n\\ud83d\\ude00\\ud800z\\/".utf8)
        let s = text.withUnsafeBufferPointer { JSONString.string($0.baseAddress!, 0, $0.count, escaped: true) }
        #expect(s == "a<b&\n😀\u{FFFD}z/")
    }
}
