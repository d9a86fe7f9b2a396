import FlowmeterCore
import Yams

// MARK: - One file's contents, with locations

/// A value and where it was written.
struct Located<Value> {
    var value: Value
    var file: String
    var line: Int?
    var keyPath: String

    /// `file:line`, for messages that point at an earlier definition.
    var location: String { line.map { "\(file):\($0)" } ?? file }

    func error(_ message: String) -> AnalyzerError {
        AnalyzerError(file: file, line: line, keyPath: keyPath, message: message)
    }
}

/// What one analyzer file defines, before files are merged and cross-checked.
struct AnalyzerFragment {
    // Each entry keeps its references even when the entry itself is invalid (`nil`), so that they are
    // cross-checked too and one run reports every problem.

    struct DeadLetterEntry {
        var topic: Located<DeadLetterTopic>?
        var source: Located<String>?
    }

    struct GroupEntry {
        var group: Located<TopicSelector>?
        var topics: [Located<String>]
    }

    struct FlowEntry {
        var name: Located<String>?
        var flow: FlowDefinition?
        var from: Located<String>?
        var to: Located<String>?
    }

    struct SLOEntry {
        var name: Located<String>?
        var slo: SLODefinition?
        var flow: Located<String>?
    }

    var file: String
    var topicsKey: Located<Void>?
    var topics: [TopicSelector] = []
    var deadLetterPatterns: [TopicPattern]?
    var deadLetterTopics: [DeadLetterEntry] = []
    var groups: [GroupEntry] = []
    var flows: [FlowEntry] = []
    var slos: [SLOEntry] = []
    var limits: Located<AnalyzerLimits>?

    init(file: String) {
        self.file = file
    }
}

// MARK: - Parsing one file

/// Reads one composed YAML document into an ``AnalyzerFragment``, collecting every problem.
struct AnalyzerFileParser {
    static let topLevelKeys = ["topics", "dead_letters", "groups", "flows", "slos", "limits"]
    static let deadLetterKeys = ["patterns", "topics"]
    static let deadLetterTopicKeys = ["topic", "source", "subscriber"]
    static let groupKeys = ["group", "topics"]
    static let flowKeys = ["name", "from", "to", "from_type", "to_type", "correlation", "timeout"]
    static let sloKeys = ["name", "flow", "quantile", "threshold"]
    static let limitKeys = [
        "max_types_per_topic", "max_pending_flow_requests", "duplicate_window", "status_window",
        "vanished_group_retention", "max_dead_letter_topics_per_topic",
    ]

    static let topicExpectation = "a topic name (letters, digits, '.', '_' and '-', at most 249 characters)"
    static let selectorExpectation = "a topic name or a glob with * and ? (letters, digits, '.', '_', '-')"
    static let nameExpectation = "a name of lowercase letters, digits, '_' and '-'"
    static let correlationExpectation = "trace-id, data.<path.with.dots> or header:<name>"

    let file: String
    private(set) var errors: [AnalyzerError] = []

    init(file: String) {
        self.file = file
    }

    /// Parses a document; `nil` (an empty file) defines nothing.
    mutating func parse(_ root: Node?) -> AnalyzerFragment {
        var fragment = AnalyzerFragment(file: file)
        guard let root else {
            return fragment
        }
        guard let fields = fields(of: root, at: "", expected: "a mapping of analyzer keys", allowed: Self.topLevelKeys)
        else {
            return fragment
        }
        if let (key, value) = fields["topics"] {
            fragment.topicsKey = Located(value: (), file: file, line: key.mark?.line, keyPath: "topics")
            fragment.topics = topics(value)
        }
        if let (_, value) = fields["dead_letters"] {
            deadLetters(value, into: &fragment)
        }
        if let (_, value) = fields["groups"] {
            fragment.groups = list(value, at: "groups", of: "watched groups").compactMap { group($0, at: $1) }
        }
        if let (_, value) = fields["flows"] {
            fragment.flows = list(value, at: "flows", of: "flows").compactMap { flow($0, at: $1) }
        }
        if let (_, value) = fields["slos"] {
            fragment.slos = list(value, at: "slos", of: "SLOs").compactMap { slo($0, at: $1) }
        }
        if let (key, value) = fields["limits"], let limits = limits(value) {
            fragment.limits = Located(value: limits, file: file, line: key.mark?.line, keyPath: "limits")
        }
        return fragment
    }

    // MARK: Sections

    private mutating func topics(_ node: Node) -> [TopicSelector] {
        list(node, at: "topics", of: "topic names or patterns").compactMap { item, path in
            selector(item, at: path)
        }
    }

    private mutating func deadLetters(_ node: Node, into fragment: inout AnalyzerFragment) {
        let path = "dead_letters"
        guard let fields = fields(of: node, at: path, expected: "a mapping", allowed: Self.deadLetterKeys) else {
            return
        }
        if let (_, value) = fields["patterns"] {
            fragment.deadLetterPatterns = list(value, at: "\(path).patterns", of: "globs").compactMap { item, path in
                string(item, at: path, expected: Self.selectorExpectation, valid: isSelector).map(TopicPattern.init)
            }
        }
        if let (_, value) = fields["topics"] {
            fragment.deadLetterTopics = list(value, at: "\(path).topics", of: "dead-letter topics").compactMap {
                deadLetterTopic($0, at: $1)
            }
        }
    }

    private mutating func deadLetterTopic(_ node: Node, at path: String) -> AnalyzerFragment.DeadLetterEntry? {
        guard
            let fields = fields(of: node, at: path, expected: "a mapping with topic", allowed: Self.deadLetterTopicKeys)
        else {
            return nil
        }
        let topic = required(fields, "topic", in: node, at: path, expected: Self.topicExpectation).flatMap {
            string($0, at: "\(path).topic", expected: Self.topicExpectation, valid: isTopicName)
        }
        let source = fields["source"].flatMap { _, value in
            located(value, at: "\(path).source", expected: Self.topicExpectation, valid: isTopicName)
        }
        let subscriber = fields["subscriber"].flatMap { _, value in
            string(value, at: "\(path).subscriber", expected: "a subscriber (Dapr app-id)", valid: isGroupName)
        }
        let entry = topic.map { DeadLetterTopic(topic: $0, sourceTopic: source?.value, subscriber: subscriber) }
        return AnalyzerFragment.DeadLetterEntry(topic: entry.map { here($0, node, path) }, source: source)
    }

    private mutating func group(_ node: Node, at path: String) -> AnalyzerFragment.GroupEntry? {
        guard
            let fields = fields(
                of: node,
                at: path,
                expected: "a mapping with group and topics",
                allowed: Self.groupKeys
            )
        else {
            return nil
        }
        let groupExpectation = "a consumer group id or a glob"
        let group = required(fields, "group", in: node, at: path, expected: groupExpectation).flatMap {
            string($0, at: "\(path).group", expected: groupExpectation, valid: isGroupName)
        }
        let topics = required(fields, "topics", in: node, at: path, expected: "a list of topic names").map {
            let topicsPath = "\(path).topics"
            let items = list($0, at: topicsPath, of: "topic names")
            if items.isEmpty, $0.sequence != nil {
                report($0, topicsPath, "expected at least one topic name, got an empty list")
            }
            return items.compactMap { item, itemPath in
                located(item, at: itemPath, expected: Self.topicExpectation, valid: isTopicName)
            }
        }
        let selector = group.map { group -> TopicSelector in
            TopicPattern(group).hasWildcards ? .pattern(TopicPattern(group)) : .name(group)
        }
        return AnalyzerFragment.GroupEntry(
            group: topics == nil ? nil : selector.map { here($0, node, path) },
            topics: topics ?? []
        )
    }

    private mutating func flow(_ node: Node, at path: String) -> AnalyzerFragment.FlowEntry? {
        guard
            let fields = fields(
                of: node,
                at: path,
                expected: "a mapping with name, from and to",
                allowed: Self.flowKeys
            )
        else {
            return nil
        }
        let name = required(fields, "name", in: node, at: path, expected: Self.nameExpectation).flatMap {
            located($0, at: "\(path).name", expected: Self.nameExpectation, valid: isFlowName)
        }
        let from = required(fields, "from", in: node, at: path, expected: Self.topicExpectation).flatMap {
            located($0, at: "\(path).from", expected: Self.topicExpectation, valid: isTopicName)
        }
        let to = required(fields, "to", in: node, at: path, expected: Self.topicExpectation).flatMap {
            located($0, at: "\(path).to", expected: Self.topicExpectation, valid: isTopicName)
        }
        let fromType = fields["from_type"].flatMap { _, value in
            string(value, at: "\(path).from_type", expected: "a CloudEvent type", valid: { !$0.isEmpty })
        }
        let toType = fields["to_type"].flatMap { _, value in
            string(value, at: "\(path).to_type", expected: "a CloudEvent type", valid: { !$0.isEmpty })
        }
        var correlation: Correlation? = .traceID
        if let (_, value) = fields["correlation"] {
            correlation = string(value, at: "\(path).correlation", expected: Self.correlationExpectation).flatMap {
                guard let parsed = Self.correlation($0) else {
                    report(value, "\(path).correlation", "expected \(Self.correlationExpectation), got \(found(value))")
                    return nil
                }
                return parsed
            }
        }
        var timeout: Duration? = AnalyzerLimits.defaultFlowTimeout
        if let (_, value) = fields["timeout"] {
            timeout = duration(value, at: "\(path).timeout")
        }
        var definition: FlowDefinition?
        if let name, let from, let to, let correlation, let timeout {
            definition = FlowDefinition(
                name: name.value,
                from: from.value,
                to: to.value,
                fromType: fromType,
                toType: toType,
                correlation: correlation,
                timeout: timeout
            )
        }
        return AnalyzerFragment.FlowEntry(name: name, flow: definition, from: from, to: to)
    }

    private mutating func slo(_ node: Node, at path: String) -> AnalyzerFragment.SLOEntry? {
        guard
            let fields = fields(
                of: node,
                at: path,
                expected: "a mapping with name, flow, quantile and threshold",
                allowed: Self.sloKeys
            )
        else {
            return nil
        }
        let name = required(fields, "name", in: node, at: path, expected: Self.nameExpectation).flatMap {
            located($0, at: "\(path).name", expected: Self.nameExpectation, valid: isFlowName)
        }
        let flow = required(fields, "flow", in: node, at: path, expected: "the name of a flow").flatMap {
            located($0, at: "\(path).flow", expected: "the name of a flow", valid: isFlowName)
        }
        let quantileExpectation = "a quantile between 0 and 1 (exclusive), such as 0.95"
        let quantile = required(fields, "quantile", in: node, at: path, expected: quantileExpectation).flatMap {
            value -> Double? in
            guard value.null == nil, let quantile = value.float, quantile > 0, quantile < 1 else {
                report(value, "\(path).quantile", "expected \(quantileExpectation), got \(found(value))")
                return nil
            }
            return quantile
        }
        let threshold = required(fields, "threshold", in: node, at: path, expected: DurationSyntax.expectation)
            .flatMap { duration($0, at: "\(path).threshold") }
        var definition: SLODefinition?
        if let name, let flow, let quantile, let threshold {
            definition = SLODefinition(name: name.value, flow: flow.value, quantile: quantile, threshold: threshold)
        }
        return AnalyzerFragment.SLOEntry(name: name, slo: definition, flow: flow)
    }

    private mutating func limits(_ node: Node) -> AnalyzerLimits? {
        guard let fields = fields(of: node, at: "limits", expected: "a mapping of limits", allowed: Self.limitKeys)
        else {
            return nil
        }
        var limits = AnalyzerLimits()
        var valid = true
        func count(_ key: String, _ apply: (inout AnalyzerLimits, Int) -> Void) {
            guard let (_, value) = fields[key] else {
                return
            }
            // Yams reads a plain `1:30` as a base-60 integer and traps when one overflows (any of 11 or more parts
            // does), so a number with a colon is rejected before Yams reads it.
            guard value.null == nil, !(value.scalar?.string.contains(":") ?? false), let number = value.int, number > 0
            else {
                report(value, "limits.\(key)", "expected a positive whole number, got \(found(value))")
                valid = false
                return
            }
            apply(&limits, number)
        }
        count("max_types_per_topic") { $0.maxTypesPerTopic = $1 }
        count("max_pending_flow_requests") { $0.maxPendingFlowRequests = $1 }
        count("duplicate_window") { $0.duplicateWindow = $1 }
        count("status_window") { $0.statusWindow = $1 }
        count("max_dead_letter_topics_per_topic") { $0.maxDeadLetterTopicsPerTopic = $1 }
        if let (_, value) = fields["vanished_group_retention"] {
            if let retention = duration(value, at: "limits.vanished_group_retention") {
                limits.vanishedGroupRetention = retention
            } else {
                valid = false
            }
        }
        return valid ? limits : nil
    }

    // MARK: Values

    /// Parses `trace-id`, `data.<path>` or `header:<name>`.
    static func correlation(_ text: String) -> Correlation? {
        if text == "trace-id" {
            return .traceID
        }
        if text.hasPrefix("data.") {
            let path = text.dropFirst("data.".count).split(separator: ".", omittingEmptySubsequences: false)
            guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty && !$0.contains(where: \.isWhitespace) }) else {
                return nil
            }
            return .dataPath(path.map(String.init))
        }
        if text.hasPrefix("header:") {
            let name = String(text.dropFirst("header:".count))
            guard !name.isEmpty, !name.contains(where: \.isWhitespace) else {
                return nil
            }
            return .header(name)
        }
        return nil
    }

    private mutating func selector(_ node: Node, at path: String) -> TopicSelector? {
        string(node, at: path, expected: Self.selectorExpectation, valid: isSelector).map { text in
            let pattern = TopicPattern(text)
            return pattern.hasWildcards ? .pattern(pattern) : .name(text)
        }
    }

    private mutating func duration(_ node: Node, at path: String) -> Duration? {
        guard case .scalar(let scalar) = node, node.null == nil, let duration = DurationSyntax.parse(scalar.string),
            duration > .zero
        else {
            report(node, path, "expected \(DurationSyntax.expectation), got \(found(node))")
            return nil
        }
        return duration
    }

    // MARK: Node helpers

    /// The mapping's values by key; unknown and non-string keys are reported.
    private mutating func fields(
        of node: Node,
        at path: String,
        expected: String,
        allowed: [String]
    ) -> [String: (key: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            report(node, path, "expected \(expected), got \(found(node))")
            return nil
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                report(key, path, "expected a key name, got \(found(key))")
                continue
            }
            guard allowed.contains(scalar.string) else {
                report(
                    key,
                    join(path, scalar.string),
                    "unknown key, expected one of \(allowed.joined(separator: ", "))"
                )
                continue
            }
            result[scalar.string] = (key, value)
        }
        return result
    }

    /// The value of a required key, or a report that it is missing.
    private mutating func required(
        _ fields: [String: (key: Node, value: Node)],
        _ key: String,
        in node: Node,
        at path: String,
        expected: String
    ) -> Node? {
        guard let (_, value) = fields[key] else {
            report(node, join(path, key), "missing; expected \(expected)")
            return nil
        }
        return value
    }

    /// The items of a list with their key paths; anything else is reported and reads as empty.
    private mutating func list(_ node: Node, at path: String, of what: String) -> [(Node, String)] {
        guard case .sequence(let sequence) = node else {
            report(node, path, "expected a list of \(what), got \(found(node))")
            return []
        }
        return sequence.enumerated().map { index, item in (item, "\(path)[\(index)]") }
    }

    private mutating func string(
        _ node: Node,
        at path: String,
        expected: String,
        valid: (String) -> Bool = { _ in true }
    ) -> String? {
        guard case .scalar(let scalar) = node, node.null == nil, valid(scalar.string) else {
            report(node, path, "expected \(expected), got \(found(node))")
            return nil
        }
        return scalar.string
    }

    private mutating func located(
        _ node: Node,
        at path: String,
        expected: String,
        valid: (String) -> Bool
    ) -> Located<String>? {
        string(node, at: path, expected: expected, valid: valid).map { here($0, node, path) }
    }

    private func here<Value>(_ value: Value, _ node: Node, _ path: String) -> Located<Value> {
        Located(value: value, file: file, line: node.mark?.line, keyPath: path)
    }

    private mutating func report(_ node: Node, _ path: String, _ message: String) {
        errors.append(AnalyzerError(file: file, line: node.mark?.line, keyPath: path, message: message))
    }

    private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

// MARK: - Shared helpers

/// How a node is described after `got`: a quoted scalar, `nothing`, `a list` or `a mapping`.
func found(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar): node.null != nil ? "nothing" : quoted(scalar.string)
    case .sequence: "a list"
    case .mapping: "a mapping"
    case .alias: "an alias"
    }
}

private let topicCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

/// A Kafka topic name: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..`.
func isTopicName(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 249 && text != "." && text != ".." && text.allSatisfy(topicCharacters.contains)
}

/// A topic name or a glob over topic names.
func isSelector(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 249 && text.allSatisfy { topicCharacters.contains($0) || $0 == "*" || $0 == "?" }
}

/// A consumer group id (or glob): non-empty, no whitespace or control characters.
func isGroupName(_ text: String) -> Bool {
    !text.isEmpty
        && !text.contains {
            $0.isWhitespace || $0.unicodeScalars.contains { $0.properties.generalCategory == .control }
        }
}

/// A flow or SLO name: `[a-z0-9_-]+`.
func isFlowName(_ text: String) -> Bool {
    !text.isEmpty && text.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
}
