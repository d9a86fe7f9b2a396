import Testing

@testable import FlowmeterApp

@Suite struct RedactionTests {
    @Test(arguments: [
        ("postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db"),
        ("POSTGRESQL://u:pw@h/db", "POSTGRESQL://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgres://h:5432/db", "postgres://h:5432/db"),
        ("postgres://u:p@ss:w/rd@h/db", "postgres://u:***@h/db"),
        ("postgres://h/db?user=u&password=pw&sslmode=require", "postgres://h/db?user=u&password=***&sslmode=require"),
        ("postgres://u@h/db?sslpassword=pw", "postgres://u@h/db?sslpassword=***"),
        ("host=h password=pw dbname=d", "host=h password=*** dbname=d"),
        ("host=h password = 'p w\\' x' dbname=d", "host=h password = *** dbname=d"),
        ("PASSWORD=pw", "PASSWORD=***"),
        ("password=a&b host=h", "password=*** host=h"),
        ("password=a\\ b host=h", "password=*** host=h"),
        ("host=h password='unterminated", "host=h password=***"),
        ("postgres://u@h/db?password=a b&x=1#frag", "postgres://u@h/db?password=***&x=1#frag"),
        ("sslpassword=pw host=h", "sslpassword=*** host=h"),
        ("host=h user=password", "host=h user=password"),
        ("just-a-secret", "***"),
        ("", ""),
    ])
    func postgres(_ input: String, _ expected: String) {
        #expect(Redaction.redactPostgres(input) == expected)
    }

    @Test func scrubRemovesEveryOccurrence() {
        #expect(Redaction.scrub("a S b S", secret: "S") == "a *** b ***")
        #expect(Redaction.scrub("abc", secret: "") == "abc")
    }
}
