import FlowmeterApp
import FlowmeterCore
import Foundation
import Postgres
import Testing

// MARK: - Fixture

/// Known rollups in a fresh database: minute windows w(-1) … w(3) from `base`.
private enum QueryFixture {
    /// 2023-11-14T22:14:00Z, a UTC minute.
    static let base: Int64 = 1_700_000_040_000

    /// The start of window `minute` (0 = `base`), epoch milliseconds.
    static func window(_ minute: Int64) -> Int64 { base + minute * 60_000 }

    /// The start of window `minute` as a date.
    static func date(_ minute: Int64, seconds: Double = 0) -> Date {
        Date(timeIntervalSince1970: Double(window(minute)) / 1000 + seconds)
    }

    static let created = "com.learnflow.order.created"
    static let cancelled = "com.learnflow.order.cancelled"
    static let paid = "com.learnflow.payment.done"

    static func write(_ connection: PQConnection) throws {
        var delta = RollupDelta()
        func event(_ minute: Int64, _ topic: String, _ type: String, _ events: Int64) {
            delta.events[EventKey(windowStartMs: window(minute), topic: topic, type: type)] = EventCounts(
                events: events,
                bytes: events * 100
            )
        }
        event(-1, "orders", created, 1000)  // before the range
        event(0, "orders", created, 10)
        event(0, "payments", paid, 5)
        event(1, "orders", created, 20)
        event(1, "orders", cancelled, 3)
        event(2, "payments", paid, 7)
        event(3, "orders", created, 100)  // at the range's (exclusive) end

        delta.flows[FlowKey(windowStartMs: window(0), flow: "grading")] = FlowCounts(
            completed: 100,
            incomplete: 2,
            negative: 1,
            latency: makeSketch((1...100).map(Double.init))
        )
        delta.flows[FlowKey(windowStartMs: window(1), flow: "grading")] = FlowCounts(
            completed: 100,
            incomplete: 3,
            latency: makeSketch((101...200).map(Double.init))
        )
        delta.flows[FlowKey(windowStartMs: window(3), flow: "grading")] = FlowCounts(
            completed: 1,
            latency: makeSketch([100_000])
        )
        delta.flows[FlowKey(windowStartMs: window(2), flow: "tutor")] = FlowCounts(
            completed: 3,
            evicted: 4,
            latency: makeSketch([5, 10, 2000])
        )
        delta.flows[FlowKey(windowStartMs: window(2), flow: "waiting")] = FlowCounts(incomplete: 4)

        delta.deadLetters[DeadLetterKey(windowStartMs: window(0), topic: "orders", deadLetterTopic: "orders.dlq")] =
            DeadLetterCounts(copies: 2, distinctOriginals: 2, delay: makeSketch([100, 200]))
        delta.deadLetters[DeadLetterKey(windowStartMs: window(1), topic: "orders", deadLetterTopic: "orders.dlq")] =
            DeadLetterCounts(copies: 2, distinctOriginals: 1, delay: makeSketch([300, 300]))
        delta.deadLetters[DeadLetterKey(windowStartMs: window(2), topic: "ghost", deadLetterTopic: "ghost.dlq")] =
            DeadLetterCounts(copies: 1, distinctOriginals: 1, delay: makeSketch([50]))
        delta.deadLetters[DeadLetterKey(windowStartMs: window(3), topic: "orders", deadLetterTopic: "orders.dlq")] =
            DeadLetterCounts(copies: 9, distinctOriginals: 9, delay: makeSketch([9000]))

        let writer = RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
        try writer.write(delta, nextOffsets: [])

        func lag(
            _ at: Date,
            _ group: String,
            _ topic: String,
            _ partition: Int,
            committed: Int64?,
            end: Int64,
            messages: Int64?,
            seconds: Double?,
            status: String
        ) throws {
            try connection.execute(
                """
                insert into flowmeter.consumer_lag (sampled_at, group_id, topic, partition, committed_offset,
                    log_start_offset, end_offset, lag_messages, lag_seconds, status)
                values ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9)
                """,
                [
                    .timestamp(microsecondsSinceEpoch: Int64(at.timeIntervalSince1970 * 1_000_000)), .string(group),
                    .string(topic), .int(partition), committed.map(PQValue.int64) ?? .null, .int64(end),
                    messages.map(PQValue.int64) ?? .null, seconds.map(PQValue.double) ?? .null, .string(status),
                ]
            )
        }
        try lag(
            date(0, seconds: 10),
            "grader",
            "orders",
            0,
            committed: 90,
            end: 100,
            messages: 10,
            seconds: 2.5,
            status: "warning"
        )
        try lag(
            date(1, seconds: 10),
            "grader",
            "orders",
            0,
            committed: 95,
            end: 100,
            messages: 5,
            seconds: 1.25,
            status: "ok"
        )
        try lag(
            date(3, seconds: 20),
            "grader",
            "orders",
            0,
            committed: 99,
            end: 100,
            messages: 1,
            seconds: 0.5,
            status: "ok"
        )  // after the range
        try lag(
            date(0, seconds: 10),
            "grader",
            "orders",
            1,
            committed: nil,
            end: 50,
            messages: nil,
            seconds: nil,
            status: "stopped"
        )
        try lag(
            date(1, seconds: 10),
            "tutor",
            "payments",
            0,
            committed: 7,
            end: 7,
            messages: 0,
            seconds: 0,
            status: "ok"
        )
    }

    /// Runs `body` with a migrated database holding the fixture.
    static func with<T>(_ body: (PQConnection) throws -> T) throws -> T {
        try RollupsTestDatabase.withMigratedDatabase { connection, _ in
            try write(connection)
            return try body(connection)
        }
    }

    /// The request for windows 0, 1 and 2.
    static func request(
        _ kind: QueryKind,
        from: Int64 = 0,
        to: Int64 = 3,
        topic: String? = nil,
        flow: String? = nil,
        group: String? = nil
    ) -> QueryRequest {
        QueryRequest(kind: kind, since: date(from), until: date(to), topic: topic, flow: flow, group: group)
    }
}

/// The cell as a number, for comparisons.
private func number(_ cell: QueryCell?) -> Double? {
    switch cell {
    case .integer(let value): Double(value)
    case .decimal(let value, _), .ratio(let value): value
    default: nil
    }
}

/// Whether `actual` is within 1% of `exact`.
private func near(_ actual: QueryCell?, _ exact: Double) -> Bool {
    guard let value = number(actual) else { return false }
    return abs(value - exact) <= exact * 0.01
}

private func texts(_ result: QueryResult, _ column: String) -> [String] {
    result.rows.indices.map { row in
        if case .text(let text) = result.cell(row, column) { return text }
        return "?"
    }
}

// MARK: - Queries against PostgreSQL

@Suite(.serialized)
struct QueryRunnerTests {
    @Test func eventsAggregateTheRangePerTopicAndType() throws {
        try QueryFixture.with { connection in
            let result = try QueryRunner.run(QueryFixture.request(.events), connection: connection)
            #expect(result.columns.map(\.name) == ["topic", "type", "events", "bytes", "events_per_s"])
            let expected: [[QueryCell]] = [
                [
                    .text("orders"), .text(QueryFixture.cancelled), .integer(3), .integer(300),
                    .decimal(3 / 180, places: 2),
                ],
                [
                    .text("orders"), .text(QueryFixture.created), .integer(30), .integer(3000),
                    .decimal(30 / 180, places: 2),
                ],
                [
                    .text("payments"), .text(QueryFixture.paid), .integer(12), .integer(1200),
                    .decimal(12 / 180, places: 2),
                ],
            ]
            #expect(result.rows == expected)
            let totals: [QueryCell] = [
                .text("total"), .text(""), .integer(45), .integer(4500), .decimal(45 / 180, places: 2),
            ]
            #expect(result.totals == totals)
        }
    }

    @Test func rangeIncludesSinceAndExcludesUntil() throws {
        try QueryFixture.with { connection in
            let late = try QueryRunner.run(QueryFixture.request(.events, from: 1, to: 3), connection: connection)
            #expect(late.rows.map { $0[2] } == [.integer(3), .integer(20), .integer(7)])
            let early = try QueryRunner.run(QueryFixture.request(.events, from: 0, to: 2), connection: connection)
            #expect(early.rows.map { $0[2] } == [.integer(3), .integer(30), .integer(5)])
            // A range ending one microsecond after a window's start includes it.
            let request = QueryRequest(
                kind: .events,
                since: QueryFixture.date(3),
                until: QueryFixture.date(3, seconds: 0.000_001)
            )
            let single = try QueryRunner.run(request, connection: connection)
            #expect(single.rows.map { $0[2] } == [.integer(100)])
            let empty = try QueryRunner.run(QueryFixture.request(.events, from: 4, to: 10), connection: connection)
            #expect(empty.rows.isEmpty)
        }
    }

    @Test func eventsFilterByTopic() throws {
        try QueryFixture.with { connection in
            let result = try QueryRunner.run(QueryFixture.request(.events, topic: "payments"), connection: connection)
            #expect(texts(result, "topic") == ["payments"])
            #expect(result.totals?[2] == .integer(12))
            let none = try QueryRunner.run(QueryFixture.request(.events, topic: "nope"), connection: connection)
            #expect(none.rows.isEmpty)
        }
    }

    @Test func flowsUseQuantilesOfTheMergedSketches() throws {
        try QueryFixture.with { connection in
            let result = try QueryRunner.run(QueryFixture.request(.flows), connection: connection)
            #expect(
                result.columns.map(\.name) == [
                    "flow", "completed", "incomplete", "negative", "evicted", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                ]
            )
            #expect(texts(result, "flow") == ["grading", "tutor", "waiting"])
            #expect(result.rows[0][1...4] == [.integer(200), .integer(5), .integer(1), .integer(0)])
            // Latencies 1…200 ms over two windows: ranks ⌊q·199⌋ are 99, 189 and 197.
            #expect(near(result.cell(0, "p50_ms"), 100))
            #expect(near(result.cell(0, "p95_ms"), 190))
            #expect(near(result.cell(0, "p99_ms"), 198))
            #expect(result.cell(0, "max_ms") == .decimal(200, places: 1))
            #expect(result.rows[1][1...4] == [.integer(3), .integer(0), .integer(0), .integer(4)])
            #expect(near(result.cell(1, "p50_ms"), 10))
            #expect(near(result.cell(1, "p99_ms"), 10))
            #expect(result.cell(1, "max_ms") == .decimal(2000, places: 1))
            // No completed request: counts, and NULL percentiles.
            #expect(
                result.rows[2][1...] == [
                    .integer(0), .integer(4), .integer(0), .integer(0), .null, .null, .null, .null,
                ]
            )

            let one = try QueryRunner.run(
                QueryFixture.request(.flows, from: 1, flow: "grading"),
                connection: connection
            )
            #expect(texts(one, "flow") == ["grading"])
            #expect(one.cell(0, "completed") == .integer(100))
            #expect(near(one.cell(0, "p50_ms"), 150))  // 101…200: rank 49
            #expect(one.cell(0, "max_ms") == .decimal(200, places: 1))
        }
    }

    @Test func deadLettersGiveTheRatioOfTheRange() throws {
        try QueryFixture.with { connection in
            let result = try QueryRunner.run(QueryFixture.request(.deadletters), connection: connection)
            #expect(
                result.columns.map(\.name) == ["topic", "events", "dead_lettered", "ratio", "p95_delay_ms", "copies"]
            )
            #expect(texts(result, "topic") == ["orders", "ghost", "payments"])
            #expect(result.rows[0][1...3] == [.integer(33), .integer(3), .ratio(3.0 / 33.0)])
            #expect(near(result.cell(0, "p95_delay_ms"), 300))  // delays 100, 200, 300, 300: rank 2
            #expect(result.cell(0, "copies") == .integer(4))
            // Dead letters of a topic without events: no ratio.
            #expect(result.rows[1][1...] == [.integer(0), .integer(1), .null, result.rows[1][4], .integer(1)])
            #expect(near(result.cell(1, "p95_delay_ms"), 50))
            #expect(result.rows[2][1...] == [.integer(12), .integer(0), .ratio(0), .null, .integer(0)])

            let filtered = try QueryRunner.run(
                QueryFixture.request(.deadletters, from: 1, topic: "orders"),
                connection: connection
            )
            #expect(
                filtered.rows == [
                    [.text("orders"), .integer(23), .integer(1), .ratio(1.0 / 23.0), filtered.rows[0][4], .integer(2)]
                ]
            )
            #expect(near(filtered.cell(0, "p95_delay_ms"), 300))

            // A dead-letter topic's own copies are events of that topic: it is not listed as a source of its own.
            var copies = RollupDelta()
            copies.events[EventKey(windowStartMs: QueryFixture.window(0), topic: "orders.dlq", type: "created")] =
                EventCounts(events: 2, bytes: 200)
            try RollupWriter(connection: connection, group: "flowmeter", logger: RollupsTestDatabase.logger)
                .write(copies, nextOffsets: [])
            let again = try QueryRunner.run(QueryFixture.request(.deadletters), connection: connection)
            #expect(texts(again, "topic") == ["orders", "ghost", "payments"])
        }
    }

    @Test func lagShowsTheLatestSampleInTheRange() throws {
        try QueryFixture.with { connection in
            let result = try QueryRunner.run(QueryFixture.request(.lag), connection: connection)
            #expect(
                result.columns.map(\.name) == [
                    "group_id", "topic", "partition", "committed_offset", "log_start_offset", "end_offset",
                    "lag_messages", "lag_seconds", "status", "sampled_at",
                ]
            )
            let expected: [[QueryCell]] = [
                [
                    .text("grader"), .text("orders"), .integer(0), .integer(95), .integer(0), .integer(100),
                    .integer(5),
                    .decimal(1.25, places: 1), .text("ok"), .time(QueryFixture.date(1, seconds: 10)),
                ],
                [
                    .text("grader"), .text("orders"), .integer(1), .null, .integer(0), .integer(50), .null, .null,
                    .text("stopped"),
                    .time(QueryFixture.date(0, seconds: 10)),
                ],
                [
                    .text("tutor"), .text("payments"), .integer(0), .integer(7), .integer(0), .integer(7), .integer(0),
                    .decimal(0, places: 1), .text("ok"), .time(QueryFixture.date(1, seconds: 10)),
                ],
            ]
            #expect(result.rows == expected)
            let group = try QueryRunner.run(QueryFixture.request(.lag, group: "tutor"), connection: connection)
            #expect(texts(group, "group_id") == ["tutor"])
            let topic = try QueryRunner.run(QueryFixture.request(.lag, topic: "orders"), connection: connection)
            #expect(topic.rows.map { $0[2] } == [.integer(0), .integer(1)])
            let both = try QueryRunner.run(
                QueryFixture.request(.lag, topic: "orders", group: "tutor"),
                connection: connection
            )
            #expect(both.rows.isEmpty)
            // Up to the end of the first window: the earlier sample of partition 0.
            let early = try QueryRunner.run(QueryFixture.request(.lag, to: 1), connection: connection)
            #expect(early.rows.map { $0[3] } == [.integer(90), .null])
        }
    }

    @Test func filterValuesAreParametersNotSQL() throws {
        try QueryFixture.with { connection in
            let result = try QueryRunner.run(
                QueryFixture.request(.events, topic: "orders' or '1'='1"),
                connection: connection
            )
            #expect(result.rows.isEmpty)
        }
    }

    @Test func renderersOnRealRows() throws {
        try QueryFixture.with { connection in
            for kind in QueryKind.allCases {
                let result = try QueryRunner.run(QueryFixture.request(kind), connection: connection)
                try expectAligned(QueryRenderer.render(result, format: .table), result)
                let json = QueryRenderer.render(result, format: .json)
                let parsed = try #require(
                    try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]],
                    "\(kind): \(json)"
                )
                #expect(parsed.count == result.rows.count)
                #expect(parsed.allSatisfy { Set($0.keys) == Set(result.columns.map(\.name)) })
                let csv = QueryRenderer.render(result, format: .csv)
                #expect(csv.split(separator: "\r\n", omittingEmptySubsequences: false).count == result.rows.count + 2)
            }
        }
    }
}

/// Checks that a table's lines have one span per column: text columns start where their header starts, numeric
/// columns end where their header ends, and cells are separated by spaces.
private func expectAligned(
    _ table: String,
    _ result: QueryResult,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let lines = table.split(separator: "\n").map { Array($0) }
    let expectedLines = 1 + result.rows.count + (result.totals == nil || result.rows.isEmpty ? 0 : 2)
    #expect(lines.count == expectedLines, sourceLocation: sourceLocation)
    let width = lines.map(\.count).max() ?? 0
    let padded = lines.map { $0 + Array(repeating: " ", count: width - $0.count) }
    let header = padded[0]
    var searchFrom = 0
    for column in result.columns {
        let name = Array(column.name)
        let start = try #require(
            (searchFrom...(header.count - name.count)).first { Array(header[$0..<$0 + name.count]) == name },
            sourceLocation: sourceLocation
        )
        let end = start + name.count
        searchFrom = end
        for line in padded.dropFirst() where line[start...].contains(where: { $0 != " " && $0 != "-" }) {
            let context = "\(column.name) in \(String(line))"
            if column.isNumeric {
                #expect(line[end - 1] != " ", "\(context)", sourceLocation: sourceLocation)
                #expect(end == line.count || line[end] == " ", "\(context)", sourceLocation: sourceLocation)
            } else {
                #expect(start == 0 || line[start - 1] == " ", "\(context)", sourceLocation: sourceLocation)
            }
        }
        if !column.isNumeric {
            // Every non-empty text cell starts at the column's start.
            for (row, line) in zip(result.rows, padded.dropFirst()) {
                let index = result.columns.firstIndex(of: column)!
                if row[index] != .text("") {
                    #expect(line[start] != " ", "\(column.name) in \(String(line))", sourceLocation: sourceLocation)
                }
            }
        }
    }
}

// MARK: - Renderers

@Suite struct QueryRendererTests {
    let result = QueryResult(
        columns: [
            QueryColumn("name", numeric: false), QueryColumn("count", numeric: true),
            QueryColumn("p95_ms", numeric: true),
            QueryColumn("ratio", numeric: true), QueryColumn("at", numeric: false),
        ],
        rows: [
            [
                .text("a,b"), .integer(1234), .decimal(12.3456, places: 1), .ratio(0.0512),
                .time(Date(timeIntervalSince1970: 0.25)),
            ],
            [.text("say \"hi\""), .integer(-5), .null, .null, .null],
            [.text("two\nlines"), .integer(0), .decimal(0.04, places: 1), .ratio(1), .text("x")],
        ],
        totals: [.text("total"), .integer(1229), .null, .null, .null]
    )

    @Test func table() {
        let table = QueryRenderer.render(result, format: .table)
        #expect(
            table == """
                name       count  p95_ms    ratio  at
                a,b         1234    12.3    5.12%  1970-01-01T00:00:00Z
                say "hi"      -5       -        -  -
                two lines      0     0.0  100.00%  x
                ---------  -----  ------  -------  --------------------
                total       1229       -        -  -

                """
        )
    }

    @Test func emptyTableSaysSo() {
        let empty = QueryResult(columns: result.columns, rows: [], totals: result.totals)
        #expect(QueryRenderer.render(empty, format: .table) == "name  count  p95_ms  ratio  at\n(no rows)\n")
        #expect(QueryRenderer.render(empty, format: .json) == "[]\n")
        #expect(QueryRenderer.render(empty, format: .csv) == "name,count,p95_ms,ratio,at\r\n")
    }

    @Test func json() throws {
        let json = QueryRenderer.render(result, format: .json)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        #expect(parsed.count == 3)
        #expect(parsed[0]["name"] as? String == "a,b")
        #expect((parsed[0]["count"] as? NSNumber)?.int64Value == 1234)
        #expect((parsed[0]["p95_ms"] as? NSNumber)?.doubleValue == 12.346)
        #expect((parsed[0]["ratio"] as? NSNumber)?.doubleValue == 0.0512)
        #expect(parsed[0]["at"] as? String == "1970-01-01T00:00:00.250Z")
        #expect(parsed[1]["name"] as? String == "say \"hi\"")
        #expect((parsed[1]["count"] as? NSNumber)?.int64Value == -5)
        #expect(parsed[1]["p95_ms"] is NSNull)
        #expect(parsed[1]["ratio"] is NSNull)
        #expect(parsed[1]["at"] is NSNull)
        #expect(parsed[2]["name"] as? String == "two\nlines")
        #expect((parsed[2]["ratio"] as? NSNumber)?.doubleValue == 1)
    }

    @Test func csvQuotesPerRFC4180() {
        #expect(
            QueryRenderer.render(result, format: .csv)
                == "name,count,p95_ms,ratio,at\r\n"
                + "\"a,b\",1234,12.346,0.0512,1970-01-01T00:00:00.250Z\r\n"
                + "\"say \"\"hi\"\"\",-5,,,\r\n"
                + "\"two\nlines\",0,0.04,1.0,x\r\n"
        )
    }
}

// MARK: - Options

@Suite struct QueryOptionTests {
    static let now = Date(timeIntervalSince1970: 1_764_385_200)  // 2025-11-29T03:00:00Z

    @Test(arguments: [
        ("1h", now.addingTimeInterval(-3600)), ("30m", now.addingTimeInterval(-1800)),
        ("7d", now.addingTimeInterval(-7 * 86_400)), ("1h30m", now.addingTimeInterval(-5400)),
        ("90s", now.addingTimeInterval(-90)), ("0s", now),
        ("2026-11-29T03:00:00Z", Date(timeIntervalSince1970: 1_795_921_200)),
        ("2026-11-29t03:00:00z", Date(timeIntervalSince1970: 1_795_921_200)),
        ("2026-11-29T04:00:00+01:00", Date(timeIntervalSince1970: 1_795_921_200)),
        ("2026-11-29T03:00:00.250Z", Date(timeIntervalSince1970: 1_795_921_200.25)),
    ])
    func parsesTimes(_ text: String, _ expected: Date) {
        #expect(QueryTime.parse(text, now: Self.now) == expected)
    }

    @Test(arguments: ["", "1", "yesterday", "-1h", "1H", "1h ", "2026-11-29", "2026-11-29 03:00:00Z", "03:00", "1w"])
    func rejectsTimes(_ text: String) {
        #expect(QueryTime.parse(text, now: Self.now) == nil)
        #expect(
            throws: QueryOptionError(
                option: "--since",
                message: "expected a duration such as 1h or an RFC 3339 time, got \"\(text)\""
            )
        ) {
            try QueryRequest.parse(kind: .events, since: text, now: Self.now)
        }
    }

    @Test func errorMessage() {
        let error = QueryOptionError(
            option: "--until",
            message: "expected a duration such as 1h or an RFC 3339 time, got \"soon\""
        )
        #expect(throws: error) { try QueryRequest.parse(kind: .lag, until: "soon", now: Self.now) }
        #expect(error.description == "--until: expected a duration such as 1h or an RFC 3339 time, got \"soon\"")
    }

    @Test func defaults() throws {
        let request = try QueryRequest.parse(kind: .flows, now: Self.now)
        #expect(request == QueryRequest(kind: .flows, since: Self.now.addingTimeInterval(-3600), until: Self.now))
        let explicit = try QueryRequest.parse(
            kind: .lag,
            since: "2h",
            until: "1h",
            topic: "orders",
            group: "grader",
            now: Self.now
        )
        #expect(explicit.since == Self.now.addingTimeInterval(-7200))
        #expect(explicit.until == Self.now.addingTimeInterval(-3600))
        #expect(explicit.topic == "orders")
        #expect(explicit.group == "grader")
    }

    @Test func rejectsAnEmptyRange() {
        #expect(throws: QueryOptionError.self) {
            try QueryRequest.parse(kind: .events, since: "1h", until: "2h", now: Self.now)
        }
        #expect(throws: QueryOptionError.self) { try QueryRequest.parse(kind: .events, since: "0s", now: Self.now) }
    }

    @Test(arguments: [
        (QueryKind.events, "--flow"), (.events, "--group"), (.flows, "--topic"), (.flows, "--group"),
        (.deadletters, "--flow"), (.deadletters, "--group"), (.lag, "--flow"),
    ])
    func rejectsFiltersTheKindDoesNotHave(_ kind: QueryKind, _ option: String) {
        do {
            _ = try QueryRequest.parse(
                kind: kind,
                topic: option == "--topic" ? "t" : nil,
                flow: option == "--flow" ? "f" : nil,
                group: option == "--group" ? "g" : nil,
                now: Self.now
            )
            Issue.record("\(option) accepted for \(kind)")
        } catch {
            #expect(error.option == option)
            #expect(error.message.hasPrefix("does not apply to query \(kind.rawValue)"))
        }
    }
}
