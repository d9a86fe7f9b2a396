import Foundation
import Kafka
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension Harness {
    /// `FLOWMETER_PROMTOOL`, else `.tools/prometheus/usr/bin/promtool` (scripts/install-deps.sh), else PATH.
    static func promtool() throws -> String {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["FLOWMETER_PROMTOOL"] { candidates.append(explicit) }
        candidates.append(repositoryRoot.appendingPathComponent(".tools/prometheus/usr/bin/promtool").path)
        candidates += ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        Issue.record("promtool was not found (\(candidates)); run scripts/install-deps.sh or set FLOWMETER_PROMTOOL")
        throw HarnessError.missing("promtool")
    }

    /// A TCP port that was free a moment ago on 127.0.0.1.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.unexpected("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw HarnessError.unexpected("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Produces `key|value` lines with kcat, each with the given headers.
    static func produce(
        _ kcat: String,
        broker: String,
        topic: String,
        lines: [String],
        headers: [String] = []
    ) throws {
        var arguments = ["-b", broker, "-P", "-t", topic, "-K", "|"]
        for header in headers { arguments += ["-H", header] }
        let result = try run(kcat, arguments, input: lines.joined(separator: "\n") + "\n")
        guard result.status == 0 else { throw HarnessError.unexpected("kcat -P failed: \(result.stderr)") }
    }

    struct Stamp {
        var trace: String
        var partition: Int32
        var offset: Int64
        var timestampMs: Int64
    }

    /// Reads a topic from the beginning (in a throwaway group) and returns each record's trace-id and timestamp.
    static func timestamps(of topic: String, count: Int, bootstrap: String) async throws -> [Stamp] {
        let consumer = try KafkaConsumer(
            config: KafkaClientConfig(
                bootstrapServers: bootstrap,
                properties: [("auto.offset.reset", "earliest"), ("fetch.wait.max.ms", "10")]
            ),
            groupID: "probe-\(UInt32.random(in: 0...UInt32.max))",
            logger: quietLogger
        )
        defer { consumer.close() }
        try consumer.subscribe(topics: [topic])
        var stamps: [Stamp] = []
        let end = ContinuousClock.now + .seconds(30)
        while stamps.count < count, ContinuousClock.now < end {
            for record in try consumer.pollBatch(maxRecords: 100, timeout: .milliseconds(100)) {
                let text = String(decoding: record.value ?? [], as: UTF8.self)
                guard let range = text.range(of: "\"traceparent\":\"00-") else { continue }
                let trace = String(text[range.upperBound...].prefix(32))
                stamps.append(
                    Stamp(
                        trace: trace,
                        partition: record.partition,
                        offset: record.offset,
                        timestampMs: record.timestampMs
                    )
                )
            }
            await Task.yield()
        }
        guard stamps.count == count else { throw HarnessError.unexpected("read \(stamps.count) of \(count) records") }
        return stamps
    }
}

/// Dapr structured-mode envelopes as daprd writes them (sorted keys, compact).
enum Dapr {
    static func envelope(id: String, topic: String, source: String, trace: String, data: String) -> String {
        let traceparent = "00-\(trace)-00f067aa0ba902b7-01"
        return "{\"data\":\(data),\"datacontenttype\":\"application/json\",\"id\":\"\(id)\",\"pubsubname\":\"pubsub\","
            + "\"source\":\"\(source)\",\"specversion\":\"1.0\",\"time\":\"2026-11-29T03:00:00Z\",\"topic\":\"\(topic)\","
            + "\"traceid\":\"\(traceparent)\",\"traceparent\":\"\(traceparent)\",\"tracestate\":\"\","
            + "\"type\":\"com.dapr.event.sent\"}"
    }
}

/// A process of the built `flowmeter` binary; its standard output and standard error go to files.
final class FlowmeterProcess {
    let process = Process()
    let stderrFile: URL
    let stdoutFile: URL

    init(arguments: [String], environment: [String: String] = [:]) throws {
        let name = "flowmeter-\(UUID().uuidString)"
        stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).log")
        stdoutFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).out")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: try Harness.flowmeterBinary())
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()
    }

    var log: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// What it wrote to standard output so far.
    var output: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }

    func waitForExit(timeout: Duration) async -> Int32? {
        let end = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < end {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: stderrFile)
        try? FileManager.default.removeItem(at: stdoutFile)
    }
}

/// A tiny HTTP client for the daemon's endpoints.
struct HTTPProbe {
    struct Response {
        var status: Int
        var body: String
    }

    let port: Int

    func get(_ path: String) async throws -> Response {
        let url = URL(string: "http://127.0.0.1:\(port)\(path)")!
        var request = URLRequest(url: url)
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        return Response(
            status: (response as? HTTPURLResponse)?.statusCode ?? 0,
            body: String(decoding: data, as: UTF8.self)
        )
    }

    func waitUntilReady(timeout: Duration, daemon: FlowmeterProcess) async throws {
        let end = ContinuousClock.now + timeout
        var last = "no answer"
        while ContinuousClock.now < end {
            if !daemon.process.isRunning {
                throw HarnessError.unexpected(
                    "flowmeter exited with \(daemon.process.terminationStatus): \(daemon.log)"
                )
            }
            if let response = try? await get("/readyz") {
                if response.status == 200 { return }
                last = response.body
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw HarnessError.unexpected("not ready after \(timeout): \(last)\nlog:\n\(daemon.log)")
    }
}

/// A parsed Prometheus text exposition.
struct Metrics {
    let text: String
    private(set) var samples: [(name: String, labels: [String: String], value: Double)] = []

    init(text: String) {
        self.text = text
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = line[..<space]
            var labels: [String: String] = [:]
            var name = String(series)
            if let brace = series.firstIndex(of: "{") {
                name = String(series[..<brace])
                var rest = series[series.index(after: brace)...].dropLast()
                while let equals = rest.firstIndex(of: "=") {
                    let key = String(rest[..<equals]).trimmingCharacters(in: CharacterSet(charactersIn: ","))
                    var index = rest.index(equals, offsetBy: 2)
                    var labelValue = ""
                    while index < rest.endIndex, rest[index] != "\"" {
                        if rest[index] == "\\" { index = rest.index(after: index) }
                        labelValue.append(rest[index])
                        index = rest.index(after: index)
                    }
                    labels[key] = labelValue
                    rest = rest[rest.index(after: index)...]
                }
            }
            samples.append((name, labels, value))
        }
    }

    /// The value of the series with exactly these labels (`nil` if absent).
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The sum over all series of a metric.
    func sum(_ name: String) -> Double {
        samples.filter { $0.name == name }.reduce(0) { $0 + $1.value }
    }
}
