@testable import FlowmeterApp

/// A resolver over an injected environment and a fake file system (every path not listed is missing).
func makeResolver(
    environment: [String: String] = [:],
    paths: [String: PathKind] = [:],
    validator: ConfigurationResolver.KafkaPropertyValidator? = nil
) -> ConfigurationResolver {
    ConfigurationResolver(
        environment: environment,
        pathKind: { paths[$0] ?? .missing },
        kafkaPropertyValidator: validator
    )
}

/// The resolution's errors, or an empty list if it succeeded.
func resolutionErrors(
    _ commandLine: CommandLineValues,
    environment: [String: String] = [:],
    paths: [String: PathKind] = [:],
    validator: ConfigurationResolver.KafkaPropertyValidator? = nil,
    command: CommandKind = .run
) -> [ConfigurationError] {
    do {
        _ = try makeResolver(environment: environment, paths: paths, validator: validator).resolve(
            commandLine,
            for: command
        )
        return []
    } catch {
        return error.errors
    }
}

extension FlowmeterConfiguration {
    /// The single entry for a key (not for `kafka-property`, which may have several).
    func entry(_ key: ConfigKey) -> ConfigurationEntry? {
        entries.first { $0.key == key.rawValue }
    }
}
