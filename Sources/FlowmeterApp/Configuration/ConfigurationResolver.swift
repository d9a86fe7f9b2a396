import Foundation

/// The configuration values given on the command line: each flag's value if the flag was given.
public struct CommandLineValues: Sendable, Hashable {
    /// Single-valued flags that were given, by key; ``ConfigKey/kafkaProperty`` is ignored here.
    public var values: [ConfigKey: String]
    /// Each `--kafka-property k=v`, in command-line order.
    public var kafkaProperties: [String]

    /// - Parameters:
    ///   - values: The single-valued flags that were given.
    ///   - kafkaProperties: The `--kafka-property` values, in order.
    public init(_ values: [ConfigKey: String] = [:], kafkaProperties: [String] = []) {
        self.values = values
        self.kafkaProperties = kafkaProperties
    }
}

/// What a path names on the file system.
public enum PathKind: Sendable, Hashable {
    /// Nothing (or something unreadable).
    case missing
    /// A regular file (or a link to one).
    case file
    /// A directory (or a link to one).
    case directory
}

/// Resolves Flowmeter's configuration: flag, then `FLOWMETER_*` environment variable, then default
/// (DESIGN.md 3.1), validating every value and collecting every problem.
///
/// Pure apart from the injected ``pathKind`` probe and ``kafkaPropertyValidator``. An environment variable that is
/// empty (or only white space) counts as not set; values are trimmed of surrounding white space.
public struct ConfigurationResolver: Sendable {
    /// Checks one librdkafka property; returns a problem message, or `nil` if librdkafka accepts it.
    ///
    /// The message may quote the value: it is scrubbed of the value of a secret property before it is shown.
    public typealias KafkaPropertyValidator = @Sendable (_ key: String, _ value: String) -> String?

    /// Flush and lag intervals: from 100ms to 1h.
    public static let intervalBounds: ClosedRange<Duration> = .milliseconds(100) ... .seconds(3600)
    /// Retention: from 1h to 3650d.
    public static let retentionBounds: ClosedRange<Duration> = .seconds(3600) ... .seconds(3650 * 86_400)
    /// The analyzer folder used when `--analyzers` is not given and it exists.
    public static let defaultAnalyzersPath = "./analyzers"

    /// The environment, e.g. `ProcessInfo.processInfo.environment`.
    public var environment: [String: String]
    /// What a path names; relative paths are relative to the current directory.
    public var pathKind: @Sendable (String) -> PathKind
    /// Validates each resolved librdkafka property, or `nil` to check only the `key=value` syntax.
    public var kafkaPropertyValidator: KafkaPropertyValidator?

    /// - Parameters:
    ///   - environment: The environment variables.
    ///   - pathKind: The file-system probe; defaults to ``fileSystemPathKind(_:)``.
    ///   - kafkaPropertyValidator: Validation of librdkafka properties, if available.
    public init(
        environment: [String: String],
        pathKind: @escaping @Sendable (String) -> PathKind = ConfigurationResolver.fileSystemPathKind,
        kafkaPropertyValidator: KafkaPropertyValidator? = nil
    ) {
        self.environment = environment
        self.pathKind = pathKind
        self.kafkaPropertyValidator = kafkaPropertyValidator
    }

    /// A resolver over this process's environment and file system.
    ///
    /// - Parameter kafkaPropertyValidator: Validation of librdkafka properties, if available.
    /// - Returns: The resolver.
    public static func forCurrentProcess(kafkaPropertyValidator: KafkaPropertyValidator? = nil) -> ConfigurationResolver
    {
        ConfigurationResolver(
            environment: ProcessInfo.processInfo.environment,
            kafkaPropertyValidator: kafkaPropertyValidator
        )
    }

    /// What a path names on this machine's file system.
    ///
    /// - Parameter path: The path.
    /// - Returns: Its kind.
    @Sendable public static func fileSystemPathKind(_ path: String) -> PathKind {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return .missing
        }
        return isDirectory.boolValue ? .directory : .file
    }

    /// Resolves and validates the configuration.
    ///
    /// - Parameters:
    ///   - commandLine: The flags given.
    ///   - command: The command the configuration is for (it decides the `--from` default).
    /// - Returns: The effective configuration.
    /// - Throws: ``ConfigurationErrors`` with every problem found, each naming its flag or environment variable.
    public func resolve(
        _ commandLine: CommandLineValues,
        for command: CommandKind
    ) throws(ConfigurationErrors) -> FlowmeterConfiguration {
        var resolution = Resolution(commandLine: commandLine, environment: environment)
        let brokers = resolution.setting(.brokers, default: ["localhost:9092"], parseBrokers)
        let postgresURL: String? = resolution.setting(.postgres, default: nil, parsePostgres)
        let analyzers = resolution.setting(.analyzers, default: defaultAnalyzers(), parseAnalyzers)
        let httpAddress = resolution.setting(.http, default: HTTPAddress(host: "0.0.0.0", port: 9464), parseHTTP)
        let group = resolution.setting(.group, default: "flowmeter", parseGroup)
        let from = resolution.setting(.from, default: command.defaultStartPosition, parseFrom)
        let intervalExpectation = "a duration from 100ms to 1h"
        let flushInterval = resolution.setting(
            .flushInterval,
            default: command.defaultFlushInterval,
            parseDuration(within: Self.intervalBounds, expected: intervalExpectation)
        )
        let lagInterval = resolution.setting(
            .lagInterval,
            default: .seconds(5),
            parseDuration(within: Self.intervalBounds, expected: intervalExpectation)
        )
        let retention = resolution.setting(
            .retention,
            default: .seconds(30 * 86_400),
            parseDuration(within: Self.retentionBounds, expected: "a duration from 1h to 3650d")
        )
        let kafkaProperties = resolution.kafkaProperties(validator: kafkaPropertyValidator)
        guard resolution.problems.isEmpty else {
            throw ConfigurationErrors(resolution.problems)
        }
        return FlowmeterConfiguration(
            brokers: brokers,
            postgresURL: postgresURL,
            analyzers: analyzers,
            httpAddress: httpAddress,
            group: group,
            from: from,
            flushInterval: flushInterval,
            lagInterval: lagInterval,
            retention: retention,
            kafkaProperties: kafkaProperties,
            sources: resolution.sources
        )
    }

    private func defaultAnalyzers() -> AnalyzerSource {
        pathKind(Self.defaultAnalyzersPath) == .directory ? .directory(path: Self.defaultAnalyzersPath) : .builtIn
    }

    // MARK: - Parsers

    private func parseBrokers(_ text: String) -> Result<[String], Expectation> {
        let expected = "comma-separated host:port pairs such as kafka-1:9092,kafka-2:9092 (IPv6 as [::1]:9092)"
        var brokers: [String] = []
        var details: [String] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = entry.trimmingCharacters(in: .whitespaces)
            guard !entry.isEmpty else {
                details.append("an empty entry")
                continue
            }
            switch parseHostPort(entry) {
            case .success(let address): brokers.append(formatHostPort(host: address.host, port: address.port))
            case .failure(let problem): details.append("\(quoted(entry)): \(problem.reason)")
            }
        }
        guard details.isEmpty else {
            return .failure(Expectation(expected, detail: details.joined(separator: "; ")))
        }
        return .success(brokers)
    }

    private func parsePostgres(_ text: String) -> Result<String?, Expectation> {
        let lowercased = text.lowercased()
        if lowercased.hasPrefix("postgres://") || lowercased.hasPrefix("postgresql://") || text.contains("=") {
            return .success(text)
        }
        return .failure(
            Expectation("a libpq connection string such as postgres://user:password@host:5432/db or host=h dbname=d")
        )
    }

    private func parseAnalyzers(_ text: String) -> Result<AnalyzerSource, Expectation> {
        switch pathKind(text) {
        case .file: .success(.file(path: text))
        case .directory: .success(.directory(path: text))
        case .missing: .failure(Expectation("an analyzer file or folder", detail: "not found"))
        }
    }

    private func parseHTTP(_ text: String) -> Result<HTTPAddress, Expectation> {
        // `:9464` means all IPv4 interfaces, as in Prometheus exporters' `--web.listen-address`.
        let address = text.hasPrefix(":") ? "0.0.0.0" + text : text
        switch parseHostPort(address) {
        case .success(let parsed): return .success(HTTPAddress(host: parsed.host, port: parsed.port))
        case .failure(let problem):
            return .failure(
                Expectation("a listen address host:port such as 0.0.0.0:9464 or [::]:9464", detail: problem.reason)
            )
        }
    }

    private func parseGroup(_ text: String) -> Result<String, Expectation> {
        isValidGroupID(text)
            ? .success(text)
            : .failure(Expectation("a consumer group id of 1 to 249 characters from A-Z a-z 0-9 . _ -"))
    }

    private func parseFrom(_ text: String) -> Result<StartPosition, Expectation> {
        parseStartPosition(text).map { .success($0) }
            ?? .failure(Expectation("earliest, latest or an RFC 3339 time such as 2026-11-29T03:00:00Z"))
    }

    private func parseDuration(
        within bounds: ClosedRange<Duration>,
        expected: String
    ) -> (String) -> Result<Duration, Expectation> {
        { text in
            guard let duration = DurationSyntax.parse(text) else {
                return .failure(Expectation(DurationSyntax.expectation))
            }
            return bounds.contains(duration) ? .success(duration) : .failure(Expectation(expected))
        }
    }
}

/// What a valid value looks like, and optionally what exactly is wrong with the given one.
struct Expectation: Error {
    let expected: String
    let detail: String?

    init(_ expected: String, detail: String? = nil) {
        self.expected = expected
        self.detail = detail
    }
}

/// The state of one resolution: sources found and problems collected.
private struct Resolution {
    let commandLine: CommandLineValues
    let environment: [String: String]
    var sources: [ConfigKey: ConfigSource] = [:]
    var problems: [ConfigurationError] = []

    init(commandLine: CommandLineValues, environment: [String: String]) {
        self.commandLine = commandLine
        self.environment = environment
    }

    /// The raw text of a setting and its source: the flag if given, else a non-empty environment variable.
    func raw(_ key: ConfigKey) -> (text: String, source: ConfigSource)? {
        if let value = commandLine.values[key] {
            return (value.trimmingCharacters(in: .whitespacesAndNewlines), .flag(key.flag))
        }
        if let value = environment[key.environmentVariable]?.trimmingCharacters(in: .whitespacesAndNewlines),
            !value.isEmpty
        {
            return (value, .environment(key.environmentVariable))
        }
        return nil
    }

    /// Resolves one setting; on a problem, records it and returns the default so that resolution can go on.
    mutating func setting<Value>(
        _ key: ConfigKey,
        default defaultValue: Value,
        _ parse: (String) -> Result<Value, Expectation>
    ) -> Value {
        guard let (text, source) = raw(key) else {
            sources[key] = .default
            return defaultValue
        }
        sources[key] = source
        switch parse(text) {
        case .success(let value):
            return value
        case .failure(let expectation):
            let shown = key.isSecret ? Redaction.redactPostgres(text) : text
            problems.append(
                .invalid(
                    key,
                    from: source,
                    shownValue: shown,
                    expected: expectation.expected,
                    detail: expectation.detail
                )
            )
            return defaultValue
        }
    }

    /// Merges `FLOWMETER_KAFKA_PROPERTIES` entries, then `--kafka-property` flags; the last value of a key wins
    /// and keeps the key's first position.
    mutating func kafkaProperties(validator: ConfigurationResolver.KafkaPropertyValidator?) -> [KafkaProperty] {
        var merged: [KafkaProperty] = []
        var positions: [String: Int] = [:]
        func add(_ property: KafkaProperty) {
            if let position = positions[property.key] {
                merged[position] = property
            } else {
                positions[property.key] = merged.count
                merged.append(property)
            }
        }
        let variable = ConfigKey.kafkaProperty.environmentVariable
        if let list = environment[variable] {
            for (offset, entry) in list.split(separator: ";", omittingEmptySubsequences: false).enumerated() {
                let entry = entry.trimmingCharacters(in: .whitespacesAndNewlines)
                if !entry.isEmpty,
                    let property = parseKafkaProperty(entry, from: .environment(variable, entry: offset + 1))
                {
                    add(property)
                }
            }
        }
        for (offset, entry) in commandLine.kafkaProperties.enumerated() {
            let source = ConfigSource.flag(ConfigKey.kafkaProperty.flag, occurrence: offset + 1)
            if let property = parseKafkaProperty(entry.trimmingCharacters(in: .whitespacesAndNewlines), from: source) {
                add(property)
            }
        }
        if let validator {
            for property in merged {
                if let problem = validator(property.key, property.value) {
                    var reason = "librdkafka rejects \(property.key): \(problem)"
                    if property.isSecret {
                        reason = Redaction.scrub(reason, secret: property.value)
                    }
                    problems.append(
                        ConfigurationError(
                            key: .kafkaProperty,
                            source: property.source,
                            shownValue: nil,
                            reason: reason
                        )
                    )
                }
            }
        }
        return merged
    }

    /// Parses one `key=value`; on a problem, records it (never showing a possible secret) and returns `nil`.
    private mutating func parseKafkaProperty(_ entry: String, from source: ConfigSource) -> KafkaProperty? {
        let expected = "key=value such as security.protocol=SASL_SSL"
        guard let equals = entry.firstIndex(of: "=") else {
            // Show the entry only if it is a plausible, non-secret property name: it may be a pasted secret.
            let showable = isValidKafkaPropertyName(entry) && !Redaction.isSecretKafkaProperty(entry)
            problems.append(
                .invalid(
                    .kafkaProperty,
                    from: source,
                    shownValue: showable ? entry : nil,
                    expected: expected,
                    detail: "no ="
                )
            )
            return nil
        }
        let key = entry[..<equals].trimmingCharacters(in: .whitespaces)
        let value = entry[entry.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty else {
            problems.append(
                .invalid(.kafkaProperty, from: source, shownValue: nil, expected: expected, detail: "empty key")
            )
            return nil
        }
        guard isValidKafkaPropertyName(key) else {
            problems.append(
                .invalid(
                    .kafkaProperty,
                    from: source,
                    shownValue: key,
                    expected: "a librdkafka property name (lowercase letters, digits, . _ -) such as ssl.ca.location"
                )
            )
            return nil
        }
        let owned: [String: ConfigKey] = [
            "bootstrap.servers": .brokers, "metadata.broker.list": .brokers, "group.id": .group,
        ]
        if let owner = owned[key] {
            problems.append(
                ConfigurationError(
                    key: .kafkaProperty,
                    source: source,
                    shownValue: nil,
                    reason: "\(key) is set with \(owner.flag) or \(owner.environmentVariable), not as a Kafka property"
                )
            )
            return nil
        }
        return KafkaProperty(key: key, value: value, source: source)
    }
}
