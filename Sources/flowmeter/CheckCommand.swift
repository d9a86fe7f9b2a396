import ArgumentParser

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and print it with secrets redacted."
    )

    func run() async throws {
        throw ValidationError("not implemented yet")
    }
}
