import Foundation
public import Kafka
public import Logging

/// `flowmeter dev-kafka`: librdkafka's mock cluster in a process of its own.
public struct DevKafka: Sendable {
    /// A topic to create at start-up.
    public struct TopicSpec: Sendable, Hashable {
        /// The topic name.
        public var name: String
        /// Its partition count.
        public var partitions: Int32

        /// Parses `NAME:PARTITIONS` (or just `NAME`, with one partition).
        /// - Throws: A message naming what is wrong.
        public init(parsing text: String) throws(DevKafkaError) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, let name = parts.first, !name.isEmpty else {
                throw DevKafkaError("--topic \"\(text)\": expected NAME:PARTITIONS, e.g. learning.requested:6")
            }
            guard Self.isValidTopicName(String(name)) else {
                throw DevKafkaError(
                    "--topic \"\(text)\": a topic name has 1 to 249 characters of [a-zA-Z0-9._-] and is not . or .."
                )
            }
            self.name = String(name)
            if parts.count == 2 {
                guard let count = Int32(parts[1]), (1...10_000).contains(count) else {
                    throw DevKafkaError(
                        "--topic \"\(text)\": the partition count must be a whole number from 1 to 10000"
                    )
                }
                self.partitions = count
            } else {
                self.partitions = 1
            }
        }

        static func isValidTopicName(_ name: String) -> Bool {
            guard (1...249).contains(name.utf8.count), name != ".", name != ".." else { return false }
            return name.utf8.allSatisfy { byte in
                (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
                    || byte == 0x2E || byte == 0x5F || byte == 0x2D
            }
        }
    }

    /// The number of brokers.
    public var brokerCount: Int
    /// Topics to create.
    public var topics: [TopicSpec]
    /// Whether to stop when standard input closes (for test harnesses that may die without signalling).
    public var exitOnStdinClose: Bool
    /// Whether to read fault-injection commands from standard input (``DevKafkaControl``); the process then
    /// also stops when standard input closes.
    public var control: Bool

    /// Creates the command's settings.
    public init(brokerCount: Int, topics: [TopicSpec], exitOnStdinClose: Bool, control: Bool = false) {
        self.brokerCount = brokerCount
        self.topics = topics
        self.exitOnStdinClose = exitOnStdinClose
        self.control = control
    }

    /// Starts the cluster, prints the bootstrap string as the first line of standard output, and runs until
    /// SIGTERM/SIGINT (or the end of standard input, if asked).
    public func run(logger: Logger, printLine: (String) -> Void) async throws {
        guard (1...16).contains(brokerCount) else {
            throw DevKafkaError("--broker-count \(brokerCount): expected 1 to 16")
        }
        let termination = TerminationSignals(exitOnStdinClose: exitOnStdinClose && !control)
        let cluster = try MockKafkaCluster(brokerCount: brokerCount, logger: logger)
        defer { cluster.close() }
        for topic in topics {
            try cluster.createTopic(topic.name, partitions: topic.partitions)
        }
        printLine(cluster.bootstrapServers)
        logger.info(
            "Mock Kafka cluster running",
            metadata: [
                "kafka.bootstrap": "\(cluster.bootstrapServers)",
                "kafka.brokers": "\(brokerCount)",
                "kafka.topics": "\(topics.map { "\($0.name):\($0.partitions)" }.joined(separator: ","))",
            ]
        )
        var reason = TerminationReason.stdinClosed
        if control {
            enum Event: Sendable {
                case command(String)
                case stop(TerminationReason)
            }
            let (events, sink) = AsyncStream.makeStream(of: Event.self)
            let commands = DevKafkaControl.readStandardInput()
            let watchers = [
                Task { _ = sink.yield(.stop(await termination.wait())) },
                Task {
                    for await line in commands { sink.yield(.command(line)) }
                    _ = sink.yield(.stop(.stdinClosed))
                },
            ]
            defer { for watcher in watchers { watcher.cancel() } }
            loop: for await event in events {
                switch event {
                case .command(let line): printLine(DevKafkaControl.execute(line, on: cluster))
                case .stop(let why):
                    reason = why
                    break loop
                }
            }
        } else {
            reason = await termination.wait()
        }
        logger.info("Mock Kafka cluster stopping", metadata: ["reason": "\(reason)"])
    }
}

/// Fault injection for `flowmeter dev-kafka --control`: one command per line on standard input, each answered
/// by one line on standard output, `ok <command>` or `error: <why>`.
///
/// | command | effect |
/// |---|---|
/// | `down BROKER` / `up BROKER` | take a broker down (connections close, the port stays) / bring it back |
/// | `rtt BROKER MS` | add a round-trip delay to every response of a broker |
/// | `leader TOPIC PARTITION BROKER` | move a partition's leadership (`-1`: no leader) |
/// | `coordinator GROUP BROKER` | make a broker the coordinator of a consumer group |
/// | `errors API CODE[,CODE...]` | the next requests of an API (`fetch`, `offset-commit`, ..., or its number) fail with these Kafka error codes, in order |
/// | `topic-error TOPIC CODE` / `topic-error TOPIC none` | every request for a topic fails with CODE / stops failing |
public enum DevKafkaControl {
    static let apis: [String: KafkaAPIKey] = [
        "produce": .produce, "fetch": .fetch, "list-offsets": .listOffsets, "metadata": .metadata,
        "offset-commit": .offsetCommit, "offset-fetch": .offsetFetch, "find-coordinator": .findCoordinator,
        "join-group": .joinGroup, "heartbeat": .heartbeat, "leave-group": .leaveGroup, "sync-group": .syncGroup,
    ]

    /// Lines of standard input, read on a thread of their own (read(2) blocks), until end of file.
    static func readStandardInput() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let thread = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(STDIN_FILENO, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                pending += buffer[0..<count]
                while let newline = pending.firstIndex(of: 0x0A) {
                    continuation.yield(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            continuation.finish()
        }
        thread.name = "dev-kafka-control"
        thread.start()
        return stream
    }

    /// Runs one command against the cluster; returns the answer line.
    public static func execute(_ line: String, on cluster: MockKafkaCluster) -> String {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let verb = words.first else { return "error: empty command" }
        func int32(_ index: Int) -> Int32? { index < words.count ? Int32(words[index]) : nil }
        let bad = "error: bad arguments: \(line)"
        do {
            switch (verb, words.count) {
            case ("down", 2):
                guard let broker = int32(1) else { return bad }
                try cluster.setBrokerDown(broker)
            case ("up", 2):
                guard let broker = int32(1) else { return bad }
                try cluster.setBrokerUp(broker)
            case ("rtt", 3):
                guard let broker = int32(1), let ms = int32(2) else { return bad }
                try cluster.setBrokerRTT(broker, milliseconds: ms)
            case ("leader", 4):
                guard let partition = int32(2), let broker = int32(3) else { return bad }
                try cluster.setPartitionLeader(topic: words[1], partition: partition, broker: broker)
            case ("coordinator", 3):
                guard let broker = int32(2) else { return bad }
                try cluster.setGroupCoordinator(group: words[1], broker: broker)
            case ("errors", 3):
                guard let api = apis[words[1]] ?? Int16(words[1]).map({ KafkaAPIKey(rawValue: $0) }) else {
                    return "error: unknown API \(words[1]); one of \(apis.keys.sorted().joined(separator: ", "))"
                }
                let codes = words[2].split(separator: ",").map { Int32($0) }
                guard !codes.isEmpty, codes.allSatisfy({ $0 != nil }) else { return bad }
                cluster.pushRequestErrors(api, codes.map { KafkaErrorCode(rawValue: $0!) })
            case ("topic-error", 3):
                if words[2] == "none" {
                    cluster.setTopicError(words[1], nil)
                } else {
                    guard let code = int32(2) else { return bad }
                    cluster.setTopicError(words[1], KafkaErrorCode(rawValue: code))
                }
            default:
                return "error: unknown command: \(line) (down|up|rtt|leader|coordinator|errors|topic-error)"
            }
        } catch {
            return "error: \(line): \(error)"
        }
        return "ok \(words.joined(separator: " "))"
    }
}

/// A usage error of `dev-kafka`.
public struct DevKafkaError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
