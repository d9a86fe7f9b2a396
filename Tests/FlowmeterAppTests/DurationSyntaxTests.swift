import Testing

@testable import FlowmeterApp

@Suite struct DurationSyntaxTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("5s", .seconds(5)), ("2m", .seconds(120)), ("1h", .seconds(3600)),
        ("30d", .seconds(30 * 86_400)), ("1h30m", .seconds(5400)), ("1d2h3m4s5ms", .milliseconds(93_784_005)),
        ("90s", .seconds(90)), ("0s", .zero), ("007s", .seconds(7)),
    ])
    func parsesValidDurations(_ text: String, _ expected: Duration) {
        #expect(DurationSyntax.parse(text) == expected)
    }

    @Test(arguments: [
        "", "fast", "5", "s", "ms", "1.5s", "-5s", "+5s", "5 s", " 5s", "5s ", "5S", "30m1h", "1h1h", "1ms1s", "5sec",
        "1w", "9999999999999d", "1h 30m", "5µs",
    ])
    func rejectsInvalidDurations(_ text: String) {
        #expect(DurationSyntax.parse(text) == nil)
    }

    @Test(arguments: [
        (Duration.milliseconds(500), "500ms"), (.seconds(5), "5s"), (.seconds(90), "1m30s"), (.seconds(5400), "1h30m"),
        (.seconds(30 * 86_400), "30d"), (.zero, "0s"), (.milliseconds(86_400_001), "1d1ms"),
    ])
    func formats(_ duration: Duration, _ expected: String) {
        #expect(DurationSyntax.format(duration) == expected)
        #expect(DurationSyntax.parse(expected) == duration)
    }
}
