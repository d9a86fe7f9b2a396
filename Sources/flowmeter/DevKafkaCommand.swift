import ArgumentParser
import FlowmeterApp
import Foundation

struct DevKafkaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-kafka",
        abstract: "Run a Kafka-protocol broker (librdkafka's mock cluster) on loopback.",
        discussion: """
            Prints the bootstrap servers as the first line of standard output, then runs until SIGTERM or \
            SIGINT. Topics are also created on first produce.
            """
    )

    @Option(name: .long, help: "Number of brokers.")
    var brokerCount: Int = 1

    @Option(name: .customLong("topic"), help: "A topic to create, as NAME:PARTITIONS. Repeatable.")
    var topics: [String] = []

    @Flag(name: .long, help: "Also stop when standard input is closed.")
    var exitOnStdinClose = false

    @Flag(
        name: .long,
        help: """
            Read fault-injection commands from standard input, one per line, each answered on standard output             (ok ... or error: ...): down B, up B, rtt B MS, leader TOPIC PARTITION B, coordinator GROUP B,             errors API CODE[,CODE...], topic-error TOPIC CODE|none. Stops when standard input closes.
            """
    )
    var control = false

    func run() async throws {
        let logger = makeLogger(label: "flowmeter.dev-kafka")
        do {
            let specs = try topics.map { text throws(DevKafkaError) in try DevKafka.TopicSpec(parsing: text) }
            try await DevKafka(
                brokerCount: brokerCount,
                topics: specs,
                exitOnStdinClose: exitOnStdinClose,
                control: control
            )
            .run(logger: logger) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        } catch let error as DevKafkaError {
            throw ValidationError(error.description)
        }
    }
}
