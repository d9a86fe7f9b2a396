import FlowmeterCore
import Foundation
import Kafka
import Testing

/// `flowmeter simulate` into `flowmeter dev-kafka`, read back through the Kafka bridge (and kcat): every record a
/// Dapr envelope the decoder accepts, responses on their requests' traces, dead-letter copies with Dapr's
/// headers pointing at their originals, the subscriber groups committing, and the same seed giving the same
/// records.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct SimulateEndToEndTests {
    static let options = [
        "--rate", "300", "--learners", "20", "--failure-rate", "0.1", "--duration", "6s", "--report-interval", "2s",
    ]

    struct Run {
        var records: [ConsumerRecord]
        var output: String
        var committed: [String: Int64]
        var bootstrap: String
        var broker: DevKafkaProcess
    }

    /// Runs `simulate` with a seed against a fresh dev-kafka and reads every record back.
    static func simulate(seed: String) async throws -> Run {
        let broker = try DevKafkaProcess(
            arguments: LearnFlowCatalog.topics.flatMap { ["--topic", "\($0):3"] }
                + LearnFlowCatalog.deadLetterTopics.flatMap { ["--topic", "\($0.topic):1"] }
        )
        let simulator = try FlowmeterProcess(
            arguments: [
                "simulate", "--brokers", broker.bootstrapServers, "--seed", seed,
            ] + options
        )
        let status = await simulator.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "simulate: \(simulator.log)")
        let output = simulator.output
        let match = try #require(output.firstMatch(of: /done: produced (\d+) records/), "no summary in \(output)")
        let produced = try #require(Int(match.1))
        #expect(produced > 600, "\(output)")

        let consumer = try KafkaConsumer(
            config: KafkaClientConfig(
                bootstrapServers: broker.bootstrapServers,
                properties: [("auto.offset.reset", "earliest"), ("fetch.wait.max.ms", "10")]
            ),
            groupID: "readback-\(UInt32.random(in: 0...UInt32.max))",
            logger: quietLogger
        )
        defer { consumer.close() }
        try consumer.subscribe(topics: LearnFlowCatalog.allTopics)
        var records: [ConsumerRecord] = []
        let end = ContinuousClock.now + .seconds(30)
        while records.count < produced, ContinuousClock.now < end {
            records += try consumer.pollBatch(maxRecords: 1000, timeout: .milliseconds(100))
            await Task.yield()
        }
        #expect(records.count == produced)

        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: broker.bootstrapServers),
            logger: quietLogger
        )
        defer { admin.close() }
        var committed: [String: Int64] = [:]
        for (group, topics) in LearnFlowCatalog.groups {
            let partitions = topics.flatMap { topic in (0..<3).map { TopicPartition(topic, Int32($0)) } }
            let offsets = try await admin.committedOffsets(group: group, partitions: partitions)
            committed[group] = offsets.values.compactMap { $0 }.reduce(0, +)
        }
        return Run(
            records: records,
            output: output,
            committed: committed,
            bootstrap: broker.bootstrapServers,
            broker: broker
        )
    }

    /// (topic, id, type, key) in record timestamp order (ties by topic and id).
    static func sequence(_ records: [ConsumerRecord]) -> [String] {
        let decoder = CloudEventDecoder()
        return records.map { record in
            let event = decoder.decode(
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                timestampMs: record.timestampMs,
                headers: record.headers.map { RecordHeader(name: $0.name, value: $0.value) },
                key: record.key,
                value: record.value
            )
            return (
                record.timestampMs,
                "\(record.topic) \(event.id ?? "-") \(event.type ?? "-") \(String(decoding: record.key ?? [], as: UTF8.self))"
            )
        }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.1)
    }

    @Test func simulatedTrafficIsDaprTrafficAndTheSameSeedRepeatsIt() async throws {
        let kcat = try Harness.kcat()
        let first = try await Self.simulate(seed: "7")
        #expect(first.output.contains("seed 7"))
        #expect(first.output.contains("[00:02] produced"), "\(first.output)")
        #expect(first.output.contains("consumed: course-agent"))

        let decoder = CloudEventDecoder()
        var requests: [String: ConsumerRecord] = [:]
        var byPosition: [TopicPartition: [Int64: ConsumerRecord]] = [:]
        var responses = 0
        var deadLetters: [ConsumerRecord] = []
        for record in first.records.sorted(by: { $0.timestampMs < $1.timestampMs }) {
            byPosition[record.topicPartition, default: [:]][record.offset] = record
            let headers = record.headers.map { RecordHeader(name: $0.name, value: $0.value) }
            let event = decoder.decode(
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                timestampMs: record.timestampMs,
                headers: headers,
                key: record.key,
                value: record.value
            )
            #expect(event.parserClass == .cloudEvent)
            #expect(event.producerKind == .daprWrapped)
            #expect(event.invalidReason == nil)
            #expect(event.flags.isEmpty, "\(event.flags)")
            #expect(record.timestampType == .createTime)
            let key = try #require(record.key.map { String(decoding: $0, as: UTF8.self) })
            #expect(key.hasPrefix("learner-"))
            #expect(record.headers.first { $0.name == "partitionKey" }?.value == record.key)
            let trace = try #require(event.trace?.traceID)
            if event.role == .dlq {
                deadLetters.append(record)
                continue
            }
            #expect(event.topicAttribute == record.topic)
            #expect(event.source == LearnFlowCatalog.publisher[record.topic])
            switch record.topic {
            case LearnFlowCatalog.learningRequested, LearnFlowCatalog.exerciseSubmitted:
                requests[trace] = record
            default:
                let request = try #require(requests[trace], "\(record.topic) has no request on its trace")
                #expect(record.timestampMs > request.timestampMs)
                responses += 1
            }
        }
        #expect(responses > 200)
        #expect(
            Set(first.records.map(\.topic)).isSuperset(of: LearnFlowCatalog.topics.filter { $0 != "course.completed" })
        )

        // Dead-letter copies: the original's bytes and key, and Dapr's headers pointing at the original.
        #expect(deadLetters.count > 10)
        for copy in deadLetters {
            func header(_ name: String) -> String? {
                copy.headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
            }
            let topic = try #require(header("__topic"))
            let partition = try #require(header("__partition").flatMap { Int32($0) })
            let offset = try #require(header("__offset").flatMap { Int64($0) })
            let original = try #require(
                byPosition[TopicPartition(topic, partition)]?[offset],
                "no original at \(topic)[\(partition)]@\(offset)"
            )
            #expect(copy.value == original.value)
            #expect(copy.key == original.key)
            #expect(header("__key") == original.key.map { String(decoding: $0, as: UTF8.self) })
            #expect(header("__timestamp") == String(original.timestampMs))
            #expect(header("pubsubName") == "pubsub")
            #expect(copy.timestampMs > original.timestampMs)
            #expect(copy.topic.hasPrefix(topic + ".dlq."))
        }

        // kcat, an independent client, sees the same headers.
        let copy = try #require(deadLetters.first)
        let read = try Harness.run(
            kcat,
            ["-b", first.bootstrap, "-C", "-t", copy.topic, "-o", "beginning", "-e", "-q", "-f", "%h\n"]
        )
        #expect(read.stdout.contains("__topic="), "\(read.stdout)\(read.stderr)")
        #expect(read.stdout.contains("pubsubName=pubsub"))

        // The subscriber groups consumed and committed like Dapr sidecars.
        for group in LearnFlowCatalog.groupNames {
            #expect((first.committed[group] ?? 0) > 0, "\(group) committed nothing")
        }

        // The same seed: the same records (the later run's sequence starts with the earlier one's, as the runs
        // stop at slightly different points) – and what the generator computes offline for these options.
        try first.broker.stdin.fileHandleForWriting.close()
        let second = try await Self.simulate(seed: "7")
        let a = Self.sequence(first.records)
        let b = Self.sequence(second.records)
        let common = min(a.count, b.count) - 20  // the last few may share a timestamp with unproduced ones
        #expect(common > 600)
        #expect(Array(a.prefix(common)) == Array(b.prefix(common)))
        var generator = TrafficGenerator(
            parameters: SimulationParameters(learners: 20, rate: 300, seed: 7, failureRate: 0.1),
            epochMs: 0
        )
        let planned = (0..<(a.count + 200)).map { _ in generator.next() }
            .map {
                (
                    $0.timestampMs,
                    "\($0.topic) \($0.eventID) \($0.type) \(String(decoding: $0.key ?? [], as: UTF8.self))"
                )
            }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.1)
        #expect(Array(planned.prefix(common)) == Array(a.prefix(common)))
        try second.broker.stdin.fileHandleForWriting.close()
    }

    @Test func simulateStopsOnSIGTERMAfterFlushingAndRejectsBadOptions() async throws {
        let broker = try DevKafkaProcess(arguments: ["--exit-on-stdin-close"])
        let simulator = try FlowmeterProcess(arguments: [
            "simulate", "--brokers", broker.bootstrapServers, "--report-interval", "1s",
        ])
        let end = ContinuousClock.now + .seconds(30)
        while !simulator.output.contains("[00:02] produced"), simulator.process.isRunning, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(simulator.process.processIdentifier, SIGTERM)
        #expect(await simulator.waitForExit(timeout: .seconds(30)) == 0, "\(simulator.log)")
        let done = try #require(simulator.output.firstMatch(of: /done: produced (\d+) records .*acknowledged (\d+)/))
        #expect(Int(done.1) == Int(done.2), "every record produced was acknowledged: \(simulator.output)")
        #expect(simulator.output.contains(/seed \d+/), "a random seed is printed")
        try broker.stdin.fileHandleForWriting.close()

        let bad = try Harness.run(
            try Harness.flowmeterBinary(),
            ["simulate", "--rate", "0", "--slow-group", "billing", "--stall-group", "frontend:soon"]
        )
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("error: --rate:"))
        #expect(bad.stderr.contains("error: --slow-group \"billing\""))
        #expect(bad.stderr.contains("error: --stall-group \"frontend:soon\""))
    }
}
