import Foundation
import Testing

@testable import FlowmeterApp

/// `flowmeter check` with analyzer files.
@Suite struct AnalyzerSummaryTests {
    static let builtInSummary =
        "analyzers: <built-in>/learnflow.yaml — 6 topics, 7 dead-letter topics, 4 groups (+ flowmeter's own), 3 flows, 1 SLO"

    @Test func checkPrintsTheBuiltInSummaryAfterTheConfiguration() {
        let result = CheckRunner(resolver: makeResolver()).run(CommandLineValues(), format: .text)
        #expect(result.exitCode == 0)
        #expect(result.output.hasSuffix("\n\n\(Self.builtInSummary)\n"))
        #expect(result.output.contains("analyzers       built-in LearnFlow set  default"))
    }

    @Test func checkSummarizesAFolder() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "topics: [a.b]\nflows:\n  - name: f\n    from: a.b\n    to: a.b\n".write(
            toFile: "\(folder)/one.yaml",
            atomically: true,
            encoding: .utf8
        )
        let result = CheckRunner(resolver: makeResolver(paths: [folder: .directory]))
            .run(CommandLineValues([.analyzers: folder]), format: .text)
        #expect(result.exitCode == 0)
        #expect(
            result.output.hasSuffix(
                "\nanalyzers: \(folder)/one.yaml — 1 topic, 0 dead-letter topics, 0 groups (+ flowmeter's own), 1 flow, 0 SLOs\n"
            )
        )
    }

    @Test func checkFailsWithExitCode2OnABrokenFile() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "topics: [a.b]\nflows:\n  - name: f\n    from: a.b\n    to: a.c\n    timeout: soon\n".write(
            toFile: "\(folder)/bad.yaml",
            atomically: true,
            encoding: .utf8
        )
        let result = CheckRunner(resolver: makeResolver(paths: [folder: .directory]))
            .run(CommandLineValues([.analyzers: folder]), format: .text)
        #expect(result.exitCode == 2)
        #expect(result.output.isEmpty)
        #expect(
            result.problems == [
                #"\#(folder)/bad.yaml:5: flows[0].to: expected an analyzed topic (listed under topics or matched by a topic pattern), got "a.c""#,
                #"\#(folder)/bad.yaml:6: flows[0].timeout: expected a duration such as 500ms, 5s, 1m or 1h30m, got "soon""#,
            ]
        )
    }

    @Test func jsonHasAnAnalyzersObject() throws {
        let result = CheckRunner(resolver: makeResolver()).run(CommandLineValues(), format: .json)
        #expect(result.exitCode == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let analyzers = try #require(object["analyzers"] as? [String: Any])
        #expect((analyzers["topics"] as? [String])?.count == 6)
        #expect((analyzers["dead_letter_topics"] as? [Any])?.count == 7)
        #expect((analyzers["groups"] as? [Any])?.count == 4)
        let slos = try #require(analyzers["slos"] as? [[String: Any]])
        #expect(slos.first?["threshold"] as? String == "500ms")
        #expect(slos.first?["quantile"] as? Double == 0.95)
        let flows = try #require(analyzers["flows"] as? [[String: Any]])
        #expect(flows.map { $0["correlation"] as? String } == ["trace-id", "trace-id", "trace-id"])
        let limits = try #require(analyzers["limits"] as? [String: Any])
        #expect(limits["vanished_group_retention"] as? String == "5m")
    }
}
