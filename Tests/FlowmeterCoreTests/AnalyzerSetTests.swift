import FlowmeterCore
import Testing

@Suite struct AnalyzerSetTests {
    struct GlobCase: Sendable, CustomTestStringConvertible {
        let glob: String
        let name: String
        let matches: Bool
        var testDescription: String { "\(glob) ~ \(name) = \(matches)" }
    }

    static let globCases: [GlobCase] = [
        GlobCase(glob: "learning.requested", name: "learning.requested", matches: true),
        GlobCase(glob: "learning.requested", name: "learning.requested2", matches: false),
        GlobCase(glob: "*", name: "", matches: true),
        GlobCase(glob: "*", name: "anything.at.all", matches: true),
        GlobCase(glob: "*.dlq", name: "exercise.graded.dlq", matches: true),
        GlobCase(glob: "*.dlq", name: "exercise.graded.dlq.frontend", matches: false),
        GlobCase(glob: "*.dlq.*", name: "exercise.graded.dlq.frontend", matches: true),
        GlobCase(glob: "*.dlq.*", name: "exercise.graded.dlq", matches: false),
        GlobCase(glob: "*.dlq.*", name: ".dlq.", matches: true),
        GlobCase(glob: "progress.update?", name: "progress.updated", matches: true),
        GlobCase(glob: "progress.update?", name: "progress.update", matches: false),
        GlobCase(glob: "a*b*c", name: "abc", matches: true),
        GlobCase(glob: "a*b*c", name: "axxbyybzc", matches: true),
        GlobCase(glob: "a*b*c", name: "axxbyyc.d", matches: false),
        GlobCase(glob: "a.b", name: "aXb", matches: false),
        GlobCase(glob: "**", name: "x", matches: true),
        GlobCase(glob: "?", name: "", matches: false),
    ]

    @Test(arguments: globCases)
    func globMatching(_ globCase: GlobCase) {
        #expect(TopicPattern(globCase.glob).matches(globCase.name) == globCase.matches)
    }

    @Test(arguments: [
        ("*.dlq", #"^.*\.dlq$"#),
        ("progress.update?", #"^progress\.update.$"#),
        ("a+b(c)", #"^a\+b\(c\)$"#),
    ])
    func regularExpression(_ glob: String, _ expected: String) {
        #expect(TopicPattern(glob).regularExpression == expected)
    }

    @Test func subscriptionTopicsIncludeDeadLetterTopicsAndPatternsOnce() {
        let set = AnalyzerSet(
            topics: [.name("a.b"), .pattern(TopicPattern("c.*")), .name("a.b")],
            deadLetterTopics: [DeadLetterTopic(topic: "a.b.dlq.x", sourceTopic: "a.b", subscriber: "x")],
            deadLetterPatterns: [TopicPattern("*.dlq"), TopicPattern("*.dlq.*")]
        )
        #expect(set.subscriptionTopics() == ["a.b", #"^c\..*$"#, "a.b.dlq.x", #"^.*\.dlq$"#, #"^.*\.dlq\..*$"#])
    }
}
