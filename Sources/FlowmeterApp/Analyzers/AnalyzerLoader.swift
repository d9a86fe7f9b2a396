public import FlowmeterCore
import Foundation
import Yams

/// An analyzer set and the files it was read from.
public struct LoadedAnalyzers: Sendable, Hashable {
    /// The merged, cross-checked definitions.
    public var set: AnalyzerSet
    /// The files, in the order they were merged (for the built-in set, ``AnalyzerLoader/builtInFileName``).
    public var files: [String]

    /// Creates a value.
    ///
    /// - Parameters:
    ///   - set: The definitions.
    ///   - files: The files they came from.
    public init(set: AnalyzerSet, files: [String]) {
        self.set = set
        self.files = files
    }
}

/// Reads analyzer files (`analyzers/*.yaml`, format in `analyzers/README.md`) into an ``AnalyzerSet``.
///
/// Every problem is collected and reported with its file, line, key path and what was expected.
public enum AnalyzerLoader {
    /// The name the built-in LearnFlow set is reported under.
    public static let builtInFileName = "<built-in>/learnflow.yaml"

    /// Loads the definitions from a file, from every `*.yaml` and `*.yml` file of a folder (sorted by name), or from
    /// the built-in LearnFlow set.
    ///
    /// - Parameter source: Where the definitions come from.
    /// - Returns: The merged definitions and the files read.
    /// - Throws: ``AnalyzerErrors`` with every problem found, including unreadable files and an empty folder.
    public static func load(_ source: AnalyzerSource) throws(AnalyzerErrors) -> LoadedAnalyzers {
        switch source {
        case .builtIn:
            return try load(documents: [(file: builtInFileName, yaml: builtInLearnFlow)])
        case .file(let path):
            return try load(documents: [try read(displayPath(path))])
        case .directory(let path):
            let folder = displayPath(path)
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: path)
                    .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                    .filter { !$0.hasPrefix(".") }
                    .sorted()
            } catch {
                throw AnalyzerErrors([
                    AnalyzerError(file: folder, line: nil, keyPath: "", message: "cannot list the folder: \(error)")
                ])
            }
            guard !names.isEmpty else {
                throw AnalyzerErrors([
                    AnalyzerError(
                        file: folder,
                        line: nil,
                        keyPath: "",
                        message: "expected at least one *.yaml or *.yml file in the folder, found none"
                    )
                ])
            }
            var documents: [(file: String, yaml: String)] = []
            var errors: [AnalyzerError] = []
            for name in names {
                let file = folder.hasSuffix("/") ? folder + name : "\(folder)/\(name)"
                do {
                    documents.append(try read(file))
                } catch {
                    errors += error.errors
                }
            }
            // Unreadable files first, then the problems in the files that could be read.
            var loaded: LoadedAnalyzers?
            do {
                loaded = try load(documents: documents)
            } catch {
                errors += error.errors
            }
            guard let loaded, errors.isEmpty else {
                throw AnalyzerErrors(errors)
            }
            return loaded
        }
    }

    /// Loads the definitions from one YAML text.
    ///
    /// - Parameters:
    ///   - yaml: The text.
    ///   - file: The name used in messages.
    /// - Returns: The definitions.
    /// - Throws: ``AnalyzerErrors`` with every problem found.
    public static func load(yaml: String, file: String) throws(AnalyzerErrors) -> LoadedAnalyzers {
        try load(documents: [(file: file, yaml: yaml)])
    }

    /// Loads and merges several YAML texts, in order: lists concatenate; a flow, SLO, group or dead-letter topic
    /// defined twice is an error naming both places; `limits` may appear in one file only.
    ///
    /// - Parameter documents: Each file's name (used in messages) and text.
    /// - Returns: The merged definitions.
    /// - Throws: ``AnalyzerErrors`` with every problem found, ordered by file and line.
    public static func load(documents: [(file: String, yaml: String)]) throws(AnalyzerErrors) -> LoadedAnalyzers {
        var errors: [AnalyzerError] = []
        var fragments: [AnalyzerFragment] = []
        for document in documents {
            var parser = AnalyzerFileParser(file: document.file)
            do {
                fragments.append(parser.parse(try Yams.compose(yaml: document.yaml)))
            } catch {
                errors.append(syntaxError(error, file: document.file))
                continue
            }
            errors += parser.errors
        }
        var merger = AnalyzerMerger()
        let set = merger.merge(fragments, files: documents.map(\.file), earlierErrors: errors)
        errors += merger.errors
        guard errors.isEmpty else {
            let order = Dictionary(documents.map(\.file).enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            let sorted = errors.enumerated().sorted { lhs, rhs in
                let left = (order[lhs.element.file] ?? 0, lhs.element.line ?? 0, lhs.offset)
                let right = (order[rhs.element.file] ?? 0, rhs.element.line ?? 0, rhs.offset)
                return left < right
            }
            throw AnalyzerErrors(sorted.map(\.element))
        }
        return LoadedAnalyzers(set: set, files: documents.map(\.file))
    }

    // MARK: - Helpers

    /// A path as shown in messages: without a leading `./`.
    static func displayPath(_ path: String) -> String {
        var path = path
        while path.hasPrefix("./"), path.count > 2 {
            path.removeFirst(2)
        }
        return path
    }

    private static func read(_ path: String) throws(AnalyzerErrors) -> (file: String, yaml: String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AnalyzerErrors([
                AnalyzerError(file: path, line: nil, keyPath: "", message: "expected a readable file, cannot read it")
            ])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AnalyzerErrors([
                AnalyzerError(file: path, line: nil, keyPath: "", message: "expected UTF-8 text, got other bytes")
            ])
        }
        return (file: path, yaml: text)
    }

    /// A YAML syntax error with its line.
    static func syntaxError(_ error: any Error, file: String) -> AnalyzerError {
        guard let error = error as? YamlError else {
            return AnalyzerError(file: file, line: nil, keyPath: "", message: "invalid YAML: \(error)")
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let context = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return AnalyzerError(
                file: file,
                line: mark.line,
                keyPath: "",
                message: "invalid YAML: \(problem)\(context)"
            )
        case .reader(let problem, let offset, _, let yaml):
            let line = offset.map { offset in yaml.utf8.prefix(offset).count { $0 == UInt8(ascii: "\n") } + 1 }
            return AnalyzerError(file: file, line: line, keyPath: "", message: "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map(quoted).joined(separator: ", ")
            return AnalyzerError(
                file: file,
                line: context.mark.line,
                keyPath: "",
                message: "invalid YAML: duplicate key \(keys) in a mapping"
            )
        default:
            return AnalyzerError(file: file, line: nil, keyPath: "", message: "invalid YAML: \(error)")
        }
    }
}

// MARK: - Merging and cross-checks

/// Merges the files' fragments in order and checks references between them.
struct AnalyzerMerger {
    private(set) var errors: [AnalyzerError] = []

    /// - Parameters:
    ///   - fragments: The files' contents, in merge order.
    ///   - files: The files' names.
    ///   - earlierErrors: The problems found while parsing, so that an empty topic list is not reported on top of a
    ///     syntax error or a malformed `topics` key.
    mutating func merge(_ fragments: [AnalyzerFragment], files: [String], earlierErrors: [AnalyzerError]) -> AnalyzerSet
    {
        var set = AnalyzerSet()

        // Topics: concatenated, duplicates dropped.
        for selector in fragments.flatMap(\.topics) where !set.topics.contains(selector) {
            set.topics.append(selector)
        }
        let topicsAlreadyReported = earlierErrors.contains { $0.keyPath.isEmpty || $0.keyPath.hasPrefix("topics") }
        if set.topics.isEmpty, !topicsAlreadyReported {
            let key = fragments.compactMap(\.topicsKey).last
            errors.append(
                AnalyzerError(
                    file: key?.file ?? files.first ?? AnalyzerLoader.builtInFileName,
                    line: key?.line ?? 1,
                    keyPath: "topics",
                    message: "expected at least one topic name or pattern across all analyzer files, got none"
                )
            )
        }
        let isListedTopic = { (topic: String) in set.topics.contains { $0.matches(topic) } }

        // Dead letters.
        let patternLists = fragments.compactMap(\.deadLetterPatterns)
        if !patternLists.isEmpty {
            set.deadLetterPatterns = []
            for pattern in patternLists.joined() where !set.deadLetterPatterns.contains(pattern) {
                set.deadLetterPatterns.append(pattern)
            }
        }
        var deadLetterTopics: [String: Located<DeadLetterTopic>] = [:]
        for entry in fragments.flatMap(\.deadLetterTopics) {
            if let source = entry.source, !isListedTopic(source.value) {
                errors.append(source.error(notAnalyzed(source.value)))
            }
            guard let topic = entry.topic else {
                continue
            }
            if let first = deadLetterTopics[topic.value.topic] {
                errors.append(
                    topic.error(
                        "dead-letter topic \(quoted(topic.value.topic)) is listed twice; first at \(first.location)"
                    )
                )
                continue
            }
            deadLetterTopics[topic.value.topic] = topic
            set.deadLetterTopics.append(topic.value)
        }

        // Groups.
        var groups: [String: Located<TopicSelector>] = [:]
        for entry in fragments.flatMap(\.groups) {
            for topic in entry.topics where !set.isAnalyzed(topic: topic.value) {
                errors.append(topic.error(notAnalyzed(topic.value)))
            }
            guard let group = entry.group else {
                continue
            }
            let name = group.value.description
            if let first = groups[name] {
                errors.append(group.error("group \(quoted(name)) is defined twice; first at \(first.location)"))
                continue
            }
            groups[name] = group
            set.groups.append(WatchedGroup(group: group.value, topics: entry.topics.map(\.value)))
        }

        // Flows.
        var flowNames: [String: Located<String>] = [:]
        for entry in fragments.flatMap(\.flows) {
            for topic in [entry.from, entry.to].compactMap(\.self) where !set.isAnalyzed(topic: topic.value) {
                errors.append(topic.error(notAnalyzed(topic.value)))
            }
            guard let name = entry.name else {
                continue
            }
            if let first = flowNames[name.value] {
                errors.append(name.error("flow \(quoted(name.value)) is defined twice; first at \(first.location)"))
                continue
            }
            flowNames[name.value] = name
            if let flow = entry.flow {
                set.flows.append(flow)
            }
        }

        // SLOs.
        var sloNames: [String: Located<String>] = [:]
        for entry in fragments.flatMap(\.slos) {
            if let flow = entry.flow, flowNames[flow.value] == nil {
                let known = flowNames.keys.sorted().joined(separator: ", ")
                let expectation = known.isEmpty ? "the name of a flow (none is defined)" : "one of the flows \(known)"
                errors.append(flow.error("expected \(expectation), got \(quoted(flow.value))"))
            }
            guard let name = entry.name else {
                continue
            }
            if let first = sloNames[name.value] {
                errors.append(name.error("SLO \(quoted(name.value)) is defined twice; first at \(first.location)"))
                continue
            }
            sloNames[name.value] = name
            if let slo = entry.slo {
                set.slos.append(slo)
            }
        }

        // Limits: one file at most.
        let limits = fragments.compactMap(\.limits)
        if let first = limits.first {
            set.limits = first.value
            for other in limits.dropFirst() {
                errors.append(other.error("limits may be set in one file only; already set at \(first.location)"))
            }
        }
        return set
    }

    private func notAnalyzed(_ topic: String) -> String {
        "expected an analyzed topic (listed under topics or matched by a topic pattern), got \(quoted(topic))"
    }
}
