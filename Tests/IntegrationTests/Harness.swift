import Foundation
import Logging
import Testing

/// Locates the parts that integration tests drive: the built `flowmeter` binary and Debian's `kcat`.
///
/// A missing part is a test failure with a message saying how to get it, never a skip.
enum Harness {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `FLOWMETER_BIN`, else `.build/debug/flowmeter` (what `swift build` produces).
    static func flowmeterBinary() throws -> String {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["FLOWMETER_BIN"] { candidates.append(explicit) }
        candidates.append(repositoryRoot.appendingPathComponent(".build/debug/flowmeter").path)
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        Issue.record(
            "the flowmeter binary was not found at \(candidates); run `swift build` first or set FLOWMETER_BIN"
        )
        throw HarnessError.missing("flowmeter binary")
    }

    /// Debian's kcat (or its old name, kafkacat).
    static func kcat() throws -> String {
        for name in ["kcat", "kafkacat"] {
            for directory in ["/usr/bin", "/usr/local/bin"] {
                let path = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: path) { return path }
            }
        }
        Issue.record("kcat is not installed: apt-get install kcat (CI's .ci/run installs it)")
        throw HarnessError.missing("kcat")
    }

    /// Runs a process to completion with `input` on stdin; returns its exit status, stdout and stderr.
    @discardableResult
    static func run(
        _ executable: String,
        _ arguments: [String],
        input: String = ""
    ) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}

extension Harness {
    /// Runs a program with standard input, output and error on /dev/null and waits for it with waitpid(2).
    ///
    /// For scripts that start daemons (pg_ctl): nothing of the test process is inherited but the environment.
    static func spawnAndWait(_ executable: String, _ arguments: [String]) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw HarnessError.unexpected("posix_spawn \(executable): \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw HarnessError.unexpected("waitpid: \(errno)") }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

enum HarnessError: Error {
    case missing(String)
    case unexpected(String)
}

/// A `flowmeter dev-kafka` process.
final class DevKafkaProcess {
    let process = Process()
    let stdin = Pipe()
    let stdout = Pipe()
    let stderr = Pipe()
    private(set) var bootstrapServers = ""

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try Harness.flowmeterBinary())
        process.arguments = ["dev-kafka"] + arguments
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // The first line of stdout is the bootstrap string.
        var line = Data()
        while true {
            let byte = stdout.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        bootstrapServers = String(decoding: line, as: UTF8.self)
        guard !bootstrapServers.isEmpty else {
            let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw HarnessError.unexpected("dev-kafka printed no bootstrap line; stderr: \(err)")
        }
    }

    /// Waits for the process to exit, up to `timeout`; returns its status or nil if it is still running.
    func waitForExit(timeout: Duration) async -> Int32? {
        let end = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < end {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Sends a fault-injection command (the process must run with `--control`); returns its answer line.
    func control(_ command: String) throws -> String {
        stdin.fileHandleForWriting.write(Data((command + "\n").utf8))
        var line = Data()
        while true {
            let byte = stdout.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

let quietLogger = Logger(label: "quiet") { _ in SwiftLogNoOpLogHandler() }
