/// One setting of DESIGN.md 3.1's options table.
///
/// The raw value is the flag's name without the leading dashes, and the key's name in `flowmeter check` output.
public enum ConfigKey: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    /// `--brokers` / `FLOWMETER_BROKERS`: Kafka bootstrap servers.
    case brokers
    /// `--postgres` / `FLOWMETER_POSTGRES_URL`: the libpq connection string (a secret).
    case postgres
    /// `--analyzers` / `FLOWMETER_ANALYZERS`: the analyzer definitions.
    case analyzers
    /// `--http` / `FLOWMETER_HTTP_ADDR`: the HTTP listen address.
    case http
    /// `--group` / `FLOWMETER_GROUP`: Flowmeter's own consumer group.
    case group
    /// `--from` / `FLOWMETER_FROM`: where to start a partition without a stored offset.
    case from
    /// `--flush-interval` / `FLOWMETER_FLUSH_INTERVAL`: the rollup flush period.
    case flushInterval = "flush-interval"
    /// `--lag-interval` / `FLOWMETER_LAG_INTERVAL`: the lag polling period.
    case lagInterval = "lag-interval"
    /// `--retention` / `FLOWMETER_RETENTION`: the age after which rollup rows are deleted.
    case retention
    /// `--kafka-property k=v` (repeated) / `FLOWMETER_KAFKA_PROPERTIES` (`k=v;k=v`): librdkafka properties.
    case kafkaProperty = "kafka-property"

    /// The command-line flag, with its leading dashes, e.g. `--flush-interval`.
    public var flag: String { "--" + rawValue }

    /// The environment variable, e.g. `FLOWMETER_FLUSH_INTERVAL`.
    public var environmentVariable: String {
        switch self {
        case .brokers: "FLOWMETER_BROKERS"
        case .postgres: "FLOWMETER_POSTGRES_URL"
        case .analyzers: "FLOWMETER_ANALYZERS"
        case .http: "FLOWMETER_HTTP_ADDR"
        case .group: "FLOWMETER_GROUP"
        case .from: "FLOWMETER_FROM"
        case .flushInterval: "FLOWMETER_FLUSH_INTERVAL"
        case .lagInterval: "FLOWMETER_LAG_INTERVAL"
        case .retention: "FLOWMETER_RETENTION"
        case .kafkaProperty: "FLOWMETER_KAFKA_PROPERTIES"
        }
    }

    /// The default as DESIGN.md 3.1 words it, for help texts.
    public var defaultDescription: String {
        switch self {
        case .brokers: "localhost:9092"
        case .postgres: "none"
        case .analyzers: "./analyzers if it exists, else the LearnFlow set built into the binary"
        case .http: "0.0.0.0:9464"
        case .group: "flowmeter"
        case .from: "latest for run, earliest for backfill"
        case .flushInterval: "5s (30s for backfill)"
        case .lagInterval: "5s"
        case .retention: "30d"
        case .kafkaProperty: "none"
        }
    }

    /// Whether the whole value is a secret, so it is shown only in redacted form.
    ///
    /// Kafka properties are secret per property; see ``Redaction/isSecretKafkaProperty(_:)``.
    public var isSecret: Bool { self == .postgres }

    /// The flag, e.g. `--brokers`.
    public var description: String { flag }
}

/// Where a configuration value came from.
public enum ConfigSource: Sendable, Hashable, CustomStringConvertible {
    /// A command-line flag such as `--brokers`; `occurrence` (1-based) for a repeated flag.
    case flag(String, occurrence: Int? = nil)
    /// An environment variable such as `FLOWMETER_BROKERS`; `entry` (1-based) for a list variable.
    case environment(String, entry: Int? = nil)
    /// The built-in default.
    case `default`

    /// The source as shown in the `check` output, e.g. `flag --brokers` or `environment FLOWMETER_BROKERS`.
    public var description: String {
        switch self {
        case .flag(let name, nil): "flag \(name)"
        case .flag(let name, let occurrence?): "flag \(name) #\(occurrence)"
        case .environment(let name, nil): "environment \(name)"
        case .environment(let name, let entry?): "environment \(name) entry \(entry)"
        case .default: "default"
        }
    }

    /// The source as the subject of an error message, e.g. `--brokers` or
    /// `environment variable FLOWMETER_KAFKA_PROPERTIES entry 2`.
    public var subject: String {
        switch self {
        case .flag(let name, nil): name
        case .flag(let name, let occurrence?): "\(name) #\(occurrence)"
        case .environment(let name, nil): "environment variable \(name)"
        case .environment(let name, let entry?): "environment variable \(name) entry \(entry)"
        case .default: "default"
        }
    }
}

/// The command a configuration is resolved for: some defaults depend on it.
public enum CommandKind: String, Sendable, Hashable, CaseIterable {
    /// `flowmeter run`, the daemon.
    case run
    /// `flowmeter backfill`.
    case backfill
    /// `flowmeter migrate`.
    case migrate
    /// `flowmeter query`.
    case query
    /// `flowmeter simulate`.
    case simulate
    /// `flowmeter demo`.
    case demo
    /// `flowmeter check`: resolves the configuration `run` would use.
    case check

    /// The `--from` default: `earliest` for `backfill`, `latest` for everything else (DESIGN.md 3.1).
    public var defaultStartPosition: StartPosition {
        self == .backfill ? .earliest : .latest
    }

    /// The `flush-interval` default: 5 s, but 30 s for a backfill. Every flush also rewrites the pending flow
    /// requests of that moment, and a backlog read out of event-time order holds many (a 1,000,000-record backfill
    /// flushed 120,000-170,000 of them mid-read, seconds of PostgreSQL work); nobody watches a backfill's rollups live.
    public var defaultFlushInterval: Duration {
        self == .backfill ? .seconds(30) : .seconds(5)
    }
}
