/// The kind of a JSON value (RFC 8259).
public enum JSONValueKind: Sendable, Hashable {
    /// `{...}`
    case object
    /// `[...]`
    case array
    /// `"..."`
    case string
    /// A number literal; its text is kept as is.
    case number
    /// `true` or `false`.
    case bool
    /// `null`.
    case null
}

/// Why a byte sequence is not one valid JSON document.
struct JSONFailure: Error, Sendable, Hashable {
    enum Code: Sendable, Hashable {
        case unexpectedEnd
        case unexpectedCharacter(UInt8)
        case invalidUTF8
        case controlCharacter
        case invalidEscape
        case invalidNumber
        case tooDeep(Int)
        case trailingCharacters
        case expectedColon
        case expectedCommaOrClose(object: Bool)
        case expectedKey
    }

    var code: Code
    /// Byte offset in the scanned buffer.
    var offset: Int

    init(_ code: Code, _ offset: Int) {
        self.code = code
        self.offset = offset
    }

    /// A human message, e.g. `unexpected end of input at byte 91`.
    var message: String {
        let what: String
        switch code {
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedCharacter(let c):
            what =
                c >= 0x20 && c < 0x7F
                ? "unexpected character '\(Character(Unicode.Scalar(c)))'" : "unexpected byte 0x\(hex2(c))"
        case .invalidUTF8: what = "invalid UTF-8"
        case .controlCharacter: what = "unescaped control character in string"
        case .invalidEscape: what = "invalid escape sequence in string"
        case .invalidNumber: what = "invalid number"
        case .tooDeep(let limit): what = "nesting deeper than \(limit) levels"
        case .trailingCharacters: what = "trailing characters after the JSON value"
        case .expectedColon: what = "expected ':' after object key"
        case .expectedCommaOrClose(let object): what = object ? "expected ',' or '}'" : "expected ',' or ']'"
        case .expectedKey: what = "expected a string key"
        }
        return "\(what) at byte \(offset)"
    }
}

func hex2(_ b: UInt8) -> String {
    let digits: [Character] = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 0x0F)]])
}

enum ASCII {
    static let quote: UInt8 = 0x22
    static let backslash: UInt8 = 0x5C
    static let slash: UInt8 = 0x2F
    static let comma: UInt8 = 0x2C
    static let colon: UInt8 = 0x3A
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
    static let openBracket: UInt8 = 0x5B
    static let closeBracket: UInt8 = 0x5D
    static let minus: UInt8 = 0x2D
    static let plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
    @inline(__always) static func isWhitespace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09
    }
    @inline(__always) static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
}

/// A stack of container kinds (object or array) without recursion; inline for the first 64 levels.
private struct ContainerStack {
    private var inline: UInt64 = 0
    private var overflow: [UInt64] = []
    private(set) var count = 0

    mutating func push(isObject: Bool) {
        let word = count >> 6
        let bit = UInt64(1) << UInt64(count & 63)
        if word == 0 {
            inline = isObject ? inline | bit : inline & ~bit
        } else {
            while overflow.count < word { overflow.append(0) }
            overflow[word - 1] = isObject ? overflow[word - 1] | bit : overflow[word - 1] & ~bit
        }
        count += 1
    }

    mutating func pop() { count -= 1 }

    var topIsObject: Bool {
        let index = count - 1
        let word = index >> 6
        let bit = UInt64(1) << UInt64(index & 63)
        return (word == 0 ? inline : overflow[word - 1]) & bit != 0
    }
}

/// A one-pass JSON scanner over raw bytes.
///
/// In validating mode it checks the full RFC 8259 grammar, including UTF-8 validity (no overlongs, no
/// surrogates, no code points above U+10FFFF), escapes and the number grammar. Escaped lone surrogates
/// (`"\ud800"`) are accepted: RFC 8259 §8.2 allows them grammatically and Go's `encoding/json`, which Dapr
/// uses, accepts them too; they become U+FFFD when a string is materialized.
///
/// In skimming mode (used above `maxParseBytes`) nested containers and strings are only skipped
/// structurally: brackets are counted and strings are skipped to their closing quote.
struct JSONCursor {
    let base: UnsafePointer<UInt8>
    let end: Int
    var pos: Int
    let validate: Bool
    let maxDepth: Int
    /// Whether the last string scanned contained a backslash escape.
    var lastStringEscaped = false

    init(base: UnsafePointer<UInt8>, start: Int, end: Int, validate: Bool, maxDepth: Int) {
        self.base = base
        self.pos = start
        self.end = end
        self.validate = validate
        self.maxDepth = maxDepth
    }

    @inline(__always) mutating func skipWhitespace() {
        while pos < end && ASCII.isWhitespace(base[pos]) { pos += 1 }
    }

    /// Requires `pos < end`, else throws "unexpected end".
    @inline(__always) func current() throws(JSONFailure) -> UInt8 {
        guard pos < end else { throw JSONFailure(.unexpectedEnd, end) }
        return base[pos]
    }

    // MARK: - Strings

    /// Scans a string starting at the opening quote at `pos`; leaves `pos` after the closing quote.
    ///
    /// Inlined fast path for the common case (a short run of plain ASCII closed within the buffer's last 8 bytes);
    /// everything else goes to ``scanStringSlowly()``.
    @inline(__always) mutating func scanString() throws(JSONFailure) {
        if validate {
            var p = pos + 1
            while p + 8 <= end {
                let special = Self.specialBytes(UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self))
                if special == 0 {
                    p += 8
                    continue
                }
                p += special.trailingZeroBitCount &>> 3
                if base[p] == ASCII.quote {
                    pos = p + 1
                    lastStringEscaped = false
                    return
                }
                break
            }
        }
        try scanStringSlowly()
    }

    /// ``scanString()`` in full: escapes, UTF-8 validation, the end of the buffer, skimming mode.
    @inline(never) mutating func scanStringSlowly() throws(JSONFailure) {
        pos += 1
        var escaped = false
        if !validate {
            while true {
                guard pos < end else { throw JSONFailure(.unexpectedEnd, end) }
                let c = base[pos]
                if c == ASCII.quote {
                    pos += 1
                    lastStringEscaped = escaped
                    return
                }
                if c == ASCII.backslash {
                    escaped = true
                    pos += 2
                } else {
                    pos += 1
                }
            }
        }
        while true {
            // Fast path, 8 bytes at a time: skip printable ASCII without quote or backslash, and land exactly on the
            // first byte that is not (the lowest flagged byte of a word is exact, see `specialBytes`).
            while pos + 8 <= end {
                let special = Self.specialBytes(UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self))
                if special == 0 {
                    pos += 8
                } else {
                    pos += special.trailingZeroBitCount &>> 3
                    break
                }
            }
            // Near the end of the buffer, byte by byte.
            while pos < end {
                let c = base[pos]
                if c >= 0x20 && c < 0x80 && c != ASCII.quote && c != ASCII.backslash {
                    pos += 1
                } else {
                    break
                }
            }
            guard pos < end else { throw JSONFailure(.unexpectedEnd, end) }
            let c = base[pos]
            if c == ASCII.quote {
                pos += 1
                lastStringEscaped = escaped
                return
            }
            if c == ASCII.backslash {
                escaped = true
                guard pos + 1 < end else { throw JSONFailure(.unexpectedEnd, end) }
                switch base[pos + 1] {
                case ASCII.quote, ASCII.backslash, ASCII.slash, 0x62, 0x66, 0x6E, 0x72, 0x74:
                    pos += 2
                case 0x75:
                    for i in 2..<6 {
                        guard pos + i < end else { throw JSONFailure(.unexpectedEnd, end) }
                        guard ASCII.hexValue(base[pos + i]) != nil else { throw JSONFailure(.invalidEscape, pos) }
                    }
                    pos += 6
                default:
                    throw JSONFailure(.invalidEscape, pos)
                }
                continue
            }
            if c < 0x20 { throw JSONFailure(.controlCharacter, pos) }
            try scanUTF8Sequence()
        }
    }

    /// The high bit of each byte of `word` (in memory order, read little-endian) that is a quote, a backslash, below
    /// 0x20 or above 0x7F (SWAR). Bytes above the first flagged one may be flagged wrongly (a borrow carries into
    /// them); the lowest flagged byte is always exact, and none is flagged if there is none. On little-endian
    /// platforms (all that Swift on Linux and macOS runs on) the lowest byte is the first in memory.
    ///
    /// With bit 1 flipped a quote is 0x20, a byte below 0x20 stays below 0x20 and every other byte from 0x20 to 0x7F
    /// is at least 0x21 (0x20 becomes 0x22), so quotes and control bytes are the bytes that borrow when 0x21 is
    /// subtracted; a backslash is the byte that borrows when 1 is subtracted after XOR with 0x5C. A byte above 0x7F
    /// has its own high bit set. (Below the first flagged byte no byte borrows, so that byte is exact.)
    @inline(__always) static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quoteOrControl = (word ^ (ones &* 0x02)) &- (ones &* 0x21)
        let backslash = (word ^ (ones &* 0x5C)) &- ones
        return (quoteOrControl | backslash | word) & (ones &* 0x80)
    }

    /// Validates one multi-byte UTF-8 sequence at `pos` (Unicode Table 3-7).
    private mutating func scanUTF8Sequence() throws(JSONFailure) {
        let start = pos
        let c = base[pos]
        var length: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            hi = 0x9F
        case 0xF0:
            length = 4
            lo = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            hi = 0x8F
        default: throw JSONFailure(.invalidUTF8, start)
        }
        for i in 1..<length {
            guard start + i < end else { throw JSONFailure(.unexpectedEnd, end) }
            let b = base[start + i]
            if i == 1 {
                guard b >= lo && b <= hi else { throw JSONFailure(.invalidUTF8, start) }
            } else {
                guard b >= 0x80 && b <= 0xBF else { throw JSONFailure(.invalidUTF8, start) }
            }
        }
        pos = start + length
    }

    // MARK: - Scalars

    mutating func scanNumber() throws(JSONFailure) {
        if base[pos] == ASCII.minus { pos += 1 }
        var c = try current()
        if c == ASCII.zero {
            pos += 1
        } else if c >= 0x31 && c <= 0x39 {
            pos += 1
            while pos < end && ASCII.isDigit(base[pos]) { pos += 1 }
        } else {
            throw JSONFailure(.invalidNumber, pos)
        }
        if pos < end && base[pos] == ASCII.dot {
            pos += 1
            c = try current()
            guard ASCII.isDigit(c) else { throw JSONFailure(.invalidNumber, pos) }
            while pos < end && ASCII.isDigit(base[pos]) { pos += 1 }
        }
        if pos < end && (base[pos] == 0x65 || base[pos] == 0x45) {
            pos += 1
            c = try current()
            if c == ASCII.plus || c == ASCII.minus {
                pos += 1
                c = try current()
            }
            guard ASCII.isDigit(c) else { throw JSONFailure(.invalidNumber, pos) }
            while pos < end && ASCII.isDigit(base[pos]) { pos += 1 }
        }
    }

    private mutating func scanLiteral(_ text: StaticString) throws(JSONFailure) {
        let p = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount {
            guard pos < end else { throw JSONFailure(.unexpectedEnd, end) }
            guard base[pos] == p[i] else { throw JSONFailure(.unexpectedCharacter(base[pos]), pos) }
            pos += 1
        }
    }

    /// Scans a string, number or literal at `pos`.
    private mutating func scanScalar(_ c: UInt8) throws(JSONFailure) -> JSONValueKind {
        switch c {
        case ASCII.quote:
            try scanString()
            return .string
        case ASCII.minus, ASCII.zero...ASCII.nine:
            try scanNumber()
            return .number
        case 0x74:
            try scanLiteral("true")
            return .bool
        case 0x66:
            try scanLiteral("false")
            return .bool
        case 0x6E:
            try scanLiteral("null")
            return .null
        default:
            throw JSONFailure(.unexpectedCharacter(c), pos)
        }
    }

    // MARK: - Values

    /// Scans one JSON value at `pos` (no leading whitespace); `depth` is the nesting depth of its container.
    mutating func scanValue(depth: Int) throws(JSONFailure) -> JSONValueKind {
        let c = try current()
        switch c {
        case ASCII.openBrace, ASCII.openBracket:
            if validate {
                try scanContainer(depth: depth)
            } else {
                try skimContainer()
            }
            return c == ASCII.openBrace ? .object : .array
        default:
            return try scanScalar(c)
        }
    }

    /// Validates a container iteratively with an explicit stack.
    private mutating func scanContainer(depth outerDepth: Int) throws(JSONFailure) {
        var stack = ContainerStack()
        guard outerDepth + 1 <= maxDepth else { throw JSONFailure(.tooDeep(maxDepth), pos) }
        stack.push(isObject: base[pos] == ASCII.openBrace)
        pos += 1
        var afterOpen = true
        while true {
            skipWhitespace()
            var c = try current()
            let isObject = stack.topIsObject
            let close = isObject ? ASCII.closeBrace : ASCII.closeBracket
            if afterOpen {
                afterOpen = false
                if c == close {
                    pos += 1
                    stack.pop()
                    if stack.count == 0 { return }
                    continue
                }
            } else if c == ASCII.comma {
                pos += 1
                skipWhitespace()
                c = try current()
            } else if c == close {
                pos += 1
                stack.pop()
                if stack.count == 0 { return }
                continue
            } else {
                throw JSONFailure(.expectedCommaOrClose(object: isObject), pos)
            }
            if isObject {
                guard c == ASCII.quote else { throw JSONFailure(.expectedKey, pos) }
                try scanString()
                skipWhitespace()
                guard try current() == ASCII.colon else { throw JSONFailure(.expectedColon, pos) }
                pos += 1
                skipWhitespace()
                c = try current()
            }
            if c == ASCII.openBrace || c == ASCII.openBracket {
                guard outerDepth + stack.count + 1 <= maxDepth else { throw JSONFailure(.tooDeep(maxDepth), pos) }
                stack.push(isObject: c == ASCII.openBrace)
                pos += 1
                afterOpen = true
                continue
            }
            _ = try scanScalar(c)
        }
    }

    /// Skips a container structurally (oversize mode): counts brackets, skips strings.
    private mutating func skimContainer() throws(JSONFailure) {
        var depth = 0
        while pos < end {
            let c = base[pos]
            switch c {
            case ASCII.quote:
                try scanString()
                continue
            case ASCII.openBrace, ASCII.openBracket:
                depth += 1
            case ASCII.closeBrace, ASCII.closeBracket:
                depth -= 1
                if depth == 0 {
                    pos += 1
                    return
                }
            default:
                break
            }
            pos += 1
        }
        throw JSONFailure(.unexpectedEnd, end)
    }
}

// MARK: - Whole documents

/// One top-level member of an object document, by byte offsets into the scanned buffer.
struct MemberSpan: Sendable, Hashable {
    /// Offset of the first byte of the value.
    var valueStart: Int
    /// Offset one past the last byte of the value.
    var valueEnd: Int
    var kind: JSONValueKind
    /// For strings: whether the raw text contains a backslash escape.
    var escaped: Bool

    /// The string content range (inside the quotes); only meaningful when `kind == .string`.
    var contentStart: Int { valueStart + 1 }
    var contentEnd: Int { valueEnd - 1 }
}

/// Receives the top-level members of an object document while it is scanned.
protocol TopLevelMemberSink {
    mutating func member(keyStart: Int, keyEnd: Int, keyEscaped: Bool, value: MemberSpan, base: UnsafePointer<UInt8>)
    /// The member whose raw name (unescaped) is the name of `attribute` (the scan found it by
    /// ``Attribute/compactKey(_:)``): the same as ``member(keyStart:keyEnd:keyEscaped:value:base:)`` for it.
    mutating func member(
        _ attribute: Attribute,
        keyStart: Int,
        keyEnd: Int,
        value: MemberSpan,
        base: UnsafePointer<UInt8>
    )
}

enum JSONDocument {
    /// Scans `base[start..<end]` as one JSON document and reports top-level object members to `sink`.
    ///
    /// - Returns: The kind of the top-level value.
    /// - Throws: A ``JSONFailure`` at the first error.
    static func scan(
        base: UnsafePointer<UInt8>,
        start: Int,
        end: Int,
        validate: Bool,
        maxDepth: Int,
        sink: inout some TopLevelMemberSink
    ) throws(JSONFailure) -> JSONValueKind {
        var cursor = JSONCursor(base: base, start: start, end: end, validate: validate, maxDepth: maxDepth)
        cursor.skipWhitespace()
        let first = try cursor.current()
        let kind: JSONValueKind
        if first == ASCII.openBrace {
            guard maxDepth >= 1 else { throw JSONFailure(.tooDeep(maxDepth), cursor.pos) }
            try scanTopLevelObject(&cursor, sink: &sink)
            kind = .object
        } else {
            kind = try cursor.scanValue(depth: 0)
        }
        cursor.skipWhitespace()
        if cursor.pos != end { throw JSONFailure(.trailingCharacters, cursor.pos) }
        return kind
    }

    private static func scanTopLevelObject(
        _ cursor: inout JSONCursor,
        sink: inout some TopLevelMemberSink
    ) throws(JSONFailure) {
        cursor.pos += 1
        cursor.skipWhitespace()
        if try cursor.current() == ASCII.closeBrace {
            cursor.pos += 1
            return
        }
        while true {
            cursor.skipWhitespace()
            guard try cursor.current() == ASCII.quote else { throw JSONFailure(.expectedKey, cursor.pos) }
            let keyStart = cursor.pos + 1
            try cursor.scanString()
            let keyEnd = cursor.pos - 1
            let keyEscaped = cursor.lastStringEscaped
            cursor.skipWhitespace()
            guard try cursor.current() == ASCII.colon else { throw JSONFailure(.expectedColon, cursor.pos) }
            cursor.pos += 1
            cursor.skipWhitespace()
            let valueStart = cursor.pos
            cursor.lastStringEscaped = false
            let kind = try cursor.scanValue(depth: 1)
            let span = MemberSpan(
                valueStart: valueStart,
                valueEnd: cursor.pos,
                kind: kind,
                escaped: kind == .string && cursor.lastStringEscaped
            )
            sink.member(keyStart: keyStart, keyEnd: keyEnd, keyEscaped: keyEscaped, value: span, base: cursor.base)
            cursor.skipWhitespace()
            let c = try cursor.current()
            if c == ASCII.comma {
                cursor.pos += 1
                continue
            }
            if c == ASCII.closeBrace {
                cursor.pos += 1
                return
            }
            throw JSONFailure(.expectedCommaOrClose(object: true), cursor.pos)
        }
    }
}

/// A sink that ignores members; used for plain validation.
struct IgnoringMemberSink: TopLevelMemberSink {
    mutating func member(keyStart: Int, keyEnd: Int, keyEscaped: Bool, value: MemberSpan, base: UnsafePointer<UInt8>) {}
    mutating func member(
        _ attribute: Attribute,
        keyStart: Int,
        keyEnd: Int,
        value: MemberSpan,
        base: UnsafePointer<UInt8>
    ) {}
}

// MARK: - String materialization

enum JSONString {
    /// Appends the UTF-8 encoding of `scalar` to `out`.
    @inline(__always) static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (scalar >> 6)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (scalar >> 12)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (scalar >> 18)))
            out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }

    private static func hex4(_ base: UnsafePointer<UInt8>, _ at: Int, _ end: Int) -> UInt32? {
        guard at + 4 <= end else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 {
            guard let h = ASCII.hexValue(base[at + i]) else { return nil }
            v = v << 4 | UInt32(h)
        }
        return v
    }

    /// Unescapes the string content `base[start..<end]` (without quotes) into UTF-8 bytes.
    ///
    /// Lenient: malformed escapes are copied verbatim and lone surrogates become U+FFFD.
    static func unescapedBytes(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var i = start
        while i < end {
            let c = base[i]
            if c != ASCII.backslash || i + 1 >= end {
                out.append(c)
                i += 1
                continue
            }
            let e = base[i + 1]
            switch e {
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                guard let u = hex4(base, i + 2, end) else {
                    out.append(c)
                    i += 1
                    continue
                }
                i += 6
                if u >= 0xD800 && u < 0xDC00, i + 1 < end, base[i] == ASCII.backslash, base[i + 1] == 0x75,
                    let low = hex4(base, i + 2, end), low >= 0xDC00 && low < 0xE000
                {
                    appendUTF8(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00), to: &out)
                    i += 6
                } else if u >= 0xD800 && u < 0xE000 {
                    appendUTF8(0xFFFD, to: &out)
                } else {
                    appendUTF8(u, to: &out)
                }
                continue
            default: out.append(e)
            }
            i += 2
        }
        return out
    }

    /// Materializes the string content `base[start..<end]` (without quotes); invalid UTF-8 is replaced.
    static func string(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int, escaped: Bool) -> String {
        if !escaped {
            return String(decoding: UnsafeBufferPointer(start: base + start, count: end - start), as: UTF8.self)
        }
        return String(decoding: unescapedBytes(base, start, end), as: UTF8.self)
    }
}

// MARK: - Fast validation

/// The validating scan of ``JSONDocument/scanFast(base:start:end:maxDepth:sink:)``: the same grammar as
/// ``JSONCursor`` in validating mode, without error details, on a position held in a local (so that it stays in a
/// register) with wrapping arithmetic. Anything unusual (escapes, non-ASCII, fractions and exponents, nesting deeper
/// than 64 levels) goes to ``JSONCursor``. A `false`, `nil` or -1 result says that the value is not valid, not why: the
/// caller runs the full scan for the error.
enum FastScan {
    /// The byte at `i` after skipping whitespace, or 0 at the end of the buffer (0 never starts a token, so the scan
    /// rejects it like any other unexpected byte).
    @inline(__always) static func byte(_ base: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int) -> UInt8 {
        guard i < end else { return 0 }
        let c = base[i]
        if c > 0x20 { return c }
        i = skipWhitespace(base, i, end)
        return i < end ? base[i] : 0
    }

    /// Whether the bytes at `i` are `,"` (the separator before the next member of compact JSON).
    @inline(__always) static func commaQuote(_ base: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Bool {
        end &- i >= 2 && UInt16(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt16.self)) == 0x222C
    }

    /// The byte after a colon at `i` (compact JSON: `:` then the value's first byte), if it is neither whitespace
    /// nor past the end.
    @inline(__always) static func colonThenValue(_ base: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> UInt8? {
        guard end &- i >= 2 else { return nil }
        let pair = UInt16(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt16.self))
        let next = UInt8(truncatingIfNeeded: pair &>> 8)
        return UInt8(truncatingIfNeeded: pair) == ASCII.colon && next > 0x20 ? next : nil
    }

    /// The position of the first byte at or after `i` that is not whitespace, or `end`.
    @inline(never) static func skipWhitespace(_ base: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var i = i
        while i < end && ASCII.isWhitespace(base[i]) { i &+= 1 }
        return i
    }

    /// Scans the string whose opening quote is at `i`; leaves `i` after the closing quote.
    ///
    /// Eight bytes at a time while they are printable ASCII without quote or backslash (``JSONCursor/specialBytes(_:)``
    /// lands exactly on the first byte that is not); within the last 8 bytes of the buffer, the buffer's last word
    /// shifted so that its first byte is the next one (the zero bytes shifted in count as special, so a quote found
    /// among them is not taken). Anything else goes to ``JSONCursor/scanStringSlowly()``.
    /// - Returns: Whether the string is valid; `escaped` is set to whether it contained a backslash escape.
    @inline(__always) static func string(
        _ base: UnsafePointer<UInt8>,
        _ i: inout Int,
        _ end: Int,
        _ escaped: inout Bool
    ) -> Bool {
        var p = i &+ 1
        let lastWord = end &- 8
        while p <= lastWord {
            let special = JSONCursor.specialBytes(UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self))
            if special != 0 {
                p &+= special.trailingZeroBitCount &>> 3
                if base[p] == ASCII.quote {
                    i = p &+ 1
                    escaped = false
                    return true
                }
                break
            }
            p &+= 8
        }
        // Fewer than 8 bytes left: the buffer's last word, read from `end - 8`, which is inside the buffer when
        // `p >= 8`.
        let remaining = end &- p
        if remaining > 0 && remaining < 8 && p >= 8 {
            let word = UnsafeRawPointer(base + lastWord).loadUnaligned(as: UInt64.self)
            let special = JSONCursor.specialBytes(word &>> (UInt64(8 &- remaining) &<< 3))
            let k = special.trailingZeroBitCount &>> 3
            if k < remaining && base[p &+ k] == ASCII.quote {
                i = p &+ k &+ 1
                escaped = false
                return true
            }
        }
        let (next, hadEscape) = stringSlowly(base, i, end)
        guard next >= 0 else { return false }
        i = next
        escaped = hadEscape
        return true
    }

    /// ``string(_:_:_:_:)`` in full (escapes, UTF-8, short buffers) for the string whose opening quote is at `i`.
    /// - Returns: The position after the closing quote (-1 if the string is not valid) and whether it had an escape.
    @inline(never) static func stringSlowly(_ base: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (Int, Bool) {
        var cursor = JSONCursor(base: base, start: i, end: end, validate: true, maxDepth: 0)
        do {
            try cursor.scanStringSlowly()
        } catch {
            return (-1, false)
        }
        return (cursor.pos, cursor.lastStringEscaped)
    }

    /// Scans the number at `i` (whose first byte is `-` or a digit). Integers inline; a fraction or an exponent goes
    /// to ``JSONCursor/scanNumber()``.
    @inline(__always) static func number(_ base: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int) -> Bool {
        var p = i
        if base[p] == ASCII.minus { p &+= 1 }
        guard p < end else { return false }
        let first = base[p]
        p &+= 1
        if first &- 0x31 < 9 {
            while p < end && ASCII.isDigit(base[p]) { p &+= 1 }
        } else if first != ASCII.zero {
            return false
        }
        if p < end {
            let c = base[p]
            if c == ASCII.dot || c | 0x20 == 0x65 {
                p = numberSlowly(base, i, end)
                guard p >= 0 else { return false }
            }
        }
        i = p
        return true
    }

    /// ``number(_:_:_:)`` for a number with a fraction or an exponent at `i`.
    /// - Returns: The position after it, or -1 if it is not valid.
    @inline(never) static func numberSlowly(_ base: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var cursor = JSONCursor(base: base, start: i, end: end, validate: true, maxDepth: 0)
        do {
            try cursor.scanNumber()
        } catch {
            return -1
        }
        return cursor.pos
    }

    /// Scans `true`, `false` or `null` at `i`, whose first byte is `c`.
    @inline(__always) static func literal(
        _ base: UnsafePointer<UInt8>,
        _ i: inout Int,
        _ end: Int,
        _ c: UInt8
    ) -> JSONValueKind? {
        let text: StaticString
        let kind: JSONValueKind
        switch c {
        case 0x74:
            text = "true"
            kind = .bool
        case 0x66:
            text = "false"
            kind = .bool
        case 0x6E:
            text = "null"
            kind = .null
        default:
            return nil
        }
        let count = text.utf8CodeUnitCount
        guard end &- i >= count, memoryEquals(text.utf8Start, base + i, count) else { return nil }
        i &+= count
        return kind
    }

    /// Scans a value that is not a string at `i`, whose first byte is `c`, in a container at nesting depth 1.
    @inline(__always) static func nonString(
        _ base: UnsafePointer<UInt8>,
        _ i: inout Int,
        _ end: Int,
        _ c: UInt8,
        maxDepth: Int
    ) -> JSONValueKind? {
        switch c {
        case ASCII.openBrace, ASCII.openBracket:
            let next = container(base, i, end, maxDepth: maxDepth)
            guard next >= 0 else { return nil }
            i = next
            return c == ASCII.openBrace ? .object : .array
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return number(base, &i, end) ? .number : nil
        default:
            return literal(base, &i, end, c)
        }
    }

    /// Validates the container opened at `i`, the value of a member of the top-level object (nesting depth 2 and
    /// below), iteratively with a one-word stack; a container nested more than 64 levels below the top-level object
    /// goes to ``JSONCursor`` (from its start).
    /// - Returns: The position after the container, or -1 if it is not valid.
    @inline(never) static func container(_ base: UnsafePointer<UInt8>, _ i: Int, _ end: Int, maxDepth: Int) -> Int {
        let start = i
        var i = i
        // Levels below the top-level object; bit `level - 1` of `objects` is set when that level is an object.
        let limit = maxDepth &- 1
        guard limit >= 1 else { return -1 }
        var level = 1
        var objects: UInt64 = 0
        var isObject = base[i] == ASCII.openBrace
        if isObject { objects = 1 }
        var escaped = false
        i &+= 1
        var c = byte(base, &i, end)
        if c == (isObject ? ASCII.closeBrace : ASCII.closeBracket) {
            i &+= 1
            return i
        }
        element: while true {
            // At the first byte of a member (object) or an element (array).
            if isObject {
                guard c == ASCII.quote, string(base, &i, end, &escaped) else { return -1 }
                if let first = colonThenValue(base, i, end) {
                    i &+= 1
                    c = first
                } else {
                    guard byte(base, &i, end) == ASCII.colon else { return -1 }
                    i &+= 1
                    c = byte(base, &i, end)
                }
            }
            switch c {
            case ASCII.quote:
                guard string(base, &i, end, &escaped) else { return -1 }
            case ASCII.openBrace, ASCII.openBracket:
                guard level < limit else { return -1 }
                if level == 64 { return deepContainer(base, start, end, maxDepth: maxDepth) }
                let bit = UInt64(1) &<< UInt64(level)
                level &+= 1
                isObject = c == ASCII.openBrace
                objects = isObject ? objects | bit : objects & ~bit
                i &+= 1
                c = byte(base, &i, end)
                if c != (isObject ? ASCII.closeBrace : ASCII.closeBracket) { continue element }
                i &+= 1
                level &-= 1
                isObject = objects & (UInt64(1) &<< UInt64(level &- 1)) != 0
            case ASCII.minus, ASCII.zero...ASCII.nine:
                guard number(base, &i, end) else { return -1 }
            default:
                guard literal(base, &i, end, c) != nil else { return -1 }
            }
            // After a value.
            while true {
                if commaQuote(base, i, end) {
                    i &+= 1
                    c = ASCII.quote
                    continue element
                }
                c = byte(base, &i, end)
                if c == ASCII.comma {
                    i &+= 1
                    c = byte(base, &i, end)
                    continue element
                }
                guard c == (isObject ? ASCII.closeBrace : ASCII.closeBracket) else { return -1 }
                i &+= 1
                level &-= 1
                if level == 0 { return i }
                isObject = objects & (UInt64(1) &<< UInt64(level &- 1)) != 0
            }
        }
    }
}

extension FastScan {
    /// ``container(_:_:_:maxDepth:)`` for a container nested deeper than its stack holds, by ``JSONCursor``.
    @inline(never) static func deepContainer(_ base: UnsafePointer<UInt8>, _ i: Int, _ end: Int, maxDepth: Int) -> Int {
        var cursor = JSONCursor(base: base, start: i, end: end, validate: true, maxDepth: maxDepth)
        do {
            _ = try cursor.scanValue(depth: 1)
        } catch {
            return -1
        }
        return cursor.pos
    }
}

extension JSONDocument {
    /// ``scan(base:start:end:validate:maxDepth:sink:)`` in validating mode for the common case, an object document,
    /// with no error details.
    ///
    /// - Returns: The kind of the top-level value (`.object`) if the document is valid; `nil` if it is not valid or
    ///   not an object. Then `sink` may have received members, and the caller runs the full scan on a fresh sink
    ///   for the verdict (and the error): on valid documents both scans report the same members.
    /// - Precondition: `base[0..<end]` is readable (the string scan may read the 8 bytes before `end`, which can lie
    ///   before `start`).
    static func scanFast(
        base: UnsafePointer<UInt8>,
        start: Int,
        end: Int,
        maxDepth: Int,
        sink: inout some TopLevelMemberSink
    ) -> JSONValueKind? {
        var i = start
        guard maxDepth >= 1, FastScan.byte(base, &i, end) == ASCII.openBrace else { return nil }
        i &+= 1
        var c = FastScan.byte(base, &i, end)
        if c == ASCII.closeBrace {
            i &+= 1
        } else {
            while true {
                guard c == ASCII.quote else { return nil }
                let keyStart = i &+ 1
                var keyEscaped = false
                var keyEnd = keyStart
                // An envelope member's name, quote and colon in one comparison when they are compact; else the name
                // as any string, then the colon.
                let known = end &- keyStart >= 17 ? Attribute.compactKey(base + keyStart) : nil
                if let (_, count) = known {
                    i = keyStart &+ count
                    keyEnd = i &- 2
                } else {
                    guard FastScan.string(base, &i, end, &keyEscaped) else { return nil }
                    keyEnd = i &- 1
                    guard FastScan.byte(base, &i, end) == ASCII.colon else { return nil }
                    i &+= 1
                }
                c = FastScan.byte(base, &i, end)
                let valueStart = i
                var escaped = false
                let kind: JSONValueKind
                if c == ASCII.quote {
                    guard FastScan.string(base, &i, end, &escaped) else { return nil }
                    kind = .string
                } else {
                    guard let other = FastScan.nonString(base, &i, end, c, maxDepth: maxDepth) else { return nil }
                    kind = other
                }
                let span = MemberSpan(valueStart: valueStart, valueEnd: i, kind: kind, escaped: escaped)
                if let (attribute, _) = known {
                    sink.member(attribute, keyStart: keyStart, keyEnd: keyEnd, value: span, base: base)
                } else {
                    sink.member(keyStart: keyStart, keyEnd: keyEnd, keyEscaped: keyEscaped, value: span, base: base)
                }
                if FastScan.commaQuote(base, i, end) {
                    i &+= 1
                    c = ASCII.quote
                    continue
                }
                c = FastScan.byte(base, &i, end)
                if c == ASCII.comma {
                    i &+= 1
                    c = FastScan.byte(base, &i, end)
                    continue
                }
                guard c == ASCII.closeBrace else { return nil }
                i &+= 1
                break
            }
        }
        _ = FastScan.byte(base, &i, end)
        return i == end ? .object : nil
    }
}
