import ArgumentParser
import FlowmeterApp

/// The options shared by the commands that read Kafka or PostgreSQL (DESIGN.md 3.1).
///
/// All are optional strings so that "not given" is distinguishable: the environment and the defaults are applied,
/// and values validated, by `ConfigurationResolver` in FlowmeterApp.
struct CommonOptions: ParsableArguments {
    @Option(help: help(.brokers, "Kafka bootstrap servers, comma-separated host:port."))
    var brokers: String?

    @Option(help: help(.postgres, "PostgreSQL connection string (libpq URL or key=value); a secret."))
    var postgres: String?

    @Option(help: help(.analyzers, "Analyzer definitions: a YAML file or a folder of *.yaml."))
    var analyzers: String?

    @Option(help: help(.http, "HTTP listen address host:port."))
    var http: String?

    @Option(help: help(.group, "Flowmeter's own Kafka consumer group."))
    var group: String?

    @Option(help: help(.from, "Where to start a partition without a stored offset: earliest, latest or RFC 3339 time."))
    var from: String?

    @Option(help: help(.flushInterval, "Rollup flush period, e.g. 5s."))
    var flushInterval: String?

    @Option(help: help(.lagInterval, "Lag polling period, e.g. 5s."))
    var lagInterval: String?

    @Option(help: help(.retention, "Age after which rollup rows are deleted, e.g. 30d."))
    var retention: String?

    @Option(
        name: .customLong("kafka-property"),
        help: ArgumentHelp(
            "A librdkafka property k=v (TLS, SASL, ...); repeatable; later wins. "
                + "Env: FLOWMETER_KAFKA_PROPERTIES (k=v;k=v), applied before the flags.",
            valueName: "k=v"
        )
    )
    var kafkaProperties: [String] = []

    /// The flags that were given, for `ConfigurationResolver`.
    var commandLineValues: CommandLineValues {
        let given: [(ConfigKey, String?)] = [
            (.brokers, brokers), (.postgres, postgres), (.analyzers, analyzers), (.http, http), (.group, group),
            (.from, from), (.flushInterval, flushInterval), (.lagInterval, lagInterval), (.retention, retention),
        ]
        var values: [ConfigKey: String] = [:]
        for case (let key, let value?) in given {
            values[key] = value
        }
        return CommandLineValues(values, kafkaProperties: kafkaProperties)
    }
}

private func help(_ key: ConfigKey, _ meaning: String) -> ArgumentHelp {
    ArgumentHelp("\(meaning) Env: \(key.environmentVariable). Default: \(key.defaultDescription).")
}
