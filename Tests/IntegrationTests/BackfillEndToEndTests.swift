import Foundation
import Kafka
import Postgres
import Testing

/// `flowmeter backfill --until-end` end to end: a LearnFlow backlog in `flowmeter dev-kafka`, a real PostgreSQL, the
/// built binary. The rollups must equal what the stream implies, every grading request must match its response
/// although requests and responses sit on different partitions (read apart), and a flow bound too small for the
/// backlog must be reported, not silently lose flows.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct BackfillEndToEndTests {
    static let requests = 3000

    /// The backlog: LearnFlowStream's requests, responses (each on another partition than its request) and
    /// malformed records, 20 minutes old.
    static func backlog() throws -> (broker: DevKafkaProcess, stream: LearnFlowStream) {
        let broker = try DevKafkaProcess(
            arguments: RunEndToEndTests.learnflowTopics.flatMap { ["--topic", "\($0):3"] }
        )
        let stream = LearnFlowStream(requests: requests, partitions: 3)
        try Harness.produce(stream.messages(0..<requests), bootstrap: broker.bootstrapServers)
        return (broker, stream)
    }

    static func backfill(
        _ broker: DevKafkaProcess,
        postgres url: String,
        _ extra: [String] = []
    ) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        try Harness.run(
            try Harness.flowmeterBinary(),
            [
                "backfill", "--until-end", "--from", "earliest", "--brokers", broker.bootstrapServers,
                "--postgres", url, "--group", "backfill-test",
                "--analyzers", Harness.repositoryRoot.appendingPathComponent("analyzers").path,
            ] + extra
        )
    }

    static func storedFlows(_ url: String) throws -> [String: (completed: Int64, incomplete: Int64, evicted: Int64)] {
        let connection = try PQConnection.connect(url: url, logger: quietLogger)
        defer { connection.close() }
        var result: [String: (completed: Int64, incomplete: Int64, evicted: Int64)] = [:]
        for row in try connection.query(
            "SELECT flow, sum(completed)::bigint, sum(incomplete)::bigint, sum(evicted)::bigint FROM flowmeter.rollup_flows GROUP BY flow"
        ) {
            result[try row.string(0) ?? ""] = (try row.int64(1) ?? 0, try row.int64(2) ?? 0, try row.int64(3) ?? 0)
        }
        return result
    }

    static func pendingRows(_ url: String, flow: String) throws -> Int64 {
        let connection = try PQConnection.connect(url: url, logger: quietLogger)
        defer { connection.close() }
        return try connection.query(
            "SELECT count(*)::bigint FROM flowmeter.pending_flows WHERE flow = $1",
            [.string(flow)]
        ).first?.int64(0) ?? -1
    }

    @Test func backfillAnalyzesTheBacklogToItsEndAndMatchesEveryFlow() throws {
        let (broker, stream) = try Self.backlog()
        let url = try TestPostgres.freshDatabase("backfill")
        let result = try Self.backfill(broker, postgres: url)
        #expect(result.status == 0, "backfill failed: \(result.stderr)")
        let records = stream.recordCount(0..<Self.requests)
        #expect(result.stdout.contains("backfill complete: \(records) records from"), "\(result.stdout)")
        #expect(!result.stdout.contains("WARNING"), "\(result.stdout)")

        #expect(try TestPostgres.events(url) == stream.expectedEvents(0..<Self.requests))
        #expect(TestPostgres.storedOffsetSum(url) == records)
        let flows = try Self.storedFlows(url)
        // Every grading request matched its response, in its own window.
        #expect(flows["grading"]?.completed == Int64(Self.requests))
        #expect(flows["grading"]?.evicted == 0)
        let grading = try TestPostgres.flows(url).filter { $0.key.flow == "grading" }
        #expect(grading == stream.expectedFlows(0..<Self.requests).filter { $0.key.flow == "grading" })
        // submission-to-progress never gets a response: each request expired on the flow clock or is stored as
        // pending for `run` to go on with; none lost.
        let pending = try Self.pendingRows(url, flow: "submission-to-progress")
        let progress = flows["submission-to-progress"]
        #expect((progress?.evicted ?? 0) == 0)
        #expect(
            (progress?.incomplete ?? 0) + pending == Int64(Self.requests),
            "incomplete \(progress as Any), pending \(pending)"
        )
    }

    /// A partition with no offset in PostgreSQL starts at the group's Kafka commit (which the intake reads in the
    /// assignment), the others at `--from earliest`: the records before the commit are not analyzed, all others are.
    @Test func aPartitionWithoutAStoredOffsetStartsAtTheGroupsKafkaCommit() async throws {
        let (broker, stream) = try Self.backlog()
        // A partition of the requests topic with records past the commit (the stream leaves some empty).
        let admin = try KafkaAdmin(
            config: KafkaClientConfig(bootstrapServers: broker.bootstrapServers),
            logger: quietLogger
        )
        var chosen: TopicPartition?
        for index: Int32 in 0..<3 {
            let partition = TopicPartition("learning.requested", index)
            let marks = try await admin.watermarks(partition)
            if marks.low == 0, marks.high >= 20 { chosen = partition }
        }
        admin.close()
        let committed = try #require(chosen)
        let committer = try KafkaConsumer(
            config: KafkaClientConfig(bootstrapServers: broker.bootstrapServers),
            groupID: "backfill-test",
            logger: quietLogger
        )
        try committer.commit(processed: [committed: 9])  // the next offset to read is 10
        #expect(try committer.committed([committed])[committed] == 10)
        committer.close()

        let url = try TestPostgres.freshDatabase("backfill_commit")
        let result = try Self.backfill(broker, postgres: url)
        #expect(result.status == 0, "backfill failed: \(result.stderr)")
        let records = stream.recordCount(0..<Self.requests)
        #expect(result.stdout.contains("backfill complete: \(records - 10) records from"), "\(result.stdout)")
        let analyzed = try TestPostgres.events(url).values.reduce(0, +)
        #expect(analyzed == stream.expectedEvents(0..<Self.requests).values.reduce(0, +) - 10)
        // Every partition's next offset stored is its end, that one's included.
        #expect(TestPostgres.storedOffsetSum(url) == records)
    }

    @Test func aFlowBoundTooSmallForTheBacklogIsReported() throws {
        let (broker, stream) = try Self.backlog()
        let url = try TestPostgres.freshDatabase("backfill_bound")
        let result = try Self.backfill(broker, postgres: url, ["--max-pending-flow-requests", "50"])
        #expect(result.status == 0, "backfill failed: \(result.stderr)")
        #expect(
            result.stdout.contains("WARNING: the flow bound of 50 (--max-pending-flow-requests) evicted"),
            "\(result.stdout)"
        )
        // Events are exact whatever happens to flows, and every grading request is accounted for once.
        #expect(try TestPostgres.events(url) == stream.expectedEvents(0..<Self.requests))
        let grading = try #require(try Self.storedFlows(url)["grading"])
        #expect(grading.evicted > 0)
        #expect(grading.completed + grading.incomplete + grading.evicted <= Int64(Self.requests))
        #expect(grading.completed < Int64(Self.requests))

        let invalid = try Harness.run(
            try Harness.flowmeterBinary(),
            ["backfill", "--until-end", "--brokers", broker.bootstrapServers, "--max-pending-flow-requests", "0"]
        )
        #expect(invalid.status != 0)
        #expect(invalid.stderr.contains("--max-pending-flow-requests must be a positive whole number, got 0"))
    }
}
