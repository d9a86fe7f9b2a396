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

/// Waits until SIGTERM or SIGINT arrives, or (optionally) until standard input is closed.
///
/// The signals' default actions are disabled for the rest of the process so that the caller can shut down
/// cleanly.
public func waitForTermination(exitOnStdinClose: Bool) async -> TerminationReason {
    let (stream, continuation) = AsyncStream.makeStream(of: TerminationReason.self)
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGTERM, SIGINT] {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield(.signal(number)) }
        source.resume()
        sources.append(source)
    }
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
    var iterator = stream.makeAsyncIterator()
    let reason = await iterator.next() ?? .stdinClosed
    for source in sources { source.cancel() }
    return reason
}
