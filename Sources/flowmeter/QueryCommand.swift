import ArgumentParser
import FlowmeterApp
import Foundation
import Logging

struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Read the rollups from PostgreSQL: events, flows, deadletters or lag.",
        discussion: """
            Aggregates the 1-minute rollups whose window starts in [--since, --until), one row per topic and type \
            (events), flow (flows), original topic (deadletters), or the latest sample per group, topic and \
            partition (lag). Latency percentiles come from the sketches merged over the range. Needs --postgres \
            (or FLOWMETER_POSTGRES_URL). Here --group filters the lag by consumer group (only the flag: \
            FLOWMETER_GROUP is not a filter). Exits with 2 on a bad option and 1 if PostgreSQL fails.
            """
    )

    @Argument(help: "What to read: events, flows, deadletters or lag.")
    var kind: QueryKindArgument

    @Option(help: "Start of the range (inclusive): a duration back from now such as 1h, 30m, 7d, or an RFC 3339 time.")
    var since: String = QueryRequest.defaultSince

    @Option(help: "End of the range (exclusive), same syntax as --since. Default: now.")
    var until: String?

    @Option(help: "Only this topic (events, deadletters, lag).")
    var topic: String?

    @Option(help: "Only this flow (flows).")
    var flow: String?

    @Option(help: "Output format: table, json or csv.")
    var format: QueryFormatArgument = .table

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let request: QueryRequest
        do {
            request = try QueryRequest.parse(
                kind: kind.kind,
                since: since,
                until: until,
                topic: topic,
                flow: flow,
                group: options.group
            )
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let resolver = ConfigurationResolver.forCurrentProcess(kafkaPropertyValidator: librdkafkaPropertyValidator)
        var commandLine = options.commandLineValues
        // --group is a filter here, not Flowmeter's own group.
        commandLine.values[.group] = nil
        let configuration: FlowmeterConfiguration
        do {
            configuration = try resolver.resolve(commandLine, for: .query)
        } catch {
            for problem in error.errors {
                FileHandle.standardError.write(Data("error: \(problem)\n".utf8))
            }
            throw ExitCode(2)
        }
        guard let url = configuration.postgresURL else {
            let variable = ConfigKey.postgres.environmentVariable
            let message = "error: --postgres: no PostgreSQL connection string; pass --postgres or set \(variable)\n"
            FileHandle.standardError.write(Data(message.utf8))
            throw ExitCode(2)
        }
        var logger = makeLogger(label: "flowmeter.query")
        if ProcessInfo.processInfo.environment["FLOWMETER_LOG_LEVEL"] == nil {
            // Keep a query's standard error for problems, not connection events.
            logger.logLevel = .warning
        }
        let result: QueryResult
        do {
            result = try QueryRunner.run(request, url: url, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("error: query failed: \(QueryRunner.describe(error))\n".utf8))
            throw ExitCode(1)
        }
        print(QueryRenderer.render(result, format: format.format), terminator: "")
    }
}

/// ``QueryKind`` as an argument (a conformance of FlowmeterApp's type would have to be public and retroactive).
enum QueryKindArgument: String, ExpressibleByArgument, CaseIterable {
    case events, flows, deadletters, lag

    var kind: QueryKind { QueryKind(rawValue: rawValue)! }
}

/// ``QueryFormat`` as an option value.
enum QueryFormatArgument: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv

    var format: QueryFormat { QueryFormat(rawValue: rawValue)! }
}
