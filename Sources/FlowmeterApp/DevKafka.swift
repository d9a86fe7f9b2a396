import Kafka
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

    /// Creates the command's settings.
    public init(brokerCount: Int, topics: [TopicSpec], exitOnStdinClose: Bool) {
        self.brokerCount = brokerCount
        self.topics = topics
        self.exitOnStdinClose = exitOnStdinClose
    }

    /// Starts the cluster, prints the bootstrap string as the first line of standard output, and runs until
    /// SIGTERM/SIGINT (or the end of standard input, if asked).
    public func run(logger: Logger, printLine: (String) -> Void) async throws {
        guard (1...16).contains(brokerCount) else {
            throw DevKafkaError("--broker-count \(brokerCount): expected 1 to 16")
        }
        let termination = TerminationSignals(exitOnStdinClose: exitOnStdinClose)
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
        let reason = await termination.wait()
        logger.info("Mock Kafka cluster stopping", metadata: ["reason": "\(reason)"])
    }
}

/// A usage error of `dev-kafka`.
public struct DevKafkaError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
