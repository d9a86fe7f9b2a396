import Foundation
import Synchronization

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

/// The write end of the self-pipe; set once before the handlers are installed.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

private func onTerminationSignal(_ number: Int32) {
    // Async-signal-safe: one write(2) of the signal number.
    var byte = UInt8(truncatingIfNeeded: number)
    _ = write(signalPipeWriteEnd, &byte, 1)
}

/// Process-wide SIGTERM/SIGINT delivery that does not depend on any thread's signal mask.
///
/// A `sigaction` handler writes the signal number to a pipe, whichever thread the kernel picks (librdkafka, NIO
/// and Dispatch all start threads of their own); a watcher thread, which keeps both signals unblocked, reads the
/// pipe and tells every waiter. (Dispatch signal sources, which ServiceLifecycle uses, lose signals on Linux
/// when a thread that does not block them receives them while their disposition is SIG_IGN.)
final class SignalCenter: Sendable {
    static let shared = SignalCenter()

    private let waiters = Mutex<(received: [Int32], continuations: [AsyncStream<Int32>.Continuation])>(([], []))

    private init() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { fatalError("cannot create the signal pipe") }
        signalPipeWriteEnd = fds[1]
        let readEnd = fds[0]
        for number in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = onTerminationSignal
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
        let thread = Thread { [self] in
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGTERM)
            sigaddset(&set, SIGINT)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count == 1 {
                    deliver(Int32(byte))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
        }
        thread.name = "flowmeter-signals"
        thread.start()
    }

    private func deliver(_ number: Int32) {
        let continuations = waiters.withLock { state in
            state.received.append(number)
            return state.continuations
        }
        for continuation in continuations { continuation.yield(number) }
    }

    /// Signals from now on (and any that already arrived, so none is missed between set-up and waiting).
    func signals() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let earlier = waiters.withLock { state in
            state.continuations.append(continuation)
            return state.received
        }
        for number in earlier { continuation.yield(number) }
        return stream
    }
}

/// Catches SIGTERM and SIGINT (and optionally the end of standard input) from the moment it is created.
///
/// Create it before announcing readiness (for example before printing a bootstrap string), so that a signal
/// sent right after the announcement is handled instead of killing the process.
public final class TerminationSignals: Sendable {
    private let stream: AsyncStream<TerminationReason>

    /// Installs the handlers (once per process).
    public init(exitOnStdinClose: Bool) {
        let (stream, continuation) = AsyncStream.makeStream(of: TerminationReason.self)
        self.stream = stream
        let signals = SignalCenter.shared.signals()
        Task {
            for await number in signals { continuation.yield(.signal(number)) }
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
    }

    /// Waits for the first signal (or end of standard input).
    public func wait() async -> TerminationReason {
        var iterator = stream.makeAsyncIterator()
        return await iterator.next() ?? .stdinClosed
    }

    /// All further reasons, for commands that react to a second signal too.
    public var reasons: AsyncStream<TerminationReason> { stream }
}
