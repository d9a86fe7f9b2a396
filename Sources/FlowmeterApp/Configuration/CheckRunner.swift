import Foundation

/// The output formats of `flowmeter check`.
public enum CheckOutputFormat: String, Sendable, Hashable, CaseIterable {
    /// Aligned columns: key, value, source.
    case text
    /// A JSON object: `{"settings": [{"key", "value", "source"}, ...], "analyzers": {...}}`.
    case json
}

/// Renders the effective configuration, redacted.
public enum ConfigurationRenderer {
    /// The configuration in the given format, ending with a newline.
    ///
    /// - Parameters:
    ///   - configuration: The configuration.
    ///   - format: The format.
    /// - Returns: The text; secrets are redacted.
    public static func render(_ configuration: FlowmeterConfiguration, as format: CheckOutputFormat) -> String {
        switch format {
        case .text: text(configuration.entries)
        case .json: json(configuration.entries)
        }
    }

    /// The configuration and a summary of the analyzer definitions, ending with a newline.
    ///
    /// Text: the configuration, a blank line, then `analyzers: <files> — 6 topics, 7 dead-letter topics, ...`.
    /// JSON: `{"settings": [...], "analyzers": {"files", "topics", "dead_letter_patterns", "dead_letter_topics",
    /// "groups", "flows", "slos", "limits"}}`.
    ///
    /// - Parameters:
    ///   - configuration: The configuration.
    ///   - analyzers: The analyzer definitions it names.
    ///   - format: The format.
    /// - Returns: The text; secrets are redacted.
    public static func render(
        _ configuration: FlowmeterConfiguration,
        analyzers: LoadedAnalyzers,
        as format: CheckOutputFormat
    ) -> String {
        switch format {
        case .text: text(configuration.entries) + "\n" + AnalyzerSummary.line(analyzers) + "\n"
        case .json: json(configuration.entries, analyzers: AnalyzerSummary.Document(analyzers))
        }
    }

    /// One line per entry: key, value and source in aligned columns.
    static func text(_ entries: [ConfigurationEntry]) -> String {
        let keyWidth = entries.map(\.key.count).max() ?? 0
        let valueWidth = entries.map(\.value.count).max() ?? 0
        func padded(_ text: String, to width: Int) -> String {
            text + String(repeating: " ", count: max(0, width - text.count))
        }
        return entries.map { entry in
            "\(padded(entry.key, to: keyWidth))  \(padded(entry.value, to: valueWidth))  \(entry.sourceDescription)\n"
        }
        .joined()
    }

    /// `{"settings": [...]}`, pretty-printed with sorted keys.
    static func json(_ entries: [ConfigurationEntry], analyzers: AnalyzerSummary.Document? = nil) -> String {
        struct Document: Encodable {
            let settings: [ConfigurationEntry]
            let analyzers: AnalyzerSummary.Document?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and numbers cannot fail.
        let data = try! encoder.encode(Document(settings: entries, analyzers: analyzers))
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// What `flowmeter check` prints and how it exits.
public struct CheckResult: Sendable, Hashable {
    /// For standard output: the redacted configuration, or empty on problems.
    public var output: String
    /// One message per problem, for standard error (without the `error: ` prefix); empty when all is well.
    public var problems: [String]

    /// `0` when the configuration is valid, `2` otherwise.
    public var exitCode: Int32 { problems.isEmpty ? 0 : 2 }
}

/// `flowmeter check`: resolves the configuration, loads the analyzer definitions it names and renders both, or
/// reports every problem (configuration problems first; analyzer files are read only for a valid configuration).
public struct CheckRunner: Sendable {
    /// The resolver, with its environment, file-system probe and Kafka property validator.
    public var resolver: ConfigurationResolver

    /// - Parameter resolver: The resolver to use.
    public init(resolver: ConfigurationResolver) {
        self.resolver = resolver
    }

    /// Checks the configuration and the analyzer definitions `run` would use.
    ///
    /// - Parameters:
    ///   - commandLine: The flags given.
    ///   - format: The output format.
    /// - Returns: The output or the problems; neither contains a secret.
    public func run(_ commandLine: CommandLineValues, format: CheckOutputFormat) -> CheckResult {
        let configuration: FlowmeterConfiguration
        do {
            configuration = try resolver.resolve(commandLine, for: .check)
        } catch {
            return CheckResult(output: "", problems: error.errors.map(\.description))
        }
        do {
            let analyzers = try AnalyzerLoader.load(configuration.analyzers)
            return CheckResult(
                output: ConfigurationRenderer.render(configuration, analyzers: analyzers, as: format),
                problems: []
            )
        } catch {
            return CheckResult(output: "", problems: error.errors.map(\.description))
        }
    }
}
