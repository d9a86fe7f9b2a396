import Foundation
import Testing

@testable import FlowmeterCore

@Suite struct ConformanceTests {
    /// Every record of `../shared/dapr/fixtures` decodes to what its `EXPECTED.json` says.
    @Test func sharedFixtures() throws {
        let directory = Fixtures.sharedDirectory
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("EXPECTED.json").path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("shared fixtures missing at \(directory.path); CI=true requires them")
            } else {
                print("note: shared fixtures missing at \(directory.path); only the project's fixtures run")
            }
            return
        }
        let cases = try Fixtures.load(from: directory)
        #expect(cases.count >= 16)
        for fixture in cases {
            check(fixture, exactFlags: false)
        }
    }

    /// The shared 1 MB record is oversize at the default limit but still classified with its trace id.
    @Test func sharedOversizeRecord() throws {
        let directory = Fixtures.sharedDirectory
        let file = directory.appendingPathComponent("11-huge-payload-near-1MiB.json")
        guard FileManager.default.fileExists(atPath: file.path) else { return }
        let fixture = try #require(try Fixtures.load(from: directory).first { $0.name.hasPrefix("11-") })
        let event = fixture.decode()
        #expect(event.flags.contains(.oversize))
        #expect(event.parserClass == .cloudEvent)
        #expect(event.producerKind == .daprWrapped)
        #expect(event.trace?.traceID == "5bde7e8abdc8893f7de15a6ba2edf3d3")
        #expect(event.id == "aac2e9dc-5760-467b-aa8b-f8d01c2fa688")
        #expect(event.valueBytes == 1_000_000)
    }

    static let projectCases: [FixtureCase] = (try? Fixtures.load(from: Fixtures.projectDirectory)) ?? []

    @Test func projectFixturesLoad() {
        #expect(Self.projectCases.count >= 40)
    }

    /// The project's own fixtures, whose `flags` lists are exact.
    @Test(arguments: projectCases)
    func projectFixture(_ fixture: FixtureCase) {
        check(fixture, exactFlags: true)
    }
}
