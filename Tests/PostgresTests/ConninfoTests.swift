import Testing

@testable import Postgres

@Suite struct ConninfoTests {
    @Test(
        arguments: [
            (
                "postgres://flowmeter:s3cret@127.0.0.1:5432/flowmeter",
                "postgres://flowmeter:***@127.0.0.1:5432/flowmeter"
            ),
            (
                "postgresql://flowmeter:s3cret@db.example.com/flowmeter?sslmode=require&password=other",
                "postgresql://flowmeter:***@db.example.com/flowmeter?sslmode=require&password=***"
            ),
            ("postgresql://flowmeter@localhost/flowmeter", "postgresql://flowmeter@localhost/flowmeter"),
            ("postgresql://localhost:5433", "postgresql://localhost:5433"),
            ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
            ("postgresql://u:p@ss/word@h/db", "postgresql://u:***@h/db"),
            ("postgresql:///db?host=/tmp&sslpassword=k3y", "postgresql:///db?host=/tmp&sslpassword=***"),
            ("host=x password=s3cret dbname=y", "host=x password=*** dbname=y"),
            ("host=x password = 's3 cret\\' q' dbname=y", "host=x password=*** dbname=y"),
            ("  host=x   user=u  ", "host=x user=u"),
            ("host=x sslpassword=k3y", "host=x sslpassword=***"),
            ("host=x password='unterminated", "host=x password=***"),
            ("", ""),
        ]
    )
    func redactsPasswords(input: String, expected: String) {
        #expect(redactedConninfo(input) == expected)
    }

    @Test(
        arguments: [
            ("postgres://u:s3cret@h/db", ["s3cret"]),
            ("postgres://u:p%40ss@h/db", ["p%40ss", "p@ss"]),
            ("postgres://u@h/db?password=q%20w", ["q%20w", "q w"]),
            ("host=h password='a b\\'c'", ["'a b\\'c'", "a b'c"]),
            ("host=h user=u", []),
        ]
    )
    func findsSecrets(conninfo: String, expected: [String]) {
        #expect(Set(secretValues(in: conninfo)) == Set(expected))
    }

    @Test func scrubsSecretsAndPasswordAssignments() {
        let message = "could not connect to postgres://u:hunter2@h/db with password=hunter2 (hunter2) password = 'x y'"
        let result = scrubbed(message, secrets: ["hunter2"])
        #expect(!result.contains("hunter2"))
        #expect(!result.contains("x y"))
        #expect(result.contains("could not connect"))
    }
}

@Suite struct PQErrorTests {
    @Test(
        arguments: [
            ("08006", true), ("08001", true), ("40001", true), ("40P01", true), ("57P01", true), ("57P02", true),
            ("57P03", true), ("53300", true), ("23505", false), ("42601", false), ("57014", false), ("28P01", false),
        ]
    )
    func retriableSQLStates(sqlState: String, retriable: Bool) {
        let error = PQError(code: .queryFailed, reason: "test", sqlState: sqlState, file: #fileID, line: #line)
        #expect(error.isRetriable == retriable)
    }

    @Test func lostConnectionIsRetriable() {
        #expect(PQError(code: .connectionLost, reason: "gone", file: #fileID, line: #line).isRetriable)
    }

    @Test func descriptionIsGenericAndDebugDescriptionDetailed() {
        let error = PQError(
            code: .queryFailed,
            reason: "the server rejected the command",
            sqlState: "23505",
            serverMessage: "duplicate key value violates unique constraint",
            detail: "Key (email)=(a@b.c) already exists.",
            hint: nil,
            file: "Postgres/X.swift",
            line: 7
        )
        #expect(error.description == "PQError.queryFailed (SQLSTATE 23505)")
        #expect(error.debugDescription.contains("a@b.c"))
        #expect(error.debugDescription.contains("Postgres/X.swift"))
    }

    @Test(
        arguments: [
            ("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed", false),
            ("FATAL:  database \"nope\" does not exist", false),
            ("connection to server at \"127.0.0.1\", port 1 failed: Connection refused", true),
            ("FATAL:  the database system is starting up", true),
            ("FATAL:  sorry, too many clients already", true),
        ]
    )
    func connectionFailureClassification(message: String, retriable: Bool) {
        #expect(PQError.isPermanentConnectionFailure(message) == !retriable)
    }
}

@Suite struct PQValueTests {
    @Test(
        arguments: [
            (Int64(0), "1970-01-01T00:00:00.000000Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
            (1_700_000_000_123_456, "2023-11-14T22:13:20.123456Z"),
            (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
            (-62_135_596_800_000_000, "0001-01-01T00:00:00.000000Z"),
            (-62_135_596_800_000_001, "0001-12-31T23:59:59.999999Z BC"),
        ]
    )
    func rendersTimestampsAsISO8601UTC(microseconds: Int64, expected: String) {
        #expect(iso8601UTC(microsecondsSinceEpoch: microseconds) == expected)
    }

    @Test func encodesKindsWithTypes() throws {
        #expect(try PQValue.null.encoded().bytes == nil)
        #expect(try PQValue.int32(-5).encoded().typeOID == 20)
        #expect(try PQValue.bool(false).encoded().bytes == Array("f".utf8))
        #expect(try PQValue.bytes([0, 1]).encoded().format == 1)
        #expect(try PQValue.string("x").encoded().typeOID == 0)
        #expect(try PQValue.double(.infinity).encoded().bytes == Array("Infinity".utf8))
    }
}
