public import Foundation

/// Where to start a partition that has neither a stored offset nor a group commit (`--from`).
public enum StartPosition: Sendable, Hashable, CustomStringConvertible {
    /// The partition's first available offset.
    case earliest
    /// The partition's end.
    case latest
    /// The first offset whose timestamp is at or after this instant.
    case time(Date)

    /// `earliest`, `latest` or the instant in RFC 3339 (UTC).
    public var description: String {
        switch self {
        case .earliest: "earliest"
        case .latest: "latest"
        case .time(let date): formatRFC3339(date)
        }
    }
}

/// A listen address: host and port.
public struct HTTPAddress: Sendable, Hashable, CustomStringConvertible {
    /// A host name, an IPv4 address or an IPv6 address without brackets.
    public var host: String
    /// The TCP port, 1-65535.
    public var port: Int

    /// - Parameters:
    ///   - host: A host name or IP address; IPv6 without brackets.
    ///   - port: The TCP port.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String { formatHostPort(host: host, port: port) }
}

/// One librdkafka property, e.g. `security.protocol=SASL_SSL`.
public struct KafkaProperty: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The librdkafka property name.
    public var key: String
    /// The value, as given (not redacted: pass it to librdkafka, never print it; use ``shownValue``).
    public var value: String
    /// Where the winning value came from.
    public var source: ConfigSource

    /// - Parameters:
    ///   - key: The property name.
    ///   - value: The value.
    ///   - source: Where it came from.
    public init(key: String, value: String, source: ConfigSource) {
        self.key = key
        self.value = value
        self.source = source
    }

    /// Whether the value is secret-bearing (see ``Redaction/isSecretKafkaProperty(_:)``).
    public var isSecret: Bool { Redaction.isSecretKafkaProperty(key) }

    /// The value as it may be shown: `***` for a secret.
    public var shownValue: String { isSecret ? Redaction.mask : value }

    /// `key=value`, redacted.
    public var description: String { "\(key)=\(shownValue)" }

    /// Same as ``description``: redacted.
    public var debugDescription: String { description }

    /// A redacted mirror, so that `dump` and `String(reflecting:)` do not reveal a secret.
    public var customMirror: Mirror {
        Mirror(self, children: ["key": key, "value": shownValue, "source": source], displayStyle: .struct)
    }
}

/// Flowmeter's effective configuration: DESIGN.md 3.1's options, resolved from flags, then environment, then
/// defaults, and validated.
///
/// Secrets (``postgresURL`` and secret-bearing ``kafkaProperties``) are stored as given so that they can be passed
/// on; `description`, `debugDescription`, the mirror and ``entries`` are redacted.
///
/// ## Configuration keys
/// - `brokers`: ``brokers``, default `localhost:9092`.
/// - `postgres`: ``postgresURL``, default none. Secret.
/// - `analyzers`: ``analyzers``, default `./analyzers` if it is a folder, else the built-in LearnFlow set.
/// - `http`: ``httpAddress``, default `0.0.0.0:9464`.
/// - `group`: ``group``, default `flowmeter`.
/// - `from`: ``from``, default `latest` (`earliest` for `backfill`).
/// - `flush-interval`: ``flushInterval``, default `5s`, 100ms to 1h.
/// - `lag-interval`: ``lagInterval``, default `5s`, 100ms to 1h.
/// - `retention`: ``retention``, default `30d`, 1h to 3650d.
/// - `kafka-property`: ``kafkaProperties``, default none.
public struct FlowmeterConfiguration: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// Bootstrap servers, each `host:port` (IPv6 in brackets), in the given order.
    public var brokers: [String]
    /// The libpq connection string (URI or keyword form), or `nil` for live metrics only.
    ///
    /// - Important: A secret. Show ``redactedPostgresURL`` instead.
    public var postgresURL: String?
    /// Where the analyzer definitions come from.
    public var analyzers: AnalyzerSource
    /// The HTTP listen address.
    public var httpAddress: HTTPAddress
    /// Flowmeter's own consumer group id.
    public var group: String
    /// Where to start a partition that has neither a stored offset nor a group commit.
    public var from: StartPosition
    /// The rollup flush period.
    public var flushInterval: Duration
    /// The lag polling period.
    public var lagInterval: Duration
    /// The age after which rollup rows are deleted.
    public var retention: Duration
    /// librdkafka properties, in order: environment entries first, then flags; one per key, the last given wins.
    public var kafkaProperties: [KafkaProperty]
    /// Where each setting's value came from (``ConfigKey/kafkaProperty`` is per property: see ``KafkaProperty/source``).
    public var sources: [ConfigKey: ConfigSource]

    /// A configuration from typed values; ``ConfigurationResolver`` is the usual way to get one.
    public init(
        brokers: [String],
        postgresURL: String?,
        analyzers: AnalyzerSource,
        httpAddress: HTTPAddress,
        group: String,
        from: StartPosition,
        flushInterval: Duration,
        lagInterval: Duration,
        retention: Duration,
        kafkaProperties: [KafkaProperty],
        sources: [ConfigKey: ConfigSource] = [:]
    ) {
        self.brokers = brokers
        self.postgresURL = postgresURL
        self.analyzers = analyzers
        self.httpAddress = httpAddress
        self.group = group
        self.from = from
        self.flushInterval = flushInterval
        self.lagInterval = lagInterval
        self.retention = retention
        self.kafkaProperties = kafkaProperties
        self.sources = sources
    }

    /// The bootstrap servers as librdkafka's `bootstrap.servers` wants them: comma-separated.
    public var bootstrapServers: String { brokers.joined(separator: ",") }

    /// ``postgresURL`` with its password replaced by `***`.
    public var redactedPostgresURL: String? { postgresURL.map(Redaction.redactPostgres) }

    /// Where a setting's value came from; `.default` when unknown.
    ///
    /// - Parameter key: The setting.
    /// - Returns: Its source.
    public func source(of key: ConfigKey) -> ConfigSource { sources[key] ?? .default }

    /// The effective configuration as `check` shows it: one entry per setting and one per Kafka property, redacted.
    public var entries: [ConfigurationEntry] {
        func entry(_ key: ConfigKey, _ value: String) -> ConfigurationEntry {
            ConfigurationEntry(key: key.rawValue, value: value, source: source(of: key))
        }
        var result = [
            entry(.brokers, bootstrapServers),
            entry(.postgres, redactedPostgresURL ?? "(none)"),
            entry(.analyzers, analyzers.description),
            entry(.http, httpAddress.description),
            entry(.group, group),
            entry(.from, from.description),
            entry(.flushInterval, formatDuration(flushInterval)),
            entry(.lagInterval, formatDuration(lagInterval)),
            entry(.retention, formatDuration(retention)),
        ]
        if kafkaProperties.isEmpty {
            result.append(entry(.kafkaProperty, "(none)"))
        } else {
            for property in kafkaProperties {
                result.append(
                    ConfigurationEntry(
                        key: ConfigKey.kafkaProperty.rawValue,
                        value: property.description,
                        source: property.source
                    )
                )
            }
        }
        return result
    }

    /// The redacted entries, `key=value` separated by spaces.
    public var description: String {
        entries.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    /// Same as ``description``: redacted.
    public var debugDescription: String { description }

    /// A redacted mirror, so that `dump` and `String(reflecting:)` do not reveal a secret.
    public var customMirror: Mirror {
        Mirror(self, children: entries.map { (label: $0.key, value: $0.value as Any) }, displayStyle: .struct)
    }
}

/// One line of the effective configuration: a key, its value as it may be shown, and its source.
public struct ConfigurationEntry: Sendable, Hashable, Codable {
    /// The key, e.g. `flush-interval` or `kafka-property`.
    public var key: String
    /// The value, redacted where secret.
    public var value: String
    /// Where the value came from.
    public var sourceDescription: String

    /// - Parameters:
    ///   - key: The key.
    ///   - value: The value, already redacted.
    ///   - source: Where it came from.
    public init(key: String, value: String, source: ConfigSource) {
        self.key = key
        self.value = value
        self.sourceDescription = source.description
    }

    private enum CodingKeys: String, CodingKey {
        case key
        case value
        case sourceDescription = "source"
    }
}
