import ArgumentParser
import FlowmeterApp
import Foundation

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the PostgreSQL schema flowmeter, then exit.",
        discussion: """
            Needs --postgres (or FLOWMETER_POSTGRES_URL). Versioned and idempotent; safe to run from several \
            replicas at once (an advisory lock serializes them). `run` migrates on start-up too. Exits with 2 on a \
            configuration problem and 1 if PostgreSQL fails.
            """
    )

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let resolver = ConfigurationResolver.forCurrentProcess(kafkaPropertyValidator: librdkafkaPropertyValidator)
        let configuration: FlowmeterConfiguration
        do {
            configuration = try resolver.resolve(options.commandLineValues, for: .migrate)
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
        let logger = makeLogger(label: "flowmeter.migrate")
        do {
            print(try SchemaMigrator.migrate(url: url, logger: logger).description)
        } catch {
            FileHandle.standardError.write(Data("error: migration failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
