import FlowmeterCore
import Foundation
import Testing

@testable import FlowmeterApp

@Suite struct SimulationSettingsTests {
    @Test func defaultsAndValidValues() throws {
        let defaults = try SimulationSettings.parse(
            learners: nil,
            rate: nil,
            duration: nil,
            seed: nil,
            failureRate: nil,
            slowGroups: [],
            stallGroups: [],
            reportInterval: nil
        )
        #expect(defaults == SimulationSettings())
        #expect(defaults.learners == 1000 && defaults.rate == 200 && defaults.failureRate == 0.01)
        #expect(defaults.duration == nil && defaults.seed == nil)

        let settings = try SimulationSettings.parse(
            learners: 50,
            rate: "120.5",
            duration: "1m30s",
            seed: "18446744073709551615",
            failureRate: "0.2",
            slowGroups: ["frontend", "exercise-agent:12.5"],
            stallGroups: ["progress-agent", "course-agent:45s"],
            reportInterval: "10s"
        )
        #expect(settings.learners == 50)
        #expect(settings.rate == 120.5)
        #expect(settings.duration == .seconds(90))
        #expect(settings.seed == UInt64.max)
        #expect(settings.failureRate == 0.2)
        #expect(settings.slowGroups == [.init(name: "frontend", rate: nil), .init(name: "exercise-agent", rate: 12.5)])
        #expect(
            settings.stalledGroups == [
                .init(name: "progress-agent", after: .seconds(20)), .init(name: "course-agent", after: .seconds(45)),
            ]
        )
        #expect(settings.reportInterval == .seconds(10))

        // Slow groups without a rate get half of what their topics receive; stalls become milliseconds.
        let parameters = settings.parameters(seed: 9)
        let input = TrafficGenerator.estimate(parameters).inputRate(of: "frontend", rate: 120.5)
        #expect(abs((parameters.slowGroups["frontend"] ?? 0) - input / 2) < 0.01)
        #expect(parameters.slowGroups["exercise-agent"] == 12.5)
        #expect(parameters.stalledGroups == ["progress-agent": 20_000, "course-agent": 45_000])
    }

    @Test func everyProblemIsReportedWithItsFlag() {
        do {
            _ = try SimulationSettings.parse(
                learners: 0,
                rate: "fast",
                duration: "soon",
                seed: "-1",
                failureRate: "1.5",
                slowGroups: ["billing", "frontend:0"],
                stallGroups: ["course-agent:later"],
                reportInterval: "100ms"
            )
            Issue.record("expected errors")
        } catch {
            let problems = error.problems
            #expect(problems.count == 9, "\(problems)")
            for flag in [
                "--learners", "--rate", "--duration", "--seed", "--failure-rate", "--report-interval",
                "--slow-group \"billing\"", "--slow-group \"frontend:0\"", "--stall-group \"course-agent:later\"",
            ] {
                #expect(problems.contains { $0.hasPrefix(flag) }, "\(flag) missing in \(problems)")
            }
            #expect(problems.contains { $0.contains("one of course-agent, frontend, exercise-agent, progress-agent") })
        }
    }

    @Test func theSimulatedPlatformIsTheBuiltInAnalyzerSet() throws {
        let analyzers = try AnalyzerLoader.load(.builtIn).set
        #expect(analyzers.topics.map(\.description) == LearnFlowCatalog.topics)
        #expect(analyzers.deadLetterTopics.map(\.topic) == LearnFlowCatalog.deadLetterTopics.map(\.topic))
        #expect(analyzers.deadLetterTopics.map(\.sourceTopic) == LearnFlowCatalog.deadLetterTopics.map(\.source))
        #expect(analyzers.deadLetterTopics.map(\.subscriber) == LearnFlowCatalog.deadLetterTopics.map(\.subscriber))
        #expect(analyzers.groups.map(\.group.description) == LearnFlowCatalog.groupNames)
        #expect(analyzers.groups.map(\.topics) == LearnFlowCatalog.groups.map(\.topics))
        #expect(
            analyzers.flows.map { [$0.name, $0.from, $0.to] } == [
                ["lesson", LearnFlowCatalog.learningRequested, LearnFlowCatalog.lessonGenerated],
                ["grading", LearnFlowCatalog.exerciseSubmitted, LearnFlowCatalog.exerciseGraded],
                ["submission-to-progress", LearnFlowCatalog.exerciseSubmitted, LearnFlowCatalog.progressUpdated],
            ]
        )
    }

    @Test func reportLines() {
        var previous = SimulationSnapshot()
        previous.produced = ["learning.requested": 10]
        var current = previous
        current.produced = ["learning.requested": 30, "lesson.generated": 15, "exercise.graded.dlq.frontend": 2]
        current.consumed = ["frontend": 12]
        current.stalled = ["progress-agent"]
        let line = SimulationReporter.line(current, previous: previous, elapsed: .seconds(65), window: .seconds(5))
        #expect(line.hasPrefix("[01:05] produced 37 (7.4/s): learning.requested 20, lesson.generated 15,"))
        #expect(line.contains("dead letters 2 | consumed: course-agent 0, frontend 12,"))
        #expect(line.hasSuffix("progress-agent 0 (stalled)"))
        #expect(SimulationReporter.finalLine(current).hasPrefix("done: produced 47 records (2 dead-letter copies)"))
    }
}

@Suite struct DemoSummaryTests {
    static let exposition = """
        # HELP flowmeter_events_total Records analyzed.
        # TYPE flowmeter_events_total counter
        flowmeter_events_total{topic="exercise.submitted",type="com.dapr.event.sent"} 200
        flowmeter_events_total{topic="exercise.graded",type="com.dapr.event.sent"} 190
        flowmeter_events_total{topic="learning.requested",type="malformed"} 10
        flowmeter_flow_latency_seconds_bucket{flow="grading",le="0.1"} 10
        flowmeter_flow_latency_seconds_bucket{flow="grading",le="0.25"} 150
        flowmeter_flow_latency_seconds_bucket{flow="grading",le="0.5"} 185
        flowmeter_flow_latency_seconds_bucket{flow="grading",le="1"} 190
        flowmeter_flow_latency_seconds_bucket{flow="grading",le="+Inf"} 190
        flowmeter_flow_latency_seconds_count{flow="grading"} 190
        flowmeter_flow_incomplete_total{flow="grading"} 4
        flowmeter_deadletter_events_total{topic="exercise.submitted",dead_letter_topic="exercise.submitted.dlq.exercise-agent"} 3
        flowmeter_deadletter_events_total{topic="exercise.submitted",dead_letter_topic="a \\"quoted\\" name"} 1
        flowmeter_consumergroup_lag_messages{group="exercise-agent",topic="exercise.submitted",partition="0"} 7
        flowmeter_consumergroup_lag_messages{group="exercise-agent",topic="exercise.submitted",partition="1"} 5
        flowmeter_consumergroup_lag_seconds{group="exercise-agent",topic="exercise.submitted",partition="0"} 1.5
        flowmeter_consumergroup_lag_seconds{group="exercise-agent",topic="exercise.submitted",partition="1"} 3.25
        flowmeter_consumergroup_status{group="exercise-agent",status="ok"} 0
        flowmeter_consumergroup_status{group="exercise-agent",status="stalled"} 1
        flowmeter_consumergroup_no_commit{group="frontend",topic="lesson.generated",partition="0"} 1
        flowmeter_rollup_last_flush_timestamp_seconds 1000
        flowmeter_rollup_rows_written_total 42
        flowmeter_postgres_up 1
        """

    @Test func parsesTheExpositionAndComputesTheRows() throws {
        let samples = MetricSamples(parsing: Self.exposition)
        #expect(samples.sum("flowmeter_events_total") == 400)
        #expect(samples.sum("flowmeter_events_total", matching: ["topic": "exercise.submitted"]) == 200)
        #expect(
            samples.series("flowmeter_deadletter_events_total").map { $0.labels["dead_letter_topic"] }.last
                == "a \"quoted\" name"
        )
        let earlier = MetricSamples(
            parsing: Self.exposition.replacingOccurrences(
                of: "type=\"com.dapr.event.sent\"} 200",
                with: "type=\"com.dapr.event.sent\"} 100"
            )
        )
        let summary = DemoSummary.make(
            current: samples,
            rateBase: (earlier, 5),
            latencyBase: nil,
            elapsed: .seconds(75),
            flows: ["grading", "lesson"],
            topics: ["exercise.submitted", "course.completed"],
            groups: ["exercise-agent", "frontend", "progress-agent"],
            postgresEnabled: true,
            now: Date(timeIntervalSince1970: 1003)
        )
        #expect(summary.eventsPerSecond == 20)
        #expect(summary.eventsTotal == 400)
        let grading = try #require(summary.flows.first)
        #expect(grading.completed == 190 && grading.incomplete == 4)
        // p50: rank 95 in (0.1, 0.25] holding 140 → 0.1 + 0.15 · 85/140; p95: rank 180.5 in (0.25, 0.5].
        let p50: Double = try #require(grading.p50)
        let p95: Double = try #require(grading.p95)
        let expectedP50: Double = 0.1 + 0.15 * 85.0 / 140.0
        let expectedP95: Double = 0.25 + 0.25 * 30.5 / 35.0
        #expect(abs(p50 - expectedP50) < 1e-9)
        #expect(abs(p95 - expectedP95) < 1e-9)
        #expect(summary.flows[1].p95 == nil)
        #expect(summary.deadLetters[0].deadLettered == 4 && summary.deadLetters[0].ratio == 0.02)
        #expect(summary.deadLetters[1].ratio == nil)
        #expect(summary.groups[0].lagMessages == 12 && summary.groups[0].lagSeconds == 3.25)
        #expect(summary.groups[0].status == "stalled")
        #expect(summary.groups[1].status == "no commit" && summary.groups[1].lagMessages == nil)
        #expect(summary.groups[2].status == "-")
        #expect(summary.postgres == "last flush 3s ago, 42 rows written")

        let lines = summary.render(simulator: SimulationSnapshot(), latencyWindow: "last 30s")
        #expect(lines[0] == "flowmeter demo  01:15  events 20/s  analyzed 400  produced 0")
        #expect(lines.contains { $0.hasPrefix("grading") && $0.contains("191 ms") && $0.contains("468 ms") })
        #expect(lines.contains { $0.hasPrefix("exercise.submitted") && $0.hasSuffix("2.00%") })
        #expect(lines.contains { $0.hasPrefix("exercise-agent") && $0.hasSuffix("stalled") })
        #expect(lines.last == "postgres: last flush 3s ago, 42 rows written")
    }

    @Test(arguments: [
        (0.5, [(0.1, 0.0), (0.25, 0.0), (Double.infinity, 0.0)], nil as Double?),
        (0.99, [(0.1, 5.0), (0.25, 10.0), (Double.infinity, 20.0)], 0.25),
        (0.5, [(0.1, 10.0), (0.25, 10.0), (Double.infinity, 10.0)], 0.05),
    ])
    func histogramQuantiles(_ q: Double, _ buckets: [(Double, Double)], _ expected: Double?) {
        #expect(histogramQuantile(q, buckets.map { (le: $0.0, count: $0.1) }) == expected)
    }
}
