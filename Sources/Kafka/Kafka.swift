internal import CRdKafka

/// The librdkafka version this process is linked against, e.g. `2.0.2`.
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }
