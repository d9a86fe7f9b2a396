import Foundation
import Testing

@testable import FlowmeterCore

/// ``PrescannedMembers``: the decoder's first scan, done ahead (on the consumer's read-ahead thread in a backfill).
/// A decode that takes a prescan must give exactly the event a decode that scans gives.
@Suite struct PrescanTests {
    /// Decodes `value` with `decoder`, taking `prescanned` if given (the same record fields in every test).
    static func decode(
        _ value: UnsafeRawBufferPointer,
        topic: String = "t",
        headers: [RecordHeader] = [],
        decoder: CloudEventDecoder,
        prescanned: UnsafePointer<PrescannedMembers>?
    ) -> DecodedEvent {
        decoder.decode(
            topic: topic,
            topicClass: decoder.classify(topic: topic),
            partition: 0,
            offset: 7,
            timestampMs: 1_764_000_000_000,
            timestampType: .createTime,
            headers: headers,
            keyBytes: nil,
            value: value,
            prescanned: prescanned
        )
    }

    /// Decodes `value` twice, scanning and with its prescan (when there is one), and returns both events.
    static func bothWays(
        _ value: [UInt8],
        topic: String = "learning.requested",
        headers: [RecordHeader] = [],
        options: DecoderOptions = DecoderOptions()
    ) -> (scanned: DecodedEvent, prescanned: DecodedEvent, hadPrescan: Bool) {
        let decoder = CloudEventDecoder(options: options)
        return value.withUnsafeBytes { buffer in
            func decode(_ prescanned: UnsafePointer<PrescannedMembers>?) -> DecodedEvent {
                Self.decode(buffer, topic: topic, headers: headers, decoder: decoder, prescanned: prescanned)
            }
            let scanned = decode(nil)
            guard var members = PrescannedMembers.prescan(buffer, options: options) else {
                return (scanned, scanned, false)
            }
            return (scanned, withUnsafePointer(to: &members) { decode($0) }, true)
        }
    }

    /// Every fixture record (the shared ones when present, and the project's) decodes the same either way.
    @Test func fixturesDecodeTheSameWithAPrescan() throws {
        var directories = [Fixtures.projectDirectory]
        let shared = Fixtures.sharedDirectory
        if FileManager.default.fileExists(atPath: shared.appendingPathComponent("EXPECTED.json").path) {
            directories.append(shared)
        }
        var prescanned = 0
        for directory in directories {
            for fixture in try Fixtures.load(from: directory) {
                guard let value = fixture.value else { continue }
                let (a, b, had) = Self.bothWays(
                    value,
                    topic: fixture.topic,
                    headers: fixture.headers,
                    options: fixture.options
                )
                #expect(a == b, "\(fixture.name)")
                if had { prescanned += 1 }
            }
        }
        #expect(prescanned >= 5)
    }

    /// Values the prescan leaves to the decoder (it then scans as without one), and the members it packs: every
    /// envelope member, escapes, kinds, duplicates and other members.
    @Test func prescanCoversTheFastScanAndNothingElse() {
        let envelope =
            #"{"specversion":"1.0","id":"a\"b","source":"s","type":"t","subject":"x","time":"2025-11-03T09:12:04Z","#
            + #""datacontenttype":"application/json","topic":"learning.requested","pubsubname":"p","traceid":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","#
            + #""traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v","expiration":"2025-11-03T09:13:04Z","#
            + #""data":{"n":[1,2.5,true,false,null,{"deep":"v"}]},"ext":7,"other":null}"#
        let cases: [(String, Bool)] = [
            (envelope, true),
            (#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"eyJ9"}"#, true),
            (#"{"specversion":"1.0","id":"1","id":"2","source":"s","type":"t","x":1,"x":2}"#, true),
            (#"{ "specversion" : "1.0" , "id":"1","source":"s","type":"t","\u0064ata":{}}"#, true),
            (#"{}"#, true),
            (#"[1,2]"#, false),
            (#""text""#, false),
            (#"{"specversion":"1.0","#, false),
            (#"{"a":1}x"#, false),
            ("\u{FEFF}" + #"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#, false),
            ("", false),
        ]
        for (text, expectPrescan) in cases {
            let (a, b, had) = Self.bothWays(Array(text.utf8))
            #expect(had == expectPrescan, "\(text)")
            #expect(a == b, "\(text)")
        }
        // Larger than the parse limit: left to the decoder (oversize).
        let small = DecoderOptions(maxParseBytes: 16)
        let (a, b, had) = Self.bothWays(Array(envelope.utf8), options: small)
        #expect(!had)
        #expect(a == b)
        // Nested deeper than the limit: not an object the fast scan accepts.
        let deep = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
        let shallow = DecoderOptions(maxNestingDepth: 8)
        let nested = Self.bothWays(Array((#"{"specversion":"1.0","data":"# + deep + "}").utf8), options: shallow)
        #expect(!nested.hadPrescan)
        #expect(nested.scanned == nested.prescanned)
    }

    /// The decoder takes a prescan instead of scanning: given the prescan of another value (its members at other
    /// offsets), it reads the attributes where that prescan says they are. (The other tests compare events decoded
    /// with and without a prescan; this one shows that the prescan is what the decoder used.)
    @Test func theDecoderTakesThePrescan() throws {
        let value = Array(#"{"specversion":"1.0","id":"abc","source":"s","type":"t"}"#.utf8)
        let shifted = Array(#"{"specversion":"1.0","id":"bc","source":"s","type":"t","x":1}"#.utf8)
        let options = DecoderOptions()
        let decoder = CloudEventDecoder(options: options)
        var members = try #require(shifted.withUnsafeBytes { PrescannedMembers.prescan($0, options: options) })
        let event = value.withUnsafeBytes { buffer in
            withUnsafePointer(to: &members) { Self.decode(buffer, decoder: decoder, prescanned: $0) }
        }
        // The id's span in `shifted` (`"bc"`) is one byte shorter: read in `value`, its content is `ab`.
        #expect(Self.bothWays(value, topic: "t").scanned.id == "abc")
        #expect(event.id == "ab")
    }

    /// A prescan made under another nesting limit is not taken (the decoder scans with its own).
    @Test func aPrescanWithAnotherDepthLimitIsNotTaken() {
        let value = Array(#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":[[[1]]]}"#.utf8)
        let decoder = CloudEventDecoder(options: DecoderOptions(maxNestingDepth: 2))
        let event = value.withUnsafeBytes { buffer -> DecodedEvent in
            var members = PrescannedMembers.prescan(buffer, maxParseBytes: 1 << 20, maxNestingDepth: 64)!
            return withUnsafePointer(to: &members) { Self.decode(buffer, decoder: decoder, prescanned: $0) }
        }
        let scanned = PrescanTests.bothWays(value, topic: "t", options: DecoderOptions(maxNestingDepth: 2)).scanned
        #expect(event == scanned)
        #expect(scanned.parserClass != .cloudEvent)
    }
}
