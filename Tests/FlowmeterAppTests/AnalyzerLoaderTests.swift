import FlowmeterCore
import Foundation
import Testing

@testable import FlowmeterApp

/// The problems `AnalyzerLoader` reports for the documents, or an empty list if they load.
private func loadErrors(_ documents: [(file: String, yaml: String)]) -> [AnalyzerError] {
    do {
        _ = try AnalyzerLoader.load(documents: documents)
        return []
    } catch {
        return error.errors
    }
}

private func loadErrors(_ yaml: String, file: String = "f.yaml") -> [AnalyzerError] {
    loadErrors([(file: file, yaml: yaml)])
}

/// A fresh temporary folder, removed by the caller.
func makeTemporaryFolder() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowmeter-analyzers-\(UUID().uuidString)")
        .path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct AnalyzerLoaderTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    // MARK: - The built-in LearnFlow set

    @Test func builtInSetIsTheRepositoryFileByteForByte() throws {
        let url = Self.repositoryRoot.appendingPathComponent("analyzers/learnflow.yaml")
        let file = try Data(contentsOf: url)
        #expect(file == Data(AnalyzerLoader.builtInLearnFlow.utf8))
    }

    @Test func builtInSetIsTheLearnFlowCatalog() throws {
        let loaded = try AnalyzerLoader.load(.builtIn)
        #expect(loaded.files == ["<built-in>/learnflow.yaml"])
        let expected = AnalyzerSet(
            topics: [
                "learning.requested", "lesson.generated", "exercise.submitted", "exercise.graded", "progress.updated",
                "course.completed",
            ]
            .map(TopicSelector.name),
            deadLetterTopics: [
                DeadLetterTopic(
                    topic: "learning.requested.dlq.course-agent",
                    sourceTopic: "learning.requested",
                    subscriber: "course-agent"
                ),
                DeadLetterTopic(
                    topic: "lesson.generated.dlq.frontend",
                    sourceTopic: "lesson.generated",
                    subscriber: "frontend"
                ),
                DeadLetterTopic(
                    topic: "exercise.submitted.dlq.exercise-agent",
                    sourceTopic: "exercise.submitted",
                    subscriber: "exercise-agent"
                ),
                DeadLetterTopic(
                    topic: "exercise.graded.dlq.progress-agent",
                    sourceTopic: "exercise.graded",
                    subscriber: "progress-agent"
                ),
                DeadLetterTopic(
                    topic: "exercise.graded.dlq.frontend",
                    sourceTopic: "exercise.graded",
                    subscriber: "frontend"
                ),
                DeadLetterTopic(
                    topic: "progress.updated.dlq.frontend",
                    sourceTopic: "progress.updated",
                    subscriber: "frontend"
                ),
                DeadLetterTopic(
                    topic: "course.completed.dlq.course-agent",
                    sourceTopic: "course.completed",
                    subscriber: "course-agent"
                ),
            ],
            deadLetterPatterns: [TopicPattern("*.dlq"), TopicPattern("*.dlq.*")],
            groups: [
                WatchedGroup(group: .name("course-agent"), topics: ["learning.requested", "course.completed"]),
                WatchedGroup(
                    group: .name("frontend"),
                    topics: ["lesson.generated", "exercise.graded", "progress.updated"]
                ),
                WatchedGroup(group: .name("exercise-agent"), topics: ["exercise.submitted"]),
                WatchedGroup(group: .name("progress-agent"), topics: ["exercise.graded"]),
            ],
            flows: [
                FlowDefinition(name: "lesson", from: "learning.requested", to: "lesson.generated"),
                FlowDefinition(name: "grading", from: "exercise.submitted", to: "exercise.graded"),
                FlowDefinition(name: "submission-to-progress", from: "exercise.submitted", to: "progress.updated"),
            ],
            slos: [
                SLODefinition(name: "grading-p95", flow: "grading", quantile: 0.95, threshold: .milliseconds(500))
            ],
            limits: AnalyzerLimits()
        )
        #expect(loaded.set == expected)
        #expect(loaded.set.flows.allSatisfy { $0.correlation == .traceID && $0.timeout == .seconds(60) })
    }

    @Test func builtInSubscriptionReadsTopicsAndEveryDeadLetterTopic() throws {
        let set = try AnalyzerLoader.load(.builtIn).set
        let subscription = set.subscriptionTopics()
        #expect(subscription.count == 6 + 7 + 2)
        #expect(
            subscription.prefix(6) == [
                "learning.requested", "lesson.generated", "exercise.submitted", "exercise.graded", "progress.updated",
                "course.completed",
            ]
        )
        #expect(subscription.contains("exercise.graded.dlq.frontend"))
        #expect(subscription.suffix(2) == [#"^.*\.dlq$"#, #"^.*\.dlq\..*$"#])
    }

    // MARK: - Files and folders

    @Test func folderFilesMergeInNameOrder() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let topics = """
            topics: [orders.created, "payments.*"]
            groups:
              - group: billing
                topics: [orders.created]
            """
        let flows = """
            topics: [orders.created]
            dead_letters:
              patterns: ["*.dead"]
              topics:
                - topic: orders.created.dead
                  source: orders.created
            flows:
              - name: payment
                from: orders.created
                to: payments.settled
                from_type: com.example.order.created
                correlation: data.order.id
                timeout: 1h30m
              - name: refund
                from: payments.settled
                to: orders.created
                correlation: header:x-correlation-id
            slos:
              - name: payment-p99
                flow: payment
                quantile: 0.99
                threshold: 2s
            limits:
              max_types_per_topic: 20
              vanished_group_retention: 10m
            """
        try topics.write(toFile: "\(folder)/10-topics.yaml", atomically: true, encoding: .utf8)
        try flows.write(toFile: "\(folder)/20-flows.yml", atomically: true, encoding: .utf8)
        try "not: [yaml".write(toFile: "\(folder)/README.md", atomically: true, encoding: .utf8)

        let loaded = try AnalyzerLoader.load(.directory(path: folder))
        #expect(loaded.files == ["\(folder)/10-topics.yaml", "\(folder)/20-flows.yml"])
        let set = loaded.set
        #expect(set.topics == [.name("orders.created"), .pattern(TopicPattern("payments.*"))])
        #expect(set.deadLetterPatterns == [TopicPattern("*.dead")])
        #expect(set.deadLetterTopics == [DeadLetterTopic(topic: "orders.created.dead", sourceTopic: "orders.created")])
        #expect(set.groups == [WatchedGroup(group: .name("billing"), topics: ["orders.created"])])
        #expect(
            set.flows == [
                FlowDefinition(
                    name: "payment",
                    from: "orders.created",
                    to: "payments.settled",
                    fromType: "com.example.order.created",
                    correlation: .dataPath(["order", "id"]),
                    timeout: .seconds(5400)
                ),
                FlowDefinition(
                    name: "refund",
                    from: "payments.settled",
                    to: "orders.created",
                    correlation: .header("x-correlation-id")
                ),
            ]
        )
        #expect(
            set.slos == [SLODefinition(name: "payment-p99", flow: "payment", quantile: 0.99, threshold: .seconds(2))]
        )
        var limits = AnalyzerLimits()
        limits.maxTypesPerTopic = 20
        limits.vanishedGroupRetention = .seconds(600)
        #expect(set.limits == limits)
        #expect(set.isDeadLetterTopic("orders.created.dead"))
        #expect(
            set.subscriptionTopics() == ["orders.created", #"^payments\..*$"#, "orders.created.dead", #"^.*\.dead$"#]
        )
    }

    @Test func singleFileSource() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "topics: [a.b]\n".write(toFile: "\(folder)/one.yaml", atomically: true, encoding: .utf8)
        let loaded = try AnalyzerLoader.load(.file(path: "\(folder)/one.yaml"))
        #expect(loaded.files == ["\(folder)/one.yaml"])
        #expect(loaded.set.topics == [.name("a.b")])
        #expect(loaded.set.deadLetterPatterns == AnalyzerSet.defaultDeadLetterPatterns)
    }

    @Test func emptyFolderAndMissingFileAreReported() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(throws: AnalyzerErrors.self) { try AnalyzerLoader.load(.directory(path: folder)) }
        do {
            _ = try AnalyzerLoader.load(.directory(path: folder))
        } catch {
            #expect(
                error.errors.map(\.description) == [
                    "\(folder): expected at least one *.yaml or *.yml file in the folder, found none"
                ]
            )
        }
        do {
            _ = try AnalyzerLoader.load(.file(path: "\(folder)/missing.yaml"))
            Issue.record("a missing file loaded")
        } catch {
            #expect(error.errors.first?.file == "\(folder)/missing.yaml")
            #expect(error.errors.first?.line == nil)
        }
    }

    @Test func patternTopicsAnalyzeMatchingNames() throws {
        let yaml = """
            topics: ["learning.*", exercise.graded, "progress.update?"]
            groups:
              - group: "agent-*"
                topics: [learning.requested, progress.updated]
            flows:
              - name: lesson
                from: learning.requested
                to: learning.generated
            """
        let set = try AnalyzerLoader.load(yaml: yaml, file: "p.yaml").set
        #expect(
            set.topics == [
                .pattern(TopicPattern("learning.*")), .name("exercise.graded"),
                .pattern(TopicPattern("progress.update?")),
            ]
        )
        #expect(set.groups.first?.group == .pattern(TopicPattern("agent-*")))
        #expect(set.isAnalyzed(topic: "learning.anything.at.all"))
        #expect(!set.isAnalyzed(topic: "progress.updated.dlq"))
        #expect(set.subscriptionTopics().prefix(3) == [#"^learning\..*$"#, "exercise.graded", #"^progress\.update.$"#])
    }

    // MARK: - Errors

    /// One valid document that each error case extends.
    static let prefix = """
        topics: [t.a, t.b]
        flows:
          - name: f
            from: t.a
            to: t.b
        """

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        let name: String
        let yaml: String
        let description: String
        var testDescription: String { name }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(
            name: "unknown top-level key",
            yaml: prefix + "\nflowz: []",
            description:
                "f.yaml:6: flowz: unknown key, expected one of topics, dead_letters, groups, flows, slos, limits"
        ),
        ErrorCase(
            name: "unknown nested key",
            yaml: prefix + "\n    timout: 5s",
            description:
                "f.yaml:6: flows[0].timout: unknown key, expected one of name, from, to, from_type, to_type, correlation, timeout"
        ),
        ErrorCase(
            name: "wrong type: mapping for a list",
            yaml: prefix + "\ngroups: {group: g}",
            description: "f.yaml:6: groups: expected a list of watched groups, got a mapping"
        ),
        ErrorCase(
            name: "wrong type: scalar for a mapping",
            yaml: prefix + "\nlimits: 5",
            description: #"f.yaml:6: limits: expected a mapping of limits, got "5""#
        ),
        ErrorCase(
            name: "wrong type: list for a string",
            yaml: prefix + "\n  - name: [g]\n    from: t.a\n    to: t.b",
            description:
                "f.yaml:6: flows[1].name: expected a name of lowercase letters, digits, '_' and '-', got a list"
        ),
        ErrorCase(
            name: "bad duration",
            yaml: prefix + "\n    timeout: soon",
            description: #"f.yaml:6: flows[0].timeout: expected a duration such as 500ms, 5s, 1m or 1h30m, got "soon""#
        ),
        ErrorCase(
            name: "zero duration",
            yaml: prefix + "\n    timeout: 0s",
            description: #"f.yaml:6: flows[0].timeout: expected a duration such as 500ms, 5s, 1m or 1h30m, got "0s""#
        ),
        ErrorCase(
            name: "bad correlation",
            yaml: prefix + "\n    correlation: by-magic",
            description:
                #"f.yaml:6: flows[0].correlation: expected trace-id, data.<path.with.dots> or header:<name>, got "by-magic""#
        ),
        ErrorCase(
            name: "empty data path",
            yaml: prefix + "\n    correlation: data.a..b",
            description:
                #"f.yaml:6: flows[0].correlation: expected trace-id, data.<path.with.dots> or header:<name>, got "data.a..b""#
        ),
        ErrorCase(
            name: "bad flow name",
            yaml: prefix + "\n  - name: Grading\n    from: t.a\n    to: t.b",
            description:
                #"f.yaml:6: flows[1].name: expected a name of lowercase letters, digits, '_' and '-', got "Grading""#
        ),
        ErrorCase(
            name: "missing required key",
            yaml: prefix + "\n  - name: g\n    from: t.a",
            description:
                "f.yaml:6: flows[1].to: missing; expected a topic name (letters, digits, '.', '_' and '-', at most 249 characters)"
        ),
        ErrorCase(
            name: "flow topic not analyzed",
            yaml: prefix + "\n  - name: g\n    from: t.a\n    to: t.c",
            description:
                #"f.yaml:8: flows[1].to: expected an analyzed topic (listed under topics or matched by a topic pattern), got "t.c""#
        ),
        ErrorCase(
            name: "duplicate flow in one file",
            yaml: prefix + "\n  - name: f\n    from: t.a\n    to: t.b",
            description: #"f.yaml:6: flows[1].name: flow "f" is defined twice; first at f.yaml:3"#
        ),
        ErrorCase(
            name: "SLO flow missing",
            yaml: prefix + "\nslos:\n  - name: s\n    flow: nope\n    quantile: 0.9\n    threshold: 1s",
            description: #"f.yaml:8: slos[0].flow: expected one of the flows f, got "nope""#
        ),
        ErrorCase(
            name: "quantile out of range",
            yaml: prefix + "\nslos:\n  - name: s\n    flow: f\n    quantile: 1\n    threshold: 1s",
            description:
                #"f.yaml:9: slos[0].quantile: expected a quantile between 0 and 1 (exclusive), such as 0.95, got "1""#
        ),
        ErrorCase(
            name: "quantile not a number",
            yaml: prefix + "\nslos:\n  - name: s\n    flow: f\n    quantile: high\n    threshold: 1s",
            description:
                #"f.yaml:9: slos[0].quantile: expected a quantile between 0 and 1 (exclusive), such as 0.95, got "high""#
        ),
        ErrorCase(
            name: "group topic not analyzed",
            yaml: prefix + "\ngroups:\n  - group: g\n    topics: [t.a, t.z]",
            description:
                #"f.yaml:8: groups[0].topics[1]: expected an analyzed topic (listed under topics or matched by a topic pattern), got "t.z""#
        ),
        ErrorCase(
            name: "group without topics",
            yaml: prefix + "\ngroups:\n  - group: g\n    topics: []",
            description: "f.yaml:8: groups[0].topics: expected at least one topic name, got an empty list"
        ),
        ErrorCase(
            name: "dead-letter source not analyzed",
            yaml: prefix + "\ndead_letters:\n  topics:\n    - topic: t.a.dlq.x\n      source: t.q",
            description:
                #"f.yaml:9: dead_letters.topics[0].source: expected an analyzed topic (listed under topics or matched by a topic pattern), got "t.q""#
        ),
        ErrorCase(
            name: "limit not positive",
            yaml: prefix + "\nlimits:\n  duplicate_window: -1",
            description: #"f.yaml:7: limits.duplicate_window: expected a positive whole number, got "-1""#
        ),
        ErrorCase(
            // Found by the analyzer-file fuzz target: Yams' base-60 integers overflowed and trapped.
            name: "limit with a colon (a base-60 number in YAML 1.1)",
            yaml: prefix + "\nlimits:\n  status_window: 1:0:0:0:0:0:0:0:0:0:0:0",
            description:
                #"f.yaml:7: limits.status_window: expected a positive whole number, got "1:0:0:0:0:0:0:0:0:0:0:0""#
        ),
        ErrorCase(
            name: "bad topic name",
            yaml: "topics: [t.a, \"t b\"]",
            description:
                #"f.yaml:1: topics[1]: expected a topic name or a glob with * and ? (letters, digits, '.', '_', '-'), got "t b""#
        ),
        ErrorCase(
            name: "empty topics",
            yaml: "topics: []\nflows: []",
            description:
                "f.yaml:1: topics: expected at least one topic name or pattern across all analyzer files, got none"
        ),
        ErrorCase(
            name: "empty file",
            yaml: "",
            description:
                "f.yaml:1: topics: expected at least one topic name or pattern across all analyzer files, got none"
        ),
        ErrorCase(
            name: "not a mapping",
            yaml: "- t.a",
            description: "f.yaml:1: expected a mapping of analyzer keys, got a list"
        ),
    ]

    @Test(arguments: errorCases)
    func eachErrorNamesFileLineAndKey(_ errorCase: ErrorCase) {
        #expect(loadErrors(errorCase.yaml).map(\.description) == [errorCase.description])
    }

    @Test func errorFieldsAreSeparate() throws {
        let error = try #require(loadErrors(Self.prefix + "\n    timeout: soon").first)
        #expect(error.file == "f.yaml")
        #expect(error.line == 6)
        #expect(error.keyPath == "flows[0].timeout")
        #expect(error.message == #"expected a duration such as 500ms, 5s, 1m or 1h30m, got "soon""#)
    }

    @Test func yamlSyntaxErrorHasItsLine() throws {
        let errors = loadErrors("topics:\n  - t.a\n flows: [\n")
        let error = try #require(errors.first)
        #expect(errors.count == 1)
        #expect(error.file == "f.yaml")
        #expect(error.line == 3)
        #expect(error.keyPath.isEmpty)
        #expect(error.message.hasPrefix("invalid YAML: "))
        #expect(error.description.hasPrefix("f.yaml:3: invalid YAML: "))
    }

    @Test func duplicateYAMLKeyIsASyntaxError() throws {
        let errors = loadErrors("topics: [t.a]\ntopics: [t.b]\n")
        #expect(errors.map(\.description) == [#"f.yaml:1: invalid YAML: duplicate key "topics" in a mapping"#])
    }

    @Test func everyErrorIsCollected() {
        let yaml = """
            topics: [t.a]
            groups:
              - group: g
                topics: [t.z]
            flows:
              - name: f
                from: t.a
                to: t.b
                timeout: soon
                correlation: magic
                colour: blue
            slos:
              - name: s
                flow: nope
                quantile: 2
                threshold: fast
            """
        #expect(
            loadErrors(yaml).map { "\($0.line ?? 0) \($0.keyPath)" } == [
                "4 groups[0].topics[0]",
                "8 flows[0].to",
                "9 flows[0].timeout",
                "10 flows[0].correlation",
                "11 flows[0].colour",
                "14 slos[0].flow",
                "15 slos[0].quantile",
                "16 slos[0].threshold",
            ]
        )
    }

    // MARK: - Merging

    @Test func duplicateFlowAcrossFilesNamesBothFiles() {
        let second = """
            flows:
              - name: f
                from: t.a
                to: t.b
            """
        #expect(
            loadErrors([(file: "a.yaml", yaml: Self.prefix), (file: "b.yaml", yaml: second)]).map(\.description) == [
                #"b.yaml:2: flows[0].name: flow "f" is defined twice; first at a.yaml:3"#
            ]
        )
    }

    @Test func duplicateGroupSLOAndLimitsAcrossFilesNameBothFiles() {
        let first =
            Self.prefix + """

                groups:
                  - group: g
                    topics: [t.a]
                slos:
                  - name: s
                    flow: f
                    quantile: 0.5
                    threshold: 1s
                limits:
                  status_window: 5
                """
        let second = """
            groups:
              - group: g
                topics: [t.b]
            slos:
              - name: s
                flow: f
                quantile: 0.9
                threshold: 1s
            limits:
              status_window: 6
            """
        #expect(
            loadErrors([(file: "a.yaml", yaml: first), (file: "b.yaml", yaml: second)]).map(\.description) == [
                #"b.yaml:2: groups[0]: group "g" is defined twice; first at a.yaml:7"#,
                #"b.yaml:5: slos[0].name: SLO "s" is defined twice; first at a.yaml:10"#,
                "b.yaml:9: limits: limits may be set in one file only; already set at a.yaml:14",
            ]
        )
    }

    @Test func topicsMayComeFromAnotherFile() throws {
        let loaded = try AnalyzerLoader.load(documents: [
            (file: "a.yaml", yaml: "topics: [t.a, t.a]"),
            (file: "b.yaml", yaml: "topics: [t.b, t.a]\nflows:\n  - name: f\n    from: t.a\n    to: t.b"),
        ])
        #expect(loaded.set.topics == [.name("t.a"), .name("t.b")])
        #expect(loaded.set.flows.map(\.name) == ["f"])
    }

    @Test func errorsAreOrderedByFileThenLine() {
        let errors = loadErrors([
            (file: "b.yaml", yaml: "topics: [t.a]\nflows: 5"),
            (file: "a.yaml", yaml: "flows: 6\ntopics: 7"),
        ])
        #expect(errors.map(\.location) == ["b.yaml:2", "a.yaml:1", "a.yaml:2"])
    }
}
