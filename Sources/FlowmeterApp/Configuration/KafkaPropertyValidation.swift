import Kafka

/// Checks a librdkafka property with librdkafka itself (`rd_kafka_conf_set` on a scratch configuration), so that
/// `flowmeter check` rejects a misspelt TLS or SASL setting before anything connects.
public let librdkafkaPropertyValidator: ConfigurationResolver.KafkaPropertyValidator = { key, value in
    KafkaClientConfig.problem(key: key, value: value)
}
