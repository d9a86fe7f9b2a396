import ArgumentParser

struct DevKafkaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-kafka",
        abstract: "Run a Kafka-protocol broker (librdkafka's mock cluster) on loopback."
    )

    func run() async throws {
        throw ValidationError("not implemented yet")
    }
}
