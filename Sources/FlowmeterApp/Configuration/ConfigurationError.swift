/// One problem with one configuration value.
///
/// The message names the flag or environment variable, the offending value (redacted when it is or may be a
/// secret) and what was expected, e.g.
/// `--flush-interval: expected a duration such as 500ms, 5s, 1m or 1h30m, got "fast"`.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The setting the problem is about.
    public let key: ConfigKey
    /// Where the offending value came from.
    public let source: ConfigSource
    /// The offending value as it may be shown: already redacted, or `nil` when it is not shown at all.
    public let shownValue: String?
    /// What is wrong, e.g. `expected a duration such as 500ms, got "fast"`.
    public let reason: String

    /// A problem described by what was expected; the value is shown quoted after `got`.
    ///
    /// - Parameters:
    ///   - key: The setting.
    ///   - source: Where the value came from.
    ///   - shownValue: The value as it may be shown (already redacted), or `nil` to not show it.
    ///   - expected: What a valid value looks like.
    ///   - detail: What exactly is wrong, if known; it must not contain a secret.
    /// - Returns: The error.
    public static func invalid(
        _ key: ConfigKey,
        from source: ConfigSource,
        shownValue: String?,
        expected: String,
        detail: String? = nil
    ) -> ConfigurationError {
        let got = shownValue.map { ", got \(quoted($0))" } ?? ""
        let detail = detail.map { " (\($0))" } ?? ""
        return ConfigurationError(
            key: key,
            source: source,
            shownValue: shownValue,
            reason: "expected \(expected)\(got)\(detail)"
        )
    }

    /// A problem described by a free-form reason.
    ///
    /// - Parameters:
    ///   - key: The setting.
    ///   - source: Where the value came from.
    ///   - shownValue: The value as it may be shown (already redacted), or `nil`.
    ///   - reason: What is wrong; it must not contain a secret.
    public init(key: ConfigKey, source: ConfigSource, shownValue: String?, reason: String) {
        self.key = key
        self.source = source
        self.shownValue = shownValue
        self.reason = reason
    }

    /// `<flag or environment variable>: <reason>`.
    public var description: String { "\(source.subject): \(reason)" }
}

/// All problems found while resolving a configuration, in option order.
public struct ConfigurationErrors: Error, Sendable, Hashable, CustomStringConvertible {
    /// The problems; never empty.
    public let errors: [ConfigurationError]

    /// Wraps the problems found.
    ///
    /// - Parameter errors: The problems; must not be empty.
    public init(_ errors: [ConfigurationError]) {
        precondition(!errors.isEmpty, "ConfigurationErrors needs at least one error")
        self.errors = errors
    }

    /// One problem per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
