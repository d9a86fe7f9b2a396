import ArgumentParser
import FlowmeterApp
import Foundation

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "The daemon: consume, analyze, serve /metrics, /healthz and /readyz until SIGTERM.",
        discussion:
            "Drains gracefully on SIGTERM or SIGINT: stops fetching, commits, leaves the group, then stops HTTP."
    )

    @OptionGroup var options: CommonOptions

    /// Installed by `Flowmeter.main()` before parsing; set once, before any task starts.
    nonisolated(unsafe) static var earlyTermination: TerminationSignals?

    func run() async throws {
        // First of all: a SIGTERM while the daemon starts (Kubernetes may send one at any time) drains it.
        let termination = Self.earlyTermination ?? TerminationSignals(exitOnStdinClose: false)
        let logger = makeLogger(label: "flowmeter")
        let loaded = try resolveAndLoad(options, for: .run)
        try await Runner.run(
            configuration: loaded.configuration,
            analyzers: loaded.analyzers,
            logger: logger,
            termination: termination
        )
    }
}
