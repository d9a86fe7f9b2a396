/// The top-level members the decoder reads (the Dapr envelope set, WIRE-FORMAT.md §3.1).
enum Attribute: Int, CaseIterable {
    case data
    case dataBase64
    case datacontenttype
    case expiration
    case id
    case pubsubname
    case source
    case specversion
    case subject
    case time
    case topic
    case traceid
    case traceparent
    case tracestate
    case type

    /// The member name.
    var name: StaticString {
        switch self {
        case .data: "data"
        case .dataBase64: "data_base64"
        case .datacontenttype: "datacontenttype"
        case .expiration: "expiration"
        case .id: "id"
        case .pubsubname: "pubsubname"
        case .source: "source"
        case .specversion: "specversion"
        case .subject: "subject"
        case .time: "time"
        case .topic: "topic"
        case .traceid: "traceid"
        case .traceparent: "traceparent"
        case .tracestate: "tracestate"
        case .type: "type"
        }
    }

    /// The envelope member whose raw name, closing quote and colon (`name":`, compact JSON as Dapr writes it) are the
    /// bytes at `key`, the first byte of a member name, and the count of those bytes: a switch on the first four
    /// bytes, then one or two words compared (the constants spell the bytes, read as little-endian words).
    /// - Returns: `nil` if the bytes are anything else (another name, an escape, whitespace before the colon).
    /// - Precondition: 17 bytes at `key` are readable.
    @inline(__always) static func compactKey(_ key: UnsafePointer<UInt8>) -> (Attribute, Int)? {
        let p = UnsafeRawPointer(key)
        @inline(__always) func word(_ offset: Int) -> UInt64 {
            UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
        let w = word(0)
        let six: UInt64 = 0xFFFF_FFFF_FFFF
        switch UInt32(truncatingIfNeeded: w) {
        case 0x3A22_6469:  // `id":`
            return (.id, 4)
        case 0x6174_6164:  // "data"
            if w & six == 0x3A22_6174_6164 { return (.data, 6) }  // `data":`
            // "data_bas" "base64":"
            if w == 0x7361_625F_6174_6164 && word(5) == 0x3A22_3436_6573_6162 { return (.dataBase64, 13) }
            // "datacont" `enttype"` `:`
            if w == 0x746E_6F63_6174_6164 && word(8) == 0x2265_7079_7474_6E65 && key[16] == ASCII.colon {
                return (.datacontenttype, 17)
            }
            return nil
        case 0x656D_6974:  // "time"
            return w & six == 0x3A22_656D_6974 ? (.time, 6) : nil
        case 0x6570_7974:  // "type"
            return w & six == 0x3A22_6570_7974 ? (.type, 6) : nil
        case 0x6970_6F74:  // "topi"
            return w & 0xFF_FFFF_FFFF_FFFF == 0x3A_2263_6970_6F74 ? (.topic, 7) : nil  // `topic":`
        case 0x7275_6F73:  // "sour"
            return w == 0x3A22_6563_7275_6F73 ? (.source, 8) : nil  // `source":`
        case 0x6A62_7573:  // "subj"
            // `subject"` `ubject":`
            return w == 0x2274_6365_6A62_7573 && word(1) == 0x3A22_7463_656A_6275 ? (.subject, 9) : nil
        case 0x6361_7274:  // "trac"
            // `traceid"` `raceid":`
            if w == 0x2264_6965_6361_7274 && word(1) == 0x3A22_6469_6563_6172 { return (.traceid, 9) }
            // "tracepar" `parent":`
            if w == 0x7261_7065_6361_7274 && word(5) == 0x3A22_746E_6572_6170 { return (.traceparent, 13) }
            // "tracesta" `estate":`
            if w == 0x6174_7365_6361_7274 && word(4) == 0x3A22_6574_6174_7365 { return (.tracestate, 12) }
            return nil
        case 0x7362_7570:  // "pubs"
            // "pubsubna" `ubname":`
            return w == 0x616E_6275_7362_7570 && word(4) == 0x3A22_656D_616E_6275 ? (.pubsubname, 12) : nil
        case 0x6970_7865:  // "expi"
            // "expirati" `ration":`
            return w == 0x6974_6172_6970_7865 && word(4) == 0x3A22_6E6F_6974_6172 ? (.expiration, 12) : nil
        case 0x6365_7073:  // "spec"
            // "specvers" `ersion":`
            return w == 0x7372_6576_6365_7073 && word(5) == 0x3A22_6E6F_6973_7265 ? (.specversion, 13) : nil
        default:
            return nil
        }
    }

    static func match(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Attribute? {
        // Pick the one candidate by length and a distinguishing byte, then compare.
        let candidate: Attribute
        switch end - start {
        case 2: candidate = .id
        case 4:
            switch p[start + 1] {
            case 0x61: candidate = .data
            case 0x69: candidate = .time
            case 0x79: candidate = .type
            default: return nil
            }
        case 5: candidate = .topic
        case 6: candidate = .source
        case 7: candidate = p[start] == 0x73 ? .subject : .traceid
        case 10:
            switch p[start] {
            case 0x65: candidate = .expiration
            case 0x70: candidate = .pubsubname
            default: candidate = .tracestate
            }
        case 11:
            switch p[start] {
            case 0x64: candidate = .dataBase64
            case 0x73: candidate = .specversion
            default: candidate = .traceparent
            }
        case 15: candidate = .datacontenttype
        default: return nil
        }
        let name = candidate.name
        return name.utf8CodeUnitCount == end - start && memoryEquals(name.utf8Start, p + start, end - start)
            ? candidate : nil
    }
}

/// Whether `count` bytes at `a` and `b` are equal; word-at-a-time, never reading outside either range.
@inline(__always) func memoryEquals(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    let ra = UnsafeRawPointer(a)
    let rb = UnsafeRawPointer(b)
    if count >= 8 {
        var i = 0
        while i + 8 <= count {
            if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            {
                return false
            }
            i += 8
        }
        // The last 8 bytes (overlapping what was compared).
        return i == count
            || ra.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
                == rb.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
    }
    if count >= 4 {
        return ra.loadUnaligned(as: UInt32.self) == rb.loadUnaligned(as: UInt32.self)
            && ra.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
                == rb.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
    }
    for k in 0..<count where a[k] != b[k] { return false }
    return true
}

/// Collects top-level members into fixed slots, without allocating for Dapr's own envelopes.
struct AttributeCollector: TopLevelMemberSink {
    /// The envelope members' slots, in the order of ``Attribute`` (a homogeneous tuple: contiguous, so that a slot
    /// chosen at run time is stored at its offset rather than through a switch).
    private var slots:
        (
            MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?,
            MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?, MemberSpan?
        ) = (nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
    /// Raw key ranges of members outside the envelope set (`nil` until there is one: then a collector holds no
    /// reference, and destroying it releases nothing).
    private var unknownKeys: [Range<Int>]?
    /// Distinct members outside the envelope set.
    private(set) var unknownCount = 0
    /// Whether a member name repeated (last wins). Unknown names are compared by their raw bytes.
    private(set) var duplicate = false

    subscript(_ attribute: Attribute) -> MemberSpan? {
        @inline(__always) get {
            switch attribute {
            case .data: slots.0
            case .dataBase64: slots.1
            case .datacontenttype: slots.2
            case .expiration: slots.3
            case .id: slots.4
            case .pubsubname: slots.5
            case .source: slots.6
            case .specversion: slots.7
            case .subject: slots.8
            case .time: slots.9
            case .topic: slots.10
            case .traceid: slots.11
            case .traceparent: slots.12
            case .tracestate: slots.13
            case .type: slots.14
            }
        }
        set {
            switch attribute {
            case .data: slots.0 = newValue
            case .dataBase64: slots.1 = newValue
            case .datacontenttype: slots.2 = newValue
            case .expiration: slots.3 = newValue
            case .id: slots.4 = newValue
            case .pubsubname: slots.5 = newValue
            case .source: slots.6 = newValue
            case .specversion: slots.7 = newValue
            case .subject: slots.8 = newValue
            case .time: slots.9 = newValue
            case .topic: slots.10 = newValue
            case .traceid: slots.11 = newValue
            case .traceparent: slots.12 = newValue
            case .tracestate: slots.13 = newValue
            case .type: slots.14 = newValue
            }
        }
    }

    /// Stores `value` in the slot of the envelope member whose raw name is the `count` bytes at `key`, in one
    /// switch on the length and the name's bytes read as little-endian words (the constants spell the names).
    /// - Returns: `false` if the name is not an envelope member's.
    @inline(__always) private mutating func store(_ value: MemberSpan, key: UnsafePointer<UInt8>, count: Int) -> Bool {
        let p = UnsafeRawPointer(key)
        @inline(__always) func word32(_ offset: Int) -> UInt32 {
            UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        }
        @inline(__always) func word64(_ offset: Int) -> UInt64 {
            UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
        let repeated: Bool
        switch count {
        case 2:
            guard key[0] == 0x69 && key[1] == 0x64 else { return false }  // "id"
            repeated = Self.replace(&slots.4, with: value)
        case 4:
            switch word32(0) {
            case 0x6174_6164: repeated = Self.replace(&slots.0, with: value)  // "data"
            case 0x656D_6974: repeated = Self.replace(&slots.9, with: value)  // "time"
            case 0x6570_7974: repeated = Self.replace(&slots.14, with: value)  // "type"
            default: return false
            }
        case 5:
            guard word32(0) == 0x6970_6F74 && key[4] == 0x63 else { return false }  // "topi" "c"
            repeated = Self.replace(&slots.10, with: value)
        case 6:
            guard word32(0) == 0x7275_6F73 && key[4] == 0x63 && key[5] == 0x65 else { return false }  // "sour" "ce"
            repeated = Self.replace(&slots.6, with: value)
        case 7:
            switch (word32(0), word32(3)) {
            case (0x6A62_7573, 0x7463_656A): repeated = Self.replace(&slots.8, with: value)  // "subj" "ject"
            case (0x6361_7274, 0x6469_6563): repeated = Self.replace(&slots.11, with: value)  // "trac" "ceid"
            default: return false
            }
        case 10:
            switch (word64(0), word64(2)) {
            // "expirati" "piration"
            case (0x6974_6172_6970_7865, 0x6E6F_6974_6172_6970): repeated = Self.replace(&slots.3, with: value)
            // "pubsubna" "bsubname"
            case (0x616E_6275_7362_7570, 0x656D_616E_6275_7362): repeated = Self.replace(&slots.5, with: value)
            // "tracesta" "acestate"
            case (0x6174_7365_6361_7274, 0x6574_6174_7365_6361): repeated = Self.replace(&slots.13, with: value)
            default: return false
            }
        case 11:
            switch (word64(0), word64(3)) {
            // "data_bas" "a_base64"
            case (0x7361_625F_6174_6164, 0x3436_6573_6162_5F61): repeated = Self.replace(&slots.1, with: value)
            // "specvers" "cversion"
            case (0x7372_6576_6365_7073, 0x6E6F_6973_7265_7663): repeated = Self.replace(&slots.7, with: value)
            // "tracepar" "ceparent"
            case (0x7261_7065_6361_7274, 0x746E_6572_6170_6563): repeated = Self.replace(&slots.12, with: value)
            default: return false
            }
        case 15:
            // "datacont" "ntenttype" (bytes 0-7 and 7-14)
            guard word64(0) == 0x746E_6F63_6174_6164 && word64(7) == 0x6570_7974_746E_6574 else { return false }
            repeated = Self.replace(&slots.2, with: value)
        default:
            return false
        }
        if repeated { duplicate = true }
        return true
    }

    /// Stores `value` in `slot` (last wins).
    /// - Returns: Whether the slot held a value (a repeated member).
    @inline(__always) private static func replace(_ slot: inout MemberSpan?, with value: MemberSpan) -> Bool {
        let repeated = slot != nil
        slot = value
        return repeated
    }

    @inline(__always) mutating func member(
        _ attribute: Attribute,
        keyStart: Int,
        keyEnd: Int,
        value: MemberSpan,
        base: UnsafePointer<UInt8>
    ) {
        let repeated = withUnsafeMutableBytes(of: &slots) { raw in
            let offset = attribute.rawValue &* MemoryLayout<MemberSpan?>.stride
            let repeated = raw.load(fromByteOffset: offset, as: MemberSpan?.self) != nil
            raw.storeBytes(of: value, toByteOffset: offset, as: MemberSpan?.self)
            return repeated
        }
        if repeated { duplicate = true }
    }

    @inline(__always) mutating func member(
        keyStart: Int,
        keyEnd: Int,
        keyEscaped: Bool,
        value: MemberSpan,
        base: UnsafePointer<UInt8>
    ) {
        if !keyEscaped && store(value, key: base + keyStart, count: keyEnd - keyStart) { return }
        otherMember(keyStart: keyStart, keyEnd: keyEnd, keyEscaped: keyEscaped, value: value, base: base)
    }

    /// ``member(keyStart:keyEnd:keyEscaped:value:base:)`` for an escaped name or one outside the envelope set.
    @inline(never) private mutating func otherMember(
        keyStart: Int,
        keyEnd: Int,
        keyEscaped: Bool,
        value: MemberSpan,
        base: UnsafePointer<UInt8>
    ) {
        let attribute: Attribute?
        if keyEscaped {
            let key = JSONString.unescapedBytes(base, keyStart, keyEnd)
            attribute = key.withUnsafeBufferPointer { buffer in
                guard let p = buffer.baseAddress else { return nil }
                return Attribute.match(p, 0, buffer.count)
            }
        } else {
            attribute = Attribute.match(base, keyStart, keyEnd)
        }
        if let attribute {
            if self[attribute] != nil { duplicate = true }
            self[attribute] = value
            return
        }
        let n = keyEnd - keyStart
        for range in unknownKeys ?? [] where range.count == n {
            var equal = true
            for k in 0..<n where base[range.lowerBound + k] != base[keyStart + k] {
                equal = false
                break
            }
            if equal {
                duplicate = true
                return
            }
        }
        if unknownKeys == nil {
            unknownKeys = [keyStart..<keyEnd]
        } else {
            unknownKeys?.append(keyStart..<keyEnd)
        }
        unknownCount += 1
    }
}

/// Whether the `count` bytes at `base` start with UTF-8's byte-order mark (EF BB BF).
@inline(__always) func startsWithUTF8BOM(_ base: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    count >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF
}

/// The top-level members of a record's value as the decoder's own scan would find them, found ahead of the decoder:
/// on the consumer's read-ahead thread, while the intake thread analyzes the records before it (see
/// ``prescan(_:options:)``). 128 bytes, no references: it is written into a slot of the read-ahead's memory on that
/// thread and read on the intake thread, and nothing is allocated on one thread and freed on the other.
///
/// Each of the 15 envelope members (``Attribute``) is packed into a word: bit 63 present, bits 60-62 the value's
/// kind, bit 59 escaped, bits 29-57 the value's end and bits 0-28 its start (values shorter than 2^29 bytes). The
/// last word holds the count of other members (bits 0-31), whether a member repeated (bit 32) and the nesting limit
/// the scan applied (bits 33-62).
public struct PrescannedMembers: Sendable, BitwiseCopyable {
    fileprivate var words: InlineArray<16, UInt64>

    /// The size of a value, in bytes, up to which offsets fit their 29 bits.
    static let maxValueBytes = (1 << 29) - 1
    /// The words of the 15 envelope members (word `attribute.rawValue` each), then the counts' word.
    fileprivate static let memberWords = Attribute.allCases.count
    fileprivate static let countsWord = memberWords

    /// Scans `value` as ``CloudEventDecoder`` would with `options` (its fast scan, for an object document no larger
    /// than `options.maxParseBytes` and without a byte-order mark); `nil` where the decoder takes another path (it
    /// then scans the value itself, as without a prescan).
    public static func prescan(_ value: UnsafeRawBufferPointer, options: DecoderOptions) -> PrescannedMembers? {
        prescan(value, maxParseBytes: options.maxParseBytes, maxNestingDepth: options.maxNestingDepth)
    }

    /// ``prescan(_:options:)`` with the two options it reads (a closure on another thread can hold these two
    /// integers rather than the options' sets and arrays).
    public static func prescan(
        _ value: UnsafeRawBufferPointer,
        maxParseBytes: Int,
        maxNestingDepth: Int
    ) -> PrescannedMembers? {
        guard let raw = value.baseAddress, value.count > 0, value.count <= maxParseBytes,
            value.count <= maxValueBytes, maxNestingDepth >= 1, maxNestingDepth < 1 << 30
        else { return nil }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        if startsWithUTF8BOM(base, value.count) { return nil }
        var collector = AttributeCollector()
        guard
            JSONDocument.scanFast(
                base: base,
                start: 0,
                end: value.count,
                maxDepth: maxNestingDepth,
                sink: &collector
            ) == .object
        else { return nil }
        return collector.packed(maxDepth: maxNestingDepth)
    }

    /// The nesting limit the scan applied.
    var maxDepth: Int { Int(truncatingIfNeeded: (words[Self.countsWord] >> 33) & ((1 << 30) - 1)) }

    fileprivate static func pack(_ span: MemberSpan?) -> UInt64 {
        guard let span else { return 0 }
        let kind: UInt64 =
            switch span.kind {
            case .object: 0
            case .array: 1
            case .string: 2
            case .number: 3
            case .bool: 4
            case .null: 5
            }
        return 1 << 63 | kind << 60 | (span.escaped ? 1 << 59 : 0) | UInt64(span.valueEnd) << 29
            | UInt64(span.valueStart)
    }

    @inline(__always) fileprivate static func unpack(_ word: UInt64) -> MemberSpan? {
        guard word >> 63 == 1 else { return nil }
        let kind: JSONValueKind =
            switch (word >> 60) & 7 {
            case 0: .object
            case 1: .array
            case 2: .string
            case 3: .number
            case 4: .bool
            default: .null
            }
        let mask: UInt64 = (1 << 29) - 1
        return MemberSpan(
            valueStart: Int(truncatingIfNeeded: word & mask),
            valueEnd: Int(truncatingIfNeeded: (word >> 29) & mask),
            kind: kind,
            escaped: (word >> 59) & 1 == 1
        )
    }
}

extension AttributeCollector {
    /// The collector a scan that found `prescanned`'s members would have left (other members' names are not kept:
    /// only the scan itself compares them).
    init(_ prescanned: UnsafePointer<PrescannedMembers>) {
        let words = UnsafeRawPointer(prescanned)
        @inline(__always) func span(_ index: Int) -> MemberSpan? {
            PrescannedMembers.unpack(words.load(fromByteOffset: index &* 8, as: UInt64.self))
        }
        // Each slot written once, in place (clearing the slots first and storing through their bytes made the
        // compiler copy the whole tuple: a `memcpy` of 360 bytes per record in a backfill's profile). The order is
        // ``Attribute``'s, as in ``packed(maxDepth:)``.
        slots = (
            span(0), span(1), span(2), span(3), span(4), span(5), span(6), span(7), span(8), span(9), span(10),
            span(11), span(12), span(13), span(14)
        )
        let last = words.load(fromByteOffset: PrescannedMembers.countsWord &* 8, as: UInt64.self)
        unknownCount = Int(truncatingIfNeeded: last & 0xFFFF_FFFF)
        duplicate = (last >> 32) & 1 == 1
    }

    /// These members packed (see ``PrescannedMembers``); the offsets must fit 29 bits.
    fileprivate func packed(maxDepth: Int) -> PrescannedMembers {
        var words = InlineArray<16, UInt64>(repeating: 0)
        for attribute in Attribute.allCases {
            words[attribute.rawValue] = PrescannedMembers.pack(self[attribute])
        }
        words[PrescannedMembers.countsWord] =
            UInt64(truncatingIfNeeded: Swift.min(unknownCount, Int(UInt32.max))) | (duplicate ? 1 << 32 : 0)
            | UInt64(truncatingIfNeeded: maxDepth) << 33
        return PrescannedMembers(words: words)
    }
}
