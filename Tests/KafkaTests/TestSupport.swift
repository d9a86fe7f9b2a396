import Foundation
import Kafka
import Logging
import Synchronization

/// A swift-log handler that keeps every entry, for assertions.
final class CapturingLogs: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let entries = Mutex<[Entry]>([])

    func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(sink: self) }
        logger.logLevel = level
        return logger
    }

    var all: [Entry] { entries.withLock { $0 } }
}

struct CapturingHandler: LogHandler {
    let sink: CapturingLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var flat: [String: String] = [:]
        for (key, value) in (event.metadata ?? [:]) { flat[key] = "\(value)" }
        sink.entries.withLock {
            $0.append(.init(level: event.level, message: "\(event.message)", metadata: flat))
        }
    }
}

/// A logger that drops everything (tests that do not look at logs).
let quietLogger = Logger(label: "quiet") { _ in SwiftLogNoOpLogHandler() }

/// Consumer settings that make the mock cluster answer quickly.
func consumerConfig(_ cluster: MockKafkaCluster, _ extra: [(key: String, value: String)] = []) -> KafkaClientConfig {
    KafkaClientConfig(
        bootstrapServers: cluster.bootstrapServers,
        properties: [
            ("auto.offset.reset", "earliest"),
            ("fetch.wait.max.ms", "10"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ] + extra
    )
}

/// Polls until `count` records arrived or `deadline` passed; yields between polls.
func consume(
    _ consumer: KafkaConsumer,
    count: Int,
    within deadline: Duration = .seconds(30)
) async throws -> [ConsumerRecord] {
    var records: [ConsumerRecord] = []
    let end = ContinuousClock.now + deadline
    while records.count < count, ContinuousClock.now < end {
        records += try consumer.pollBatch(maxRecords: 500, timeout: .milliseconds(100))
        await Task.yield()
    }
    return records
}

func produce(_ producer: KafkaProducer, _ messages: [ProducerMessage]) throws {
    for message in messages { try producer.send(message) }
    try producer.flush(timeout: .seconds(20))
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
}
