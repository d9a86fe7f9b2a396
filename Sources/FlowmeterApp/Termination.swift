import Dispatch
import Foundation

/// Why a long-running command is stopping.
public enum TerminationReason: Sendable, Equatable, CustomStringConvertible {
    /// A signal arrived (SIGTERM or SIGINT).
    case signal(Int32)
    /// Standard input reached end of file.
    case stdinClosed

    public var description: String {
        switch self {
        case .signal(SIGTERM): "SIGTERM"
        case .signal(SIGINT): "SIGINT"
        case .signal(let number): "signal \(number)"
        case .stdinClosed: "standard input closed"
        }
    }
}

/// Catches SIGTERM and SIGINT (and optionally the end of standard input) from the moment it is created.
///
/// Create it before announcing readiness (for example before printing a bootstrap string), so that a signal
/// sent right after the announcement is handled instead of killing the process.
public final class TerminationSignals: Sendable {
    private let stream: AsyncStream<TerminationReason>
    private let sources: [SendableSignalSource]

    /// Installs the handlers. The signals' default actions stay disabled for the rest of the process.
    public init(exitOnStdinClose: Bool) {
        let (stream, continuation) = AsyncStream.makeStream(of: TerminationReason.self)
        self.stream = stream
        var sources: [SendableSignalSource] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(.signal(number)) }
            source.resume()
            sources.append(SendableSignalSource(source: source))
        }
        self.sources = sources
        if exitOnStdinClose {
            let thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = read(STDIN_FILENO, &buffer, buffer.count)
                    if count == 0 || (count < 0 && errno != EINTR) { break }
                }
                continuation.yield(.stdinClosed)
            }
            thread.name = "flowmeter-stdin-watch"
            thread.start()
        }
    }

    /// Waits for the first signal (or end of standard input).
    public func wait() async -> TerminationReason {
        var iterator = stream.makeAsyncIterator()
        return await iterator.next() ?? .stdinClosed
    }
}

private struct SendableSignalSource: @unchecked Sendable {
    // @unchecked: a Dispatch source is thread-safe; it is only kept alive here.
    let source: any DispatchSourceSignal
}
