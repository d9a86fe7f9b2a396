import Testing

@testable import FlowmeterCore

@Suite struct RFC3339Tests {
    struct Case: Sendable, CustomStringConvertible {
        var text: String
        var ns: Int64
        var precision: TimePrecision
        var lenient = false
        var leap = false
        var description: String { text }
    }

    static let base: Int64 = 1_762_161_124 * 1_000_000_000  // 2025-11-03T09:12:04Z

    @Test(arguments: [
        Case(text: "2025-11-03T09:12:04Z", ns: base, precision: .seconds),
        Case(text: "2025-11-03t09:12:04z", ns: base, precision: .seconds),
        Case(text: "2025-11-03T10:12:04+01:00", ns: base, precision: .seconds),
        Case(text: "2025-11-03T04:42:04-04:30", ns: base, precision: .seconds),
        Case(text: "2025-11-03T09:12:04.1Z", ns: base + 100_000_000, precision: .milliseconds),
        Case(text: "2025-11-03T09:12:04.187Z", ns: base + 187_000_000, precision: .milliseconds),
        Case(text: "2025-11-03T09:12:04.187431Z", ns: base + 187_431_000, precision: .microseconds),
        Case(text: "2025-11-03T09:12:04.1874319Z", ns: base + 187_431_900, precision: .nanoseconds),
        Case(text: "2025-11-03T09:12:04.123456789987Z", ns: base + 123_456_789, precision: .nanoseconds),
        Case(text: "2025-11-03 09:12:04Z", ns: base, precision: .seconds, lenient: true),
        Case(text: "2025-11-03T10:12:04+0100", ns: base, precision: .seconds, lenient: true),
        Case(text: "2016-12-31T23:59:60Z", ns: 1_483_228_799_999_999_999, precision: .seconds, leap: true),
        Case(text: "1970-01-01T00:00:00Z", ns: 0, precision: .seconds),
        Case(text: "1969-12-31T23:59:59.5Z", ns: -500_000_000, precision: .milliseconds),
        Case(text: "2024-02-29T00:00:00Z", ns: 1_709_164_800_000_000_000, precision: .seconds),
        Case(text: "2000-03-01T00:00:00Z", ns: 951_868_800_000_000_000, precision: .seconds),
    ])
    func valid(_ c: Case) throws {
        let t = try #require(RFC3339.parse(c.text))
        #expect(t.epochNanoseconds == c.ns)
        #expect(t.precision == c.precision)
        #expect(t.lenient == c.lenient)
        #expect(t.leapSecond == c.leap)
    }

    @Test(arguments: [
        "", "2025-11-03", "2025-11-03T09:12:04", "2025-13-03T09:12:04Z", "2025-00-03T09:12:04Z", "2025-11-00T09:12:04Z",
        "2025-11-31T09:12:04Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2025-11-03T24:00:00Z",
        "2025-11-03T09:60:00Z", "2025-11-03T09:12:61Z", "2025-11-03T09:12:04.Z", "2025-11-03T09:12:04+1:00",
        "2025-11-03T09:12:04+24:00", "2025-11-03T09:12:04+01:60", "2025-11-03T09:12:04Zjunk", "25-11-03T09:12:04Z",
        "2025-11-03X09:12:04Z", "2025/11/03T09:12:04Z", "9999-12-31T23:59:59Z", "1000-01-01T00:00:00Z",
        "2025-11-03T09:12:04+01", "2025-11-03T9:12:04Z", "yesterday", "2025-11-03T09:12:04.12a3Z",
    ])
    func invalid(_ text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func epochMillisecondsRoundsDown() throws {
        #expect(try #require(RFC3339.parse("1969-12-31T23:59:59.9995Z")).epochMilliseconds == -1)
        #expect(try #require(RFC3339.parse("2025-11-03T09:12:04.9999Z")).epochMilliseconds == 1_762_161_124_999)
    }
}
