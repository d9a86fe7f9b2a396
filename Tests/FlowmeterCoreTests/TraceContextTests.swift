import Testing

@testable import FlowmeterCore

@Suite struct TraceContextTests {
    static let trace = "3a67bbaea487df117c61ad9907c039dd"
    static let parent = "7c50d72ba1e1830a"

    @Test(arguments: [
        ("00-\(trace)-\(parent)-01", true),
        ("00-\(trace)-\(parent)-00", false),
        ("00-\(trace)-\(parent)-03", true),
        ("01-\(trace)-\(parent)-01-future-field", true),
        ("cc-\(trace)-\(parent)-00", false),
        ("fe-\(trace)-\(parent)-01", true),
    ])
    func valid(_ text: String, sampled: Bool) throws {
        let context = try #require(TraceContext.parse(text, source: .attributeTraceparent))
        #expect(context.traceID == Self.trace)
        #expect(context.parentID == Self.parent)
        #expect(context.sampled == sampled)
        #expect(context.source == .attributeTraceparent)
    }

    @Test(arguments: [
        "", "00", "ff-\(trace)-\(parent)-01", "00-00000000000000000000000000000000-\(parent)-01",
        "00-\(trace)-0000000000000000-01", "00-\(trace.uppercased())-\(parent)-01",
        "00-\(trace)-\(parent.uppercased())-01",
        "0A-\(trace)-\(parent)-01", "00-\(trace)-\(parent)-01-extra", "00-\(trace)-\(parent)-0g",
        "01-\(trace)-\(parent)-01x",
        "00_\(trace)-\(parent)-01", "00-\(trace)_\(parent)-01", "00-\(trace)-\(parent)_01", "00-\(trace)-\(parent)-1",
        "0-0\(trace)-\(parent)-01", " 00-\(trace)-\(parent)-01", "00-\(trace)-\(parent)-01 ",
        "00-00000000000000000000000000000000-0000000000000000-00",
    ])
    func invalid(_ text: String) {
        #expect(TraceContext.parse(text, source: .headerTraceparent) == nil)
    }
}
