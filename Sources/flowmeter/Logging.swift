import Foundation
import Logging

private let bootstrap: Void = {
    let level =
        ProcessInfo.processInfo.environment["FLOWMETER_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}()

/// Bootstraps swift-log once (to standard error, level from `FLOWMETER_LOG_LEVEL`, default `info`) and
/// returns a logger.
func makeLogger(label: String) -> Logger {
    _ = bootstrap
    return Logger(label: label)
}
