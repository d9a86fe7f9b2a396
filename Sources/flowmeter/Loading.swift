import ArgumentParser
import FlowmeterApp
import FlowmeterCore
import Foundation

/// The resolved configuration and analyzer definitions a long-running command needs.
struct Loaded {
    var configuration: FlowmeterConfiguration
    var analyzers: AnalyzerSet
}

/// Resolves the configuration (flag > environment > default) and loads the analyzer files; on problems prints
/// each as `error: …` to standard error and exits with code 2, like `flowmeter check`.
func resolveAndLoad(_ options: CommonOptions, for command: CommandKind) throws -> Loaded {
    let resolver = ConfigurationResolver.forCurrentProcess(kafkaPropertyValidator: librdkafkaPropertyValidator)
    do {
        let configuration = try resolver.resolve(options.commandLineValues, for: command)
        let analyzers = try AnalyzerLoader.load(configuration.analyzers)
        return Loaded(configuration: configuration, analyzers: analyzers.set)
    } catch let errors as ConfigurationErrors {
        for error in errors.errors { FileHandle.standardError.write(Data("error: \(error)\n".utf8)) }
        throw ExitCode(2)
    } catch let errors as AnalyzerErrors {
        for error in errors.errors { FileHandle.standardError.write(Data("error: \(error)\n".utf8)) }
        throw ExitCode(2)
    }
}
