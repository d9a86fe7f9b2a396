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
    private var data: MemberSpan?
    private var dataBase64: MemberSpan?
    private var datacontenttype: MemberSpan?
    private var expiration: MemberSpan?
    private var id: MemberSpan?
    private var pubsubname: MemberSpan?
    private var source: MemberSpan?
    private var specversion: MemberSpan?
    private var subject: MemberSpan?
    private var time: MemberSpan?
    private var topic: MemberSpan?
    private var traceid: MemberSpan?
    private var traceparent: MemberSpan?
    private var tracestate: MemberSpan?
    private var type: MemberSpan?
    /// Raw key ranges of members outside the envelope set (allocated only when there are any).
    private var unknownKeys: [Range<Int>] = []
    /// Distinct members outside the envelope set.
    private(set) var unknownCount = 0
    /// Whether a member name repeated (last wins). Unknown names are compared by their raw bytes.
    private(set) var duplicate = false

    subscript(_ attribute: Attribute) -> MemberSpan? {
        get {
            switch attribute {
            case .data: data
            case .dataBase64: dataBase64
            case .datacontenttype: datacontenttype
            case .expiration: expiration
            case .id: id
            case .pubsubname: pubsubname
            case .source: source
            case .specversion: specversion
            case .subject: subject
            case .time: time
            case .topic: topic
            case .traceid: traceid
            case .traceparent: traceparent
            case .tracestate: tracestate
            case .type: type
            }
        }
        set {
            switch attribute {
            case .data: data = newValue
            case .dataBase64: dataBase64 = newValue
            case .datacontenttype: datacontenttype = newValue
            case .expiration: expiration = newValue
            case .id: id = newValue
            case .pubsubname: pubsubname = newValue
            case .source: source = newValue
            case .specversion: specversion = newValue
            case .subject: subject = newValue
            case .time: time = newValue
            case .topic: topic = newValue
            case .traceid: traceid = newValue
            case .traceparent: traceparent = newValue
            case .tracestate: tracestate = newValue
            case .type: type = newValue
            }
        }
    }

    mutating func member(keyStart: Int, keyEnd: Int, keyEscaped: Bool, value: MemberSpan, base: UnsafePointer<UInt8>) {
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
        for range in unknownKeys where range.count == n {
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
        unknownKeys.append(keyStart..<keyEnd)
        unknownCount += 1
    }
}
