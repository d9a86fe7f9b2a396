import ArgumentParser
import FlowmeterApp
import Foundation

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Run the pipeline from the stored offsets (or --from, default earliest) to the end, then exit.",
        discussion: """
            The end offsets are captured at start. Rollups and offsets are written to PostgreSQL exactly as `run` \
            writes them, so a backfill can be interrupted and resumed, and `run` continues where it stopped. Run it \
            with `run` stopped (or with another --group): partitions assigned to another member are never reached.
            """
    )

    @OptionGroup var options: CommonOptions

    @Flag(name: .long, help: "Stop at the end offsets captured at start (required).")
    var untilEnd = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The bound on pending flow requests, and apart on early responses, while the backlog is read.",
            discussion: """
                Default: 1,000,000, or the analyzer file's limits.max_pending_flow_requests if larger. A backlog is \
                read partition chunk by partition chunk, not in event time, so requests and responses can be far \
                apart; beyond the bound the oldest are evicted and their flows count as evicted (the summary warns). \
                About 250 bytes each while held.
                """,
            valueName: "n"
        )
    )
    var maxPendingFlowRequests: Int?

    func validate() throws {
        guard untilEnd else { throw ValidationError("backfill needs --until-end (the only mode so far)") }
        if let bound = maxPendingFlowRequests, bound <= 0 {
            throw ValidationError("--max-pending-flow-requests must be a positive whole number, got \(bound)")
        }
    }

    func run() async throws {
        let logger = makeLogger(label: "flowmeter")
        let loaded = try resolveAndLoad(options, for: .backfill)
        let interactive = isatty(STDOUT_FILENO) != 0
        let summary = try await Backfill.run(
            configuration: loaded.configuration,
            analyzers: loaded.analyzers,
            maxPendingFlowRequests: maxPendingFlowRequests,
            logger: logger,
            interactive: interactive
        ) { text in
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        print(summary)
        if !summary.flushed { throw ExitCode(1) }
    }
}
