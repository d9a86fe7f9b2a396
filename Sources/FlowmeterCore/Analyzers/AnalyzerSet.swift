/// What Flowmeter analyzes: the merged contents of the analyzer files (`analyzers/*.yaml`).
///
/// Pure data; the YAML loader in `FlowmeterApp` builds it and reports errors with file, line and key.
public struct AnalyzerSet: Sendable, Hashable {
    /// Topics to read: names or glob patterns. Dead-letter topics listed in ``deadLetterTopics`` are read too.
    public var topics: [TopicSelector]
    /// Dead-letter topics with their source topic and subscriber, where known.
    public var deadLetterTopics: [DeadLetterTopic]
    /// Patterns that mark a topic as a dead-letter topic (default `*.dlq`, `*.dlq.*`). A record on any topic that
    /// carries Dapr's `__topic` and `__offset` headers is treated as a dead-letter copy too, and its source is
    /// taken from those headers.
    public var deadLetterPatterns: [TopicPattern]
    /// Consumer groups whose lag is watched, with the topics each consumes.
    public var groups: [WatchedGroup]
    /// Request → response flows to correlate.
    public var flows: [FlowDefinition]
    /// Service-level objectives over flows.
    public var slos: [SLODefinition]
    /// Bounds on memory and label cardinality.
    public var limits: AnalyzerLimits

    /// Creates a set.
    public init(
        topics: [TopicSelector] = [],
        deadLetterTopics: [DeadLetterTopic] = [],
        deadLetterPatterns: [TopicPattern] = AnalyzerSet.defaultDeadLetterPatterns,
        groups: [WatchedGroup] = [],
        flows: [FlowDefinition] = [],
        slos: [SLODefinition] = [],
        limits: AnalyzerLimits = AnalyzerLimits()
    ) {
        self.topics = topics
        self.deadLetterTopics = deadLetterTopics
        self.deadLetterPatterns = deadLetterPatterns
        self.groups = groups
        self.flows = flows
        self.slos = slos
        self.limits = limits
    }

    /// `*.dlq` and `*.dlq.*`.
    public static let defaultDeadLetterPatterns: [TopicPattern] = [TopicPattern("*.dlq"), TopicPattern("*.dlq.*")]

    /// Whether a topic is to be read: named, matched by a pattern, or a listed dead-letter topic.
    public func isAnalyzed(topic: String) -> Bool {
        topics.contains { $0.matches(topic) } || deadLetterTopics.contains { $0.topic == topic }
    }

    /// The listed dead-letter topic entry for a topic, if any.
    public func deadLetterTopic(named topic: String) -> DeadLetterTopic? {
        deadLetterTopics.first { $0.topic == topic }
    }

    /// The librdkafka subscription list: topic names, `^`-anchored regular expressions for topic patterns, the
    /// listed dead-letter topics, and regular expressions for the dead-letter patterns (so dead-letter topics are
    /// read even when they are not listed). Duplicates are dropped; the order is that of the definitions.
    public func subscriptionTopics() -> [String] {
        var result: [String] = []
        var seen: Set<String> = []
        let all =
            topics.map(\.subscription) + deadLetterTopics.map(\.topic)
            + deadLetterPatterns.map { TopicSelector.pattern($0).subscription }
        for subscription in all where seen.insert(subscription).inserted {
            result.append(subscription)
        }
        return result
    }

    /// Whether a topic is a dead-letter topic by configuration (listed or matching a dead-letter pattern).
    public func isDeadLetterTopic(_ topic: String) -> Bool {
        deadLetterTopic(named: topic) != nil || deadLetterPatterns.contains { $0.matches(topic) }
    }
}

/// A topic name or a glob pattern.
public enum TopicSelector: Sendable, Hashable, CustomStringConvertible {
    /// An exact topic name.
    case name(String)
    /// A glob pattern (`*` any run of characters, `?` one character).
    case pattern(TopicPattern)

    /// Whether the selector matches a topic.
    public func matches(_ topic: String) -> Bool {
        switch self {
        case .name(let name): name == topic
        case .pattern(let pattern): pattern.matches(topic)
        }
    }

    /// The librdkafka subscription string: the name, or a `^`-anchored regular expression for a pattern.
    public var subscription: String {
        switch self {
        case .name(let name): name
        case .pattern(let pattern): pattern.regularExpression
        }
    }

    public var description: String {
        switch self {
        case .name(let name): name
        case .pattern(let pattern): pattern.glob
        }
    }
}

/// A glob over topic or group names: `*` matches any run of characters (including dots), `?` one character.
public struct TopicPattern: Sendable, Hashable, CustomStringConvertible {
    /// The glob as written.
    public let glob: String

    /// Creates a pattern.
    public init(_ glob: String) { self.glob = glob }

    /// Whether `name` matches the glob.
    public func matches(_ name: String) -> Bool {
        let pattern = Array(glob.utf8)
        let text = Array(name.utf8)
        var p = 0
        var t = 0
        var star = -1
        var mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                mark = t
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// Whether the glob has wildcards at all.
    public var hasWildcards: Bool { glob.contains("*") || glob.contains("?") }

    /// An anchored POSIX extended regular expression equivalent to the glob (librdkafka subscriptions).
    public var regularExpression: String {
        var result = "^"
        for character in glob {
            switch character {
            case "*": result += ".*"
            case "?": result += "."
            case ".", "+", "(", ")", "[", "]", "{", "}", "^", "$", "|", "\\": result += "\\\(character)"
            default: result.append(character)
            }
        }
        return result + "$"
    }

    public var description: String { glob }
}

/// A dead-letter topic: Dapr writes per-subscriber copies to `<topic>.dlq.<subscriber>`.
public struct DeadLetterTopic: Sendable, Hashable {
    /// The dead-letter topic.
    public var topic: String
    /// The topic whose records land here, if known (else taken from the records' `__topic` header).
    public var sourceTopic: String?
    /// The subscriber (Dapr app-id) that dead-lettered them, if known.
    public var subscriber: String?

    /// Creates an entry.
    public init(topic: String, sourceTopic: String? = nil, subscriber: String? = nil) {
        self.topic = topic
        self.sourceTopic = sourceTopic
        self.subscriber = subscriber
    }
}

/// A consumer group whose lag is watched.
public struct WatchedGroup: Sendable, Hashable {
    /// The group id, or a pattern (which needs a broker that can list groups).
    public var group: TopicSelector
    /// The topics the group consumes (each must be analyzed).
    public var topics: [String]

    /// Creates an entry.
    public init(group: TopicSelector, topics: [String]) {
        self.group = group
        self.topics = topics
    }
}

/// How a flow's request and response are matched.
public enum Correlation: Sendable, Hashable, CustomStringConvertible {
    /// The W3C trace-id of `traceparent` (or `traceid`): the default.
    case traceID
    /// A member inside the CloudEvent `data`, e.g. `["submissionId"]` for `data.submissionId`.
    case dataPath([String])
    /// A Kafka header, e.g. `correlationId`.
    case header(String)

    public var description: String {
        switch self {
        case .traceID: "trace-id"
        case .dataPath(let path): "data." + path.joined(separator: ".")
        case .header(let name): "header \(name)"
        }
    }
}

/// A request → response flow.
public struct FlowDefinition: Sendable, Hashable {
    /// The flow's name (the `flow` label).
    public var name: String
    /// The request topic.
    public var from: String
    /// The response topic.
    public var to: String
    /// Only requests of this CloudEvent type count, if set.
    public var fromType: String?
    /// Only responses of this CloudEvent type count, if set.
    public var toType: String?
    /// How request and response are matched.
    public var correlation: Correlation
    /// How long a request waits for its response before it counts as incomplete.
    public var timeout: Duration

    /// Creates a flow.
    public init(
        name: String,
        from: String,
        to: String,
        fromType: String? = nil,
        toType: String? = nil,
        correlation: Correlation = .traceID,
        timeout: Duration = AnalyzerLimits.defaultFlowTimeout
    ) {
        self.name = name
        self.from = from
        self.to = to
        self.fromType = fromType
        self.toType = toType
        self.correlation = correlation
        self.timeout = timeout
    }
}

/// A latency objective: `quantile` of `flow` latency stays below `threshold`.
public struct SLODefinition: Sendable, Hashable {
    /// The objective's name.
    public var name: String
    /// The flow it is about.
    public var flow: String
    /// The quantile, e.g. 0.95.
    public var quantile: Double
    /// The latency bound.
    public var threshold: Duration

    /// Creates an objective.
    public init(name: String, flow: String, quantile: Double, threshold: Duration) {
        self.name = name
        self.flow = flow
        self.quantile = quantile
        self.threshold = threshold
    }
}

/// Bounds on memory and label cardinality (defaults from DESIGN.md 3.2).
public struct AnalyzerLimits: Sendable, Hashable {
    /// The default flow timeout: 60 s.
    public static let defaultFlowTimeout: Duration = .seconds(60)

    /// Distinct CloudEvent types per topic; the rest count as `other`.
    public var maxTypesPerTopic: Int = 100
    /// Pending flow requests across all flows; the oldest are evicted (and counted) beyond it.
    public var maxPendingFlowRequests: Int = 100_000
    /// CloudEvent ids remembered per topic to detect redeliveries.
    public var duplicateWindow: Int = 100_000
    /// Lag samples in the status window.
    public var statusWindow: Int = 10
    /// How long series of a vanished group are kept.
    public var vanishedGroupRetention: Duration = .seconds(300)
    /// Distinct dead-letter topics per source topic in labels; the rest count as `other`.
    public var maxDeadLetterTopicsPerTopic: Int = 100

    /// The defaults.
    public init() {}
}
