import Dispatch
import Logging
import Synchronization
import Testing

@testable import Postgres

/// A password that appears nowhere else, so finding it in a message proves a leak.
private let distinctivePassword = "Zq7-leak-canary-Pw%40rd"

@Suite struct PQConnectionTests {
    // MARK: - Connecting

    @Test func connectsAndReportsServerVersion() throws {
        let log = TestLog()
        let connection = try TestDatabase.connect(logger: log.logger)
        defer { connection.close() }
        #expect(connection.isConnected)
        let version = try #require(connection.serverVersion)
        #expect(version >= 150_000)
        #expect(connection.parameterStatus("application_name") == "flowmeter")
        let rows = try connection.query("SELECT current_setting('server_version_num')::int8 AS version")
        #expect(try rows.first?.int64("version") == Int64(version))
        let parts = try TestDatabase.urlParts()
        #expect(!log.text.contains(":\(parts.password)@"))
        #expect(!log.text.contains("password"))
        if ![parts.user, parts.database, parts.host].contains(where: { $0.contains(parts.password) }) {
            #expect(!log.text.contains(parts.password))
        }
        #expect(log.records.contains { $0.message == "Connected to PostgreSQL" })
    }

    @Test func connectionStringParametersOverrideDefaults() throws {
        let parts = try TestDatabase.urlParts()
        let connection = try PQConnection.connect(
            url: parts.url(query: "?application_name=custom&connect_timeout=3"),
            logger: TestLog().logger
        )
        defer { connection.close() }
        #expect(connection.parameterStatus("application_name") == "custom")
    }

    @Test func connectsWithKeywordValueConninfo() throws {
        let parts = try TestDatabase.urlParts()
        let connection = try PQConnection.connect(url: parts.keywordValue(), logger: TestLog().logger)
        defer { connection.close() }
        #expect(try connection.query("SELECT current_user AS u").first?.string("u") == parts.user)
    }

    @Test(arguments: [false, true])
    func badPasswordFailsWithoutLeakingIt(keywordValueForm: Bool) throws {
        let parts = try TestDatabase.urlParts()
        let url =
            keywordValueForm
            ? parts.keywordValue(password: distinctivePassword) : parts.url(password: distinctivePassword)
        let log = TestLog()
        let error = try #require(throws: PQError.self) {
            try PQConnection.connect(url: url, logger: log.logger)
        }
        #expect(error.code == .connectionFailed)
        #expect(!error.isRetriable)
        #expect(error.reason.contains("password authentication failed"))
        for text in [error.description, error.debugDescription, "\(error)", String(reflecting: error), log.text] {
            #expect(!text.contains(distinctivePassword))
            #expect(!text.contains("Zq7-leak-canary"))
        }
    }

    @Test func unreachablePortIsRetriable() throws {
        let parts = try TestDatabase.urlParts()
        let error = try #require(throws: PQError.self) {
            try PQConnection.connect(url: parts.url(password: distinctivePassword, port: "1"), logger: TestLog().logger)
        }
        #expect(error.code == .connectionFailed)
        #expect(error.isRetriable)
        #expect(!error.description.contains("Zq7-leak-canary"))
        #expect(!error.debugDescription.contains("Zq7-leak-canary"))
    }

    @Test func invalidConninfoFailsWithoutLeakingThePassword() throws {
        let error = try #require(throws: PQError.self) {
            try PQConnection.connect(
                url: "host=127.0.0.1 password=\(distinctivePassword) no_such_option=1",
                logger: TestLog().logger
            )
        }
        #expect(error.code == .connectionFailed)
        #expect(!error.isRetriable)
        #expect(!error.debugDescription.contains("Zq7-leak-canary"))
    }

    // MARK: - Parameterized queries

    @Test func roundTripsEveryValueKind() throws {
        try TestDatabase.withSchema { connection, _ in
            try connection.execute(
                """
                CREATE TABLE kinds (
                    id int8 PRIMARY KEY, small int4, big int8, ratio float8, flag bool, label text, data bytea,
                    at timestamptz
                )
                """
            )
            let texts = [
                "plain", "Grüße, 世界 🌍", "it's \"quoted\" \\ back\\slash", "'); DROP TABLE kinds; --",
                "$1 $2 ? %s", "",
            ]
            let microseconds: Int64 = 1_700_000_000_123_456
            var inserted = 0
            for (index, text) in texts.enumerated() {
                inserted += try connection.execute(
                    "INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    [
                        .int(index), .int32(Int32.min + Int32(index)), .int64(Int64.max - Int64(index)),
                        .double(Double(index) + 0.1), .bool(index % 2 == 0), .string(text), .bytes([UInt8(index), 0]),
                        .timestamp(microsecondsSinceEpoch: microseconds + Int64(index)),
                    ]
                )
            }
            inserted += try connection.execute(
                "INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [100, nil, nil, nil, nil, nil, nil, nil]
            )
            #expect(inserted == texts.count + 1)

            let rows = try connection.query(
                """
                SELECT id, small, big, ratio, flag, label, data, at,
                       (extract(epoch FROM at) * 1000000)::int8 AS at_micros
                FROM kinds WHERE id = ANY (ARRAY[$1, $2]::int8[]) OR label = $3 OR id = $4 ORDER BY id
                """,
                [0, 1, .string("'); DROP TABLE kinds; --"), 100]
            )
            #expect(rows.count == 4)
            #expect(
                rows.columns.map(\.name) == ["id", "small", "big", "ratio", "flag", "label", "data", "at", "at_micros"]
            )
            for row in rows.dropLast() {
                let index = try #require(try row.int64("id"))
                #expect(try row.int64("small") == Int64(Int32.min) + index)
                #expect(try row.int64("big") == Int64.max - index)
                #expect(try row.double("ratio") == Double(index) + 0.1)
                #expect(try row.bool("flag") == (index % 2 == 0))
                #expect(try row.string("label") == texts[Int(index)])
                #expect(row["label"] == texts[Int(index)])
                #expect(row[5] == texts[Int(index)])
                #expect(try row.bytes("data") == [UInt8(index), 0])
                #expect(try row.int64("at_micros") == microseconds + index)
            }
            let nulls = try #require(rows.last)
            #expect(try nulls.int64("id") == 100)
            for column in ["small", "big", "ratio", "flag", "label", "data", "at"] {
                #expect(nulls[column] == nil)
            }
            #expect(try nulls.bytes("data") == nil)
            #expect(try nulls.bool("flag") == nil)

            // The injection-looking string was stored verbatim and the table is still there.
            let all = try connection.query("SELECT label FROM kinds WHERE label IS NOT NULL ORDER BY id")
            #expect(try all.map { try $0.string(0) } == texts)
        }
    }

    @Test func sendsTypedScalarsWithoutCasts() throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        let row = try #require(
            try connection.query(
                "SELECT $1 AS i, $2 AS d, $3 AS b, $4 AS t, $5 AS empty, $6 AS nan, $7 AS inf, $8::text AS s",
                [
                    .int64(-42), .double(-1.5e300), true, .timestamp(millisecondsSinceEpoch: 0), .bytes([]),
                    .double(.nan), .double(-.infinity), "x",
                ]
            ).first
        )
        #expect(try row.int64("i") == -42)
        #expect(try row.double("d") == -1.5e300)
        #expect(try row.bool("b") == true)
        #expect(try row.bytes("empty") == [])
        #expect(try row.double("nan")?.isNaN == true)
        #expect(try row.double("inf") == -.infinity)
        #expect(try row.string("s") == "x")
        #expect(row.columns.map(\.typeOID).prefix(4) == [20, 701, 16, 1184])
    }

    @Test func timestampsBeforeAndAfterTheEpoch() throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        for micros: Int64 in [0, -1, 1, -1_234_567_890_123_456, 951_782_400_000_000, 253_402_300_799_999_999] {
            let row = try #require(
                try connection.query(
                    "SELECT (extract(epoch FROM $1::timestamptz) * 1000000)::int8 AS micros",
                    [.timestamp(microsecondsSinceEpoch: micros)]
                ).first
            )
            #expect(try row.int64("micros") == micros)
        }
    }

    @Test func byteaRoundTripsAllByteValues() throws {
        try TestDatabase.withSchema { connection, _ in
            try connection.execute("CREATE TABLE blobs (id int4 PRIMARY KEY, data bytea NOT NULL)")
            let everyByte = (0...255).map(UInt8.init)
            try connection.execute(
                "INSERT INTO blobs VALUES (1, $1), (2, $2), (3, $3)",
                [.bytes(everyByte), .bytes(everyByte.reversed()), .bytes([])]
            )
            let rows = try connection.query("SELECT data, length(data) AS length FROM blobs ORDER BY id")
            #expect(try rows.map { try $0.bytes("data") } == [everyByte, everyByte.reversed(), []])
            #expect(try rows.map { try $0.int64("length") } == [256, 256, 0])
        }
    }

    @Test func typedAccessorsRejectMismatches() throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        let row = try #require(try connection.query("SELECT 'abc'::text AS word, 7 AS number").first)
        let attempts: [() throws -> Void] = [
            { _ = try row.int64("word") },
            { _ = try row.double("word") },
            { _ = try row.bool("number") },
            { _ = try row.bytes("word") },
            { _ = try row.string("missing") },
            { _ = try row.int64(9) },
        ]
        for attempt in attempts {
            let error = try #require(throws: PQError.self) { try attempt() }
            #expect(error.code == .typeMismatch)
            #expect(!error.description.contains("abc"))
        }
        #expect(row["missing"] == nil)
        #expect(try row.double("number") == 7)
    }

    @Test func textWithNULIsRejected() throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        let error = try #require(throws: PQError.self) {
            try connection.query("SELECT $1::text", [.string("a\u{0}b")])
        }
        #expect(error.code == .invalidArgument)
        #expect(try connection.query("SELECT 1").count == 1)
    }

    @Test func noticesAreLogged() throws {
        let log = TestLog()
        let connection = try TestDatabase.connect(logger: log.logger)
        defer { connection.close() }
        try connection.execute("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$")
        let notice = try #require(log.records.first { $0.message == "PostgreSQL notice" })
        #expect(notice.level == .notice)
        #expect(notice.metadata["postgres.message"]?.description == "hello from plpgsql")
        #expect(notice.metadata["postgres.sqlstate"]?.description == "00000")
    }

    // MARK: - Errors

    @Test func uniqueViolationCarriesSQLState() throws {
        try TestDatabase.withSchema { connection, _ in
            try connection.execute("CREATE TABLE users (email text PRIMARY KEY)")
            try connection.execute("INSERT INTO users VALUES ($1)", ["secret-row-data@example.com"])
            let error = try #require(throws: PQError.self) {
                try connection.execute("INSERT INTO users VALUES ($1)", ["secret-row-data@example.com"])
            }
            #expect(error.code == .queryFailed)
            #expect(error.sqlState == "23505")
            #expect(!error.isRetriable)
            #expect(error.serverMessage?.contains("duplicate key") == true)
            #expect(error.detail?.contains("secret-row-data") == true)
            // The generic description never quotes row data; the debug description has the detail.
            #expect(!error.description.contains("secret-row-data"))
            #expect(error.description.contains("23505"))
            #expect(error.debugDescription.contains("secret-row-data"))
            // The connection remains usable.
            #expect(try connection.query("SELECT count(*) AS n FROM users").first?.int64("n") == 1)
        }
    }

    @Test func syntaxErrorCarriesSQLState() throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        let error = try #require(throws: PQError.self) { try connection.query("SELEKT 1") }
        #expect(error.code == .queryFailed)
        #expect(error.sqlState == "42601")
    }

    @Test func statementTimeoutCarriesSQLState() throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        try connection.execute("SET statement_timeout = '50ms'")
        let error = try #require(throws: PQError.self) { try connection.query("SELECT pg_sleep(5)") }
        #expect(error.code == .queryFailed)
        #expect(error.sqlState == "57014")
        #expect(connection.isConnected)
        #expect(try connection.query("SELECT 1").count == 1)
    }

    @Test func terminatedBackendIsConnectionLostThenResetRecovers() throws {
        let victim = try TestDatabase.connect()
        defer { victim.close() }
        let killer = try TestDatabase.connect()
        defer { killer.close() }
        let pid = try #require(try victim.query("SELECT pg_backend_pid() AS pid").first?.int64("pid"))
        let terminated = try killer.query("SELECT pg_terminate_backend($1::int4, 5000) AS ok", [.int64(pid)])
        #expect(try terminated.first?.bool("ok") == true)

        let error = try #require(throws: PQError.self) { try victim.query("SELECT 1") }
        #expect(error.code == .connectionLost)
        #expect(error.isRetriable)
        #expect(!victim.isConnected)

        try victim.reset()
        #expect(victim.isConnected)
        #expect(try victim.query("SELECT 41 + $1 AS n", [1]).first?.int64("n") == 42)
        #expect(try victim.query("SELECT pg_backend_pid() AS pid").first?.int64("pid") != pid)
    }

    @Test func closedConnectionThrowsClosed() throws {
        let connection = try TestDatabase.connect()
        connection.close()
        connection.close()
        #expect(!connection.isConnected)
        #expect(connection.serverVersion == nil)
        let error = try #require(throws: PQError.self) { try connection.query("SELECT 1") }
        #expect(error.code == .closed)
        #expect(throws: PQError.self) { try connection.reset() }
    }

    // MARK: - Transactions

    private struct Abort: Error {}

    @Test func thrownErrorRollsBack() throws {
        try TestDatabase.withSchema { connection, _ in
            try connection.execute("CREATE TABLE events (id int4 PRIMARY KEY)")
            #expect(throws: Abort.self) {
                try connection.transaction { transaction in
                    try transaction.execute("INSERT INTO events VALUES ($1)", [1])
                    #expect(try transaction.query("SELECT count(*) AS n FROM events").first?.int64("n") == 1)
                    throw Abort()
                }
            }
            #expect(try connection.query("SELECT count(*) AS n FROM events").first?.int64("n") == 0)
            #expect(try connection.query("SELECT 1 FROM events WHERE id = $1", [1]).isEmpty)
        }
    }

    @Test(arguments: [nil, PQIsolationLevel.readCommitted, .repeatableRead, .serializable])
    func successfulBodyCommits(isolation: PQIsolationLevel?) throws {
        try TestDatabase.withSchema { connection, _ in
            try connection.execute("CREATE TABLE events (id int4 PRIMARY KEY)")
            let inserted = try connection.transaction(isolation: isolation) { transaction in
                let level = try transaction.query("SHOW transaction_isolation").first?.string(0)
                #expect(level == (isolation?.rawValue.lowercased() ?? "read committed"))
                return try transaction.execute("INSERT INTO events SELECT generate_series(1, $1)", [3])
            }
            #expect(inserted == 3)
            #expect(try connection.query("SELECT count(*) AS n FROM events").first?.int64("n") == 3)
        }
    }

    @Test func readOnlyTransactionRejectsWrites() throws {
        try TestDatabase.withSchema { connection, _ in
            try connection.execute("CREATE TABLE events (id int4 PRIMARY KEY)")
            let error = try #require(throws: PQError.self) {
                try connection.transaction(readOnly: true) { transaction in
                    try transaction.execute("INSERT INTO events VALUES (1)")
                }
            }
            #expect(error.sqlState == "25006")
        }
    }

    @Test func swallowedFailureMakesCommitReportRollback() throws {
        try TestDatabase.withSchema { connection, _ in
            try connection.execute("CREATE TABLE events (id int4 PRIMARY KEY)")
            let error = try #require(throws: PQError.self) {
                try connection.transaction { transaction in
                    try transaction.execute("INSERT INTO events VALUES (1)")
                    #expect(throws: PQError.self) { try transaction.execute("INSERT INTO events VALUES (1)") }
                }
            }
            #expect(error.code == .transactionRolledBack)
            #expect(try connection.query("SELECT count(*) AS n FROM events").first?.int64("n") == 0)
        }
    }

    @Test func transactionHandleIsInvalidAfterwards() throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        let escaped = try connection.transaction { $0 }
        let error = try #require(throws: PQError.self) { try escaped.query("SELECT 1") }
        #expect(error.code == .closed)
    }

    // MARK: - Concurrency

    @Test func concurrentUseFromManyTasksIsSerialized() async throws {
        let connection = try TestDatabase.connect()
        defer { connection.close() }
        let sums = try await withThrowingTaskGroup(of: Int64.self) { group in
            for task in 0..<64 {
                group.addTask {
                    var sum: Int64 = 0
                    for step in 0..<10 {
                        if step == 5 {
                            sum += try connection.transaction { transaction in
                                try transaction.query("SELECT $1::int8 AS n", [.int(task)]).first?.int64("n") ?? -1
                            }
                        } else {
                            sum += try connection.query("SELECT $1::int8 AS n", [.int(task)]).first?.int64("n") ?? -1
                        }
                    }
                    return sum
                }
            }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(sums.sorted() == (0..<64).map { Int64($0) * 10 })
        #expect(connection.isConnected)
    }
}

@Suite struct PQSerializationTests {
    /// Write skew between two serializable transactions: the one that commits second fails at COMMIT with SQLSTATE
    /// 40001, which is retriable.
    @Test func writeSkewFailsOneSerializableTransaction() throws {
        try TestDatabase.withSchema { setup, schema in
            try setup.execute("CREATE TABLE duty (doctor int4 PRIMARY KEY, on_call bool NOT NULL)")
            try setup.execute("INSERT INTO duty VALUES (1, true), (2, true)")
            let first = try TestDatabase.connect()
            defer { first.close() }
            let second = try TestDatabase.connect()
            defer { second.close() }
            for connection in [first, second] { try connection.execute("SET search_path TO \(schema)") }

            let secondReady = DispatchSemaphore(value: 0)
            let firstDone = DispatchSemaphore(value: 0)
            let secondOutcome = Mutex<(any Error)?>(nil)
            let secondFinished = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                do {
                    try second.transaction(isolation: .serializable) { transaction in
                        _ = try transaction.query("SELECT count(*) FROM duty WHERE on_call")
                        try transaction.execute("UPDATE duty SET on_call = false WHERE doctor = 2")
                        secondReady.signal()
                        firstDone.wait()
                    }
                } catch {
                    secondOutcome.withLock { $0 = error }
                }
                secondFinished.signal()
            }
            secondReady.wait()
            var firstError: (any Error)?
            do {
                try first.transaction(isolation: .serializable) { transaction in
                    _ = try transaction.query("SELECT count(*) FROM duty WHERE on_call")
                    try transaction.execute("UPDATE duty SET on_call = false WHERE doctor = 1")
                }
            } catch {
                firstError = error
            }
            firstDone.signal()
            secondFinished.wait()

            // The first committer wins; the second transaction's COMMIT fails and surfaces as an error.
            #expect(firstError == nil)
            let error = try #require(secondOutcome.withLock { $0 } as? PQError)
            #expect(error.code == .queryFailed)
            #expect(error.sqlState == "40001")
            #expect(error.isRetriable)
            #expect(try setup.query("SELECT count(*) AS n FROM duty WHERE on_call").first?.int64("n") == 1)
        }
    }
}
