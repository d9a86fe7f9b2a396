import Foundation
import Kafka
import Testing

/// The built binary end to end: `flowmeter dev-kafka` + `flowmeter run` + records produced with kcat (requests,
/// Dapr DLQ copies, malformed records) and, where the record timestamp must be controlled (kcat cannot set it),
/// responses produced through the Kafka bridge. The test scrapes `/metrics`, checks exact counts and latency
/// buckets, and runs the exposition through `promtool check metrics`.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RunEndToEndTests {
    static let learnflowTopics = [
        "learning.requested", "lesson.generated", "exercise.submitted", "exercise.graded", "progress.updated",
        "course.completed",
    ]
    static let dlqTopic = "exercise.submitted.dlq.exercise-agent"

    @Test func runAnalyzesRequestsResponsesDeadLettersAndMalformedRecords() async throws {
        let kcat = try Harness.kcat()
        let promtool = try Harness.promtool()
        let broker = try DevKafkaProcess(
            arguments: Self.learnflowTopics.flatMap { ["--topic", "\($0):3"] } + ["--topic", "\(Self.dlqTopic):1"]
        )
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: [
            "run", "--brokers", broker.bootstrapServers, "--http", "127.0.0.1:\(port)", "--from", "earliest",
            "--analyzers", Harness.repositoryRoot.appendingPathComponent("analyzers").path,
            "--lag-interval", "1s", "--flush-interval", "1s", "--kafka-property", "fetch.wait.max.ms=10",
        ])
        let http = HTTPProbe(port: port)
        try await http.waitUntilReady(timeout: .seconds(60), daemon: daemon)

        // 10 grading requests through kcat: Dapr envelopes with a traceparent per request.
        let traces = (0..<10).map { String(format: "%032x", 0xA000 + $0) }
        let requests = traces.enumerated().map { index, trace in
            "learner-\(index)|"
                + Dapr.envelope(
                    id: "req-\(index)",
                    topic: "exercise.submitted",
                    source: "frontend",
                    trace: trace,
                    data: "{\"submissionId\":\"s-\(index)\"}"
                )
        }
        try Harness.produce(kcat, broker: broker.bootstrapServers, topic: "exercise.submitted", lines: requests)

        // Read them back to learn their record timestamps (set by kcat's producer).
        let stamps = try await Harness.timestamps(
            of: "exercise.submitted",
            count: 10,
            bootstrap: broker.bootstrapServers
        )
        let requestByTrace = Dictionary(uniqueKeysWithValues: stamps.map { ($0.trace, $0) })

        // Responses on exercise.graded at exact latencies after their requests.
        let latencies: [Int64] = [4, 30, 80, 120, 200, 300, 450, 700, 1500, 4000]
        let producer = try KafkaProducer(
            config: KafkaClientConfig(bootstrapServers: broker.bootstrapServers),
            logger: quietLogger
        )
        defer { producer.close() }
        for (index, trace) in traces.enumerated() {
            let request = try #require(requestByTrace[trace])
            _ = try await producer.deliver(
                ProducerMessage(
                    topic: "exercise.graded",
                    key: Array("learner-\(index)".utf8),
                    value: Array(
                        Dapr.envelope(
                            id: "resp-\(index)",
                            topic: "exercise.graded",
                            source: "exercise-agent",
                            trace: trace,
                            data: "{\"score\":1}"
                        ).utf8
                    ),
                    timestampMs: request.timestampMs + latencies[index]
                )
            )
        }

        // Two subscribers' worth of Dapr DLQ copies of request 0 through kcat, with Dapr's headers.
        let original = try #require(requestByTrace[traces[0]])
        let dlqHeaders = [
            "__topic=exercise.submitted", "__partition=\(original.partition)", "__offset=\(original.offset)",
            "__timestamp=\(original.timestampMs)", "__key=learner-0", "pubsubName=pubsub", "partitionKey=learner-0",
        ]
        try Harness.produce(
            kcat,
            broker: broker.bootstrapServers,
            topic: Self.dlqTopic,
            lines: [requests[0], requests[0]],
            headers: dlqHeaders
        )

        // Three malformed records, and one raw text record as Dapr writes it for rawPayload publishes.
        try Harness.produce(
            kcat,
            broker: broker.bootstrapServers,
            topic: "learning.requested",
            lines: ["k|{\"data\":{\"broken\"", "k|{\"specversion\":\"1.0\",", "k|[1,2,"]
        )
        try Harness.produce(
            kcat,
            broker: broker.bootstrapServers,
            topic: "course.completed",
            lines: ["k|hello"],
            headers: ["rawPayload=true"]
        )

        // Wait until all 26 records are analyzed.
        var metrics = Metrics(text: "")
        let end = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < end {
            metrics = Metrics(text: try await http.get("/metrics").body)
            if metrics.sum("flowmeter_events_total") >= 26 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(metrics.sum("flowmeter_events_total") == 26)
        #expect(
            metrics.value("flowmeter_events_total", ["topic": "exercise.submitted", "type": "com.dapr.event.sent"])
                == 10
        )
        #expect(
            metrics.value("flowmeter_events_total", ["topic": "exercise.graded", "type": "com.dapr.event.sent"]) == 10
        )
        #expect(metrics.value("flowmeter_events_total", ["topic": Self.dlqTopic, "type": "com.dapr.event.sent"]) == 2)
        #expect(metrics.value("flowmeter_events_total", ["topic": "learning.requested", "type": "malformed"]) == 3)
        #expect(metrics.value("flowmeter_events_total", ["topic": "course.completed", "type": "raw"]) == 1)
        #expect(
            metrics.value(
                "flowmeter_events_invalid_total",
                ["topic": "learning.requested", "reason": "malformed_json"]
            )
                == 3
        )
        #expect(metrics.sum("flowmeter_records_consumed_total") == 26)

        // Flow latency: every response matched, in the right buckets.
        #expect(metrics.value("flowmeter_flow_latency_seconds_count", ["flow": "grading"]) == 10)
        let expectedBuckets: [(String, Double)] = [
            ("0.001", 0), ("0.005", 1), ("0.025", 1), ("0.05", 2), ("0.1", 3), ("0.25", 5), ("0.5", 7), ("1", 8),
            ("2.5", 9), ("5", 10), ("+Inf", 10),
        ]
        for (le, count) in expectedBuckets {
            #expect(
                metrics.value("flowmeter_flow_latency_seconds_bucket", ["flow": "grading", "le": le]) == count,
                "le=\(le)"
            )
        }
        let sum = try #require(metrics.value("flowmeter_flow_latency_seconds_sum", ["flow": "grading"]))
        #expect(abs(sum - Double(latencies.reduce(0, +)) / 1000) < 1e-9)

        // Dead letters linked to their source topic.
        #expect(
            metrics.value(
                "flowmeter_deadletter_events_total",
                ["topic": "exercise.submitted", "dead_letter_topic": Self.dlqTopic]
            ) == 2
        )
        #expect(metrics.value("flowmeter_deadletter_delay_seconds_count", ["topic": "exercise.submitted"]) == 2)

        // Self-metrics and the exposition format.
        #expect(metrics.value("flowmeter_kafka_up", [:]) == 1)
        #expect(metrics.text.contains("flowmeter_build_info{version="))
        let lint = try Harness.run(promtool, ["check", "metrics"], input: metrics.text)
        #expect(lint.status == 0, "promtool: \(lint.stdout)\(lint.stderr)")
        #expect(lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool: \(lint.stdout)\(lint.stderr)")

        #expect(try await http.get("/healthz").status == 200)
        #expect(try await http.get("/readyz").status == 200)

        // SIGTERM drains: exit 0, and the processed offsets are committed for Flowmeter's group.
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: broker.bootstrapServers),
            logger: quietLogger
        )
        defer { admin.close() }
        let partitions = (0..<3).map { TopicPartition("exercise.submitted", Int32($0)) }
        let committed = try await admin.committedOffsets(group: "flowmeter", partitions: partitions)
        #expect(committed.values.compactMap { $0 }.reduce(0, +) == 10)
    }

    @Test func readyzExplainsWhyWhileKafkaIsUnreachable() async throws {
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: [
            "run", "--brokers", "127.0.0.1:1", "--http", "127.0.0.1:\(port)", "--lag-interval", "1s",
        ])
        let http = HTTPProbe(port: port)
        var response = HTTPProbe.Response(status: 0, body: "")
        let end = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < end {
            response = (try? await http.get("/readyz")) ?? response
            if response.body.contains("Kafka not reachable"), !response.body.contains("not checked yet") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(response.status == 503)
        #expect(response.body.contains("Kafka not reachable"))
        #expect(response.body.contains("no partition assignment"))
        #expect(try await http.get("/healthz").status == 200)
        let metrics = Metrics(text: try await http.get("/metrics").body)
        #expect(metrics.value("flowmeter_kafka_up", [:]) == 0)
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }
}
