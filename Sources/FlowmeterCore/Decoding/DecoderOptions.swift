/// Configuration of a ``CloudEventDecoder``.
public struct DecoderOptions: Sendable, Hashable {
    /// Values larger than this get the `oversize` flag and only a bounded top-level scan (default 262,144).
    public var maxParseBytes: Int
    /// Topics that are dead-letter topics, by exact name.
    public var dlqTopics: Set<String>
    /// Glob patterns for dead-letter topics: `*` matches any run of characters (dots included), `?` one byte.
    ///
    /// The default, `*.dlq` and `*.dlq.*`, matches a topic with `dlq` as a dot-separated segment after the first.
    public var dlqTopicGlobMatchers: [String]
    /// Dapr outbox internal topics (`<namespace><appId><topic>outbox`), by exact name.
    public var outboxInternalTopics: Set<String>
    /// A namespace prefix (Dapr `{namespace}` component metadata) stripped from record topics before they are
    /// compared with the CloudEvent `topic` attribute.
    public var namespacePrefix: String?
    /// Whether to try parsing string `data` as JSON when the content type is `text/plain` or empty.
    public var tryDoubleEncodedJSON: Bool
    /// The deepest JSON nesting accepted; deeper values are malformed.
    public var maxNestingDepth: Int

    /// Creates options; every parameter has the documented default.
    public init(
        maxParseBytes: Int = 262_144,
        dlqTopics: Set<String> = [],
        dlqTopicGlobMatchers: [String] = ["*.dlq", "*.dlq.*"],
        outboxInternalTopics: Set<String> = [],
        namespacePrefix: String? = nil,
        tryDoubleEncodedJSON: Bool = true,
        maxNestingDepth: Int = 512
    ) {
        self.maxParseBytes = maxParseBytes
        self.dlqTopics = dlqTopics
        self.dlqTopicGlobMatchers = dlqTopicGlobMatchers
        self.outboxInternalTopics = outboxInternalTopics
        self.namespacePrefix = namespacePrefix
        self.tryDoubleEncodedJSON = tryDoubleEncodedJSON
        self.maxNestingDepth = maxNestingDepth
    }
}

/// Matches `text` against a glob `pattern` where `*` matches any run of bytes and `?` one byte (iterative,
/// no recursion; the same syntax as the analyzer definitions' topic patterns).
func globMatches(_ pattern: [UInt8], _ text: UnsafeBufferPointer<UInt8>) -> Bool {
    var p = 0
    var t = 0
    var starP = -1
    var starT = 0
    while t < text.count {
        if p < pattern.count && pattern[p] == 0x2A {
            starP = p
            starT = t
            p += 1
        } else if p < pattern.count && (pattern[p] == text[t] || pattern[p] == 0x3F) {
            p += 1
            t += 1
        } else if starP >= 0 {
            p = starP + 1
            starT += 1
            t = starT
        } else {
            return false
        }
    }
    while p < pattern.count && pattern[p] == 0x2A { p += 1 }
    return p == pattern.count
}

/// A DLQ topic glob compiled to the cheapest matcher for its shape (no per-record allocation).
enum TopicGlobMatcher: Sendable {
    /// `*literal`
    case suffix([UInt8])
    /// `*literal*`
    case contains([UInt8])
    /// Anything else.
    case glob([UInt8])

    init(_ pattern: String) {
        let bytes = Array(pattern.utf8)
        let stars = bytes.indices.filter { bytes[$0] == 0x2A }
        if bytes.contains(0x3F) {
            self = .glob(bytes)
        } else if stars == [0] {
            self = .suffix(Array(bytes.dropFirst()))
        } else if bytes.count >= 2 && stars == [0, bytes.count - 1] {
            self = .contains(Array(bytes.dropFirst().dropLast()))
        } else {
            self = .glob(bytes)
        }
    }

    func matches(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        switch self {
        case .suffix(let literal):
            guard text.count >= literal.count, let base = text.baseAddress else { return literal.isEmpty }
            return literal.withUnsafeBufferPointer { l in
                l.isEmpty || memoryEquals(l.baseAddress!, base + text.count - l.count, l.count)
            }
        case .contains(let literal):
            guard text.count >= literal.count, let base = text.baseAddress else { return literal.isEmpty }
            return literal.withUnsafeBufferPointer { l in
                guard let lp = l.baseAddress, !l.isEmpty else { return true }
                for start in 0...(text.count - l.count) where base[start] == lp[0] {
                    if memoryEquals(lp, base + start, l.count) { return true }
                }
                return false
            }
        case .glob(let pattern):
            return globMatches(pattern, text)
        }
    }
}
