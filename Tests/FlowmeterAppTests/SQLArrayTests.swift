import Postgres
import Testing

@testable import FlowmeterApp

/// The array literals the rollup writer sends, read back by a real PostgreSQL.
@Suite(.serialized)
struct SQLArrayTests {
    @Test func integersSpellEveryValue() {
        #expect(SQLArray.integers([]) == "{}")
        #expect(SQLArray.integers([0, 7, -7, 10, 1_234_567]) == "{0,7,-7,10,1234567}")
        #expect(SQLArray.integers([.max, .min]) == "{9223372036854775807,-9223372036854775808}")
    }

    @Test func textQuotesAndEscapesEveryElement() {
        #expect(SQLArray.text([]) == "{}")
        #expect(SQLArray.text(["a", "", #"b "c" \d"#, "ü→{,}"]) == #"{"a","","b \"c\" \\d","ü→{,}"}"#)
    }

    @Test func postgresReadsBackWhatWasSent() throws {
        var integers: [Int64] = [0, 1, -1, .max, .min]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 { integers.append(Int64.random(in: .min ... .max, using: &generator)) }
        let texts = [
            "", "plain", "NULL", "with space", "comma,brace{}", #"quote""#, #"back\slash"#, #"\""#, "ü→😀",
            "tab\tnew\nline",
        ]
        try RollupsTestDatabase.withFreshDatabase { url in
            let connection = try PQConnection.connect(url: url, logger: RollupsTestDatabase.logger)
            defer { connection.close() }
            let integerRows = try connection.query(
                "SELECT u::text FROM unnest($1::int8[]) WITH ORDINALITY AS t (u, ord) ORDER BY ord",
                [.string(SQLArray.integers(integers))]
            )
            #expect(try integerRows.map { try #require(try $0.string(0)) } == integers.map(String.init))
            let textRows = try connection.query(
                "SELECT u FROM unnest($1::text[]) WITH ORDINALITY AS t (u, ord) ORDER BY ord",
                [.string(SQLArray.text(texts))]
            )
            #expect(try textRows.map { try #require(try $0.string(0)) } == texts)
        }
    }
}
