import ArgumentParser
import FlowmeterApp
import Foundation

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and the analyzer files; print them with secrets redacted.",
        discussion: """
            Exits with 0 and prints the effective configuration and a summary of the analyzer definitions, or exits \
            with 2 and prints each problem (analyzer problems as file:line: key: message).
            """
    )

    @OptionGroup var options: CommonOptions

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text
        case json
    }

    func run() async throws {
        let resolver = ConfigurationResolver.forCurrentProcess(kafkaPropertyValidator: librdkafkaPropertyValidator)
        let result = CheckRunner(resolver: resolver)
            .run(options.commandLineValues, format: format == .json ? .json : .text)
        guard result.problems.isEmpty else {
            for problem in result.problems {
                FileHandle.standardError.write(Data("error: \(problem)\n".utf8))
            }
            throw ExitCode(result.exitCode)
        }
        print(result.output, terminator: "")
    }
}
