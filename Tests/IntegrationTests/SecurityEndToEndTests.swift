import Foundation
import Kafka
import Postgres
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Secrets, TLS/SASL pass-through, the HTTP surface and hostile label values, on the built binary.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct SecurityEndToEndTests {
    /// A password that must never be printed: everything the processes write is searched for it.
    @Test func aSentinelPasswordNeverAppearsInAnyOutput() async throws {
        let sentinel = "Sentinel\(UInt32.random(in: 100_000...UInt32.max))Pw"
        let wrong = "Wrong\(UInt32.random(in: 100_000...UInt32.max))Pw"
        let base = try TestPostgres.baseURL()
        let role = "fm_sentinel_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PQConnection.connect(url: base, logger: quietLogger)
        // Test set-up only (names and password generated here): CREATE ROLE takes no parameters.
        try admin.execute("CREATE ROLE \(role) LOGIN PASSWORD '\(sentinel)'")
        try admin.execute("CREATE DATABASE \(role) OWNER \(role)")
        admin.close()
        let good = try Self.url(base, user: role, password: sentinel, database: role)
        let badPassword = try Self.url(base, user: role, password: wrong, database: role)
        let closedPort = "postgresql://\(role):\(sentinel)@127.0.0.1:\(try Harness.freePort())/\(role)"
        let kafkaSecrets = [
            "--kafka-property", "sasl.username=svc", "--kafka-property", "sasl.password=\(sentinel)",
            "--kafka-property", "ssl.key.password=\(sentinel)",
        ]
        var outputs: [(what: String, text: String)] = []
        let binary = try Harness.flowmeterBinary()

        // check, text and JSON; with a bad value next to the secrets (the error lists problems, not secrets).
        for format in ["text", "json"] {
            let check = try Harness.run(binary, ["check", "--postgres", good, "--format", format] + kafkaSecrets)
            #expect(check.status == 0, "\(check.stderr)")
            #expect(check.stdout.contains("***"))
            outputs.append(("check --format \(format)", check.stdout + check.stderr))
        }
        let invalid = try Harness.run(
            binary,
            ["check", "--postgres", good, "--kafka-property", "security.protocol=QUANTUM"] + kafkaSecrets
        )
        #expect(invalid.status == 2)
        outputs.append(("check with a bad property", invalid.stdout + invalid.stderr))

        // migrate and query against a wrong password and a closed port: errors, without the password.
        for url in [badPassword, closedPort] {
            let migrate = try Harness.run(binary, ["migrate", "--postgres", url])
            #expect(migrate.status != 0)
            outputs.append(("migrate (failing)", migrate.stdout + migrate.stderr))
            let query = try Harness.run(binary, ["query", "events", "--postgres", url])
            #expect(query.status != 0)
            outputs.append(("query (failing)", query.stdout + query.stderr))
        }

        // run, with the good URL (rollups written) and then with a wrong password (flushes fail and are logged).
        let broker = try DevKafkaProcess(arguments: ["--topic", "exercise.submitted:1"])
        try Harness.produce(
            (0..<20).map { index in
                ProducerMessage(
                    topic: "exercise.submitted",
                    value: Array(
                        Dapr.envelope(
                            id: "e\(index)",
                            topic: "exercise.submitted",
                            source: "frontend",
                            trace: String(format: "%032x", index + 1),
                            data: "{}"
                        ).utf8
                    )
                )
            },
            bootstrap: broker.bootstrapServers
        )
        for (url, expectFlush) in [(good, true), (badPassword, false)] {
            let port = try Harness.freePort()
            let daemon = try FlowmeterProcess(
                arguments: [
                    "run", "--brokers", broker.bootstrapServers, "--postgres", url, "--from", "earliest",
                    "--http", "127.0.0.1:\(port)", "--flush-interval", "300ms", "--group", "fm-secrets-\(expectFlush)",
                ] + kafkaSecrets,
                environment: ["FLOWMETER_LOG_LEVEL": "debug"]
            )
            let http = HTTPProbe(port: port)
            var metrics = ""
            let settled = await Harness.eventually(timeout: .seconds(40)) {
                metrics = (try? await http.get("/metrics").body) ?? ""
                let parsed = Metrics(text: metrics)
                return expectFlush
                    ? parsed.sum("flowmeter_rollup_rows_written_total") > 0
                    : parsed.sum("flowmeter_rollup_flush_failures_total") > 0
            }
            #expect(
                settled,
                "\(expectFlush ? "no flush" : "no failed flush"): \(metrics.suffix(1500)) \(daemon.log.suffix(1500))"
            )
            outputs.append(("/metrics", metrics))
            outputs.append(("/readyz", (try? await http.get("/readyz").body) ?? ""))
            daemon.process.terminate()
            #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
            outputs.append(("run log (debug)", daemon.log))
        }

        #expect(outputs.contains { $0.text.contains("password authentication failed") })
        for output in outputs {
            #expect(!output.text.contains(sentinel), "\(output.what) shows the password")
            #expect(!output.text.contains(wrong), "\(output.what) shows the wrong password")
        }
        print(
            "sentinel password searched in \(outputs.count) outputs (\(outputs.map(\.text.count).reduce(0, +)) bytes): absent"
        )
    }

    static func url(_ base: String, user: String, password: String, database: String) throws -> String {
        guard let scheme = base.range(of: "://"), let at = base.range(of: "@") else {
            throw HarnessError.unexpected("the test PostgreSQL URL is not a postgresql:// URL")
        }
        let rest = base[at.upperBound...]
        let host = rest.prefix { $0 != "/" }
        return String(base[..<scheme.upperBound]) + "\(user):\(password)@\(host)/\(database)"
    }

    /// TLS and SASL settings are passed to librdkafka as given: `check` shows them (secrets redacted) and
    /// librdkafka itself rejects a bad one; `run` with TLS against a plaintext broker cannot connect and says so.
    @Test func tlsAndSaslSettingsReachLibrdkafka() async throws {
        let binary = try Harness.flowmeterBinary()
        let settings = [
            "--kafka-property", "security.protocol=SASL_SSL", "--kafka-property", "sasl.mechanism=SCRAM-SHA-512",
            "--kafka-property", "sasl.username=svc-flowmeter", "--kafka-property", "sasl.password=TopSecret1",
            "--kafka-property", "ssl.ca.location=/etc/ssl/certs/ca-certificates.crt",
        ]
        let check = try Harness.run(binary, ["check"] + settings)
        #expect(check.status == 0, "\(check.stderr)")
        for shown in ["security.protocol", "SASL_SSL", "SCRAM-SHA-512", "svc-flowmeter", "ssl.ca.location"] {
            #expect(check.stdout.contains(shown), "check does not show \(shown): \(check.stdout)")
        }
        #expect(!check.stdout.contains("TopSecret1"))
        let rejected = try Harness.run(binary, ["check", "--kafka-property", "security.protocol=QUANTUM"])
        #expect(rejected.status == 2)
        #expect(rejected.stderr.contains("security.protocol"), "\(rejected.stderr)")

        let broker = try DevKafkaProcess(arguments: ["--topic", "exercise.submitted:1"])
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: [
            "run", "--brokers", broker.bootstrapServers, "--http", "127.0.0.1:\(port)",
            "--kafka-property", "security.protocol=SSL",
        ])
        let http = HTTPProbe(port: port)
        var readiness = HTTPProbe.Response(status: 0, body: "")
        let refused = await Harness.eventually(timeout: .seconds(30)) {
            readiness = (try? await http.get("/readyz")) ?? readiness
            return readiness.status == 503 && readiness.body.contains("Kafka not reachable")
        }
        #expect(refused, "\(readiness) \(daemon.log.suffix(1500))")
        #expect(daemon.log.contains("SSL"), "librdkafka's TLS handshake error is logged: \(daemon.log.suffix(1500))")
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// Only GET on three routes; no bodies; bounded headers; idle connections closed.
    @Test func theHTTPServerAnswersOnlyItsRoutes() async throws {
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(
            arguments: ["run", "--brokers", "127.0.0.1:1", "--http", "127.0.0.1:\(port)"],
            environment: ["FLOWMETER_HTTP_IDLE_TIMEOUT": "1s"]
        )
        let http = HTTPProbe(port: port)
        #expect(await Harness.eventually(timeout: .seconds(20)) { (try? await http.get("/healthz").status) == 200 })
        #expect(try await http.get("/nothing-here").status == 404)
        #expect(try await http.get("/metrics/../../etc/passwd").status == 404)
        #expect(
            try Self.raw(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").hasPrefix(
                "HTTP/1.1 405"
            )
        )
        #expect(
            try Self.raw(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").hasPrefix(
                "HTTP/1.1 413"
            )
        )
        let bigHeader = "X-Big: " + String(repeating: "a", count: 20_000)
        let big = try Self.raw(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\(bigHeader)\r\n\r\n")
        #expect(big.isEmpty || big.hasPrefix("HTTP/1.1 4"), "\(big.prefix(100))")
        let many = (0..<200).map { "X-H\($0): v\r\n" }.joined()
        let manyHeaders = try Self.raw(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\(many)\r\n")
        #expect(manyHeaders.isEmpty || manyHeaders.hasPrefix("HTTP/1.1 4"), "\(manyHeaders.prefix(100))")
        // An idle connection is closed by the server after FLOWMETER_HTTP_IDLE_TIMEOUT.
        let closedAfter = try Self.secondsUntilClosed(port, limit: 10)
        #expect(closedAfter != nil && closedAfter! < 5, "idle connection open for \(String(describing: closedAfter)) s")
        #expect(try await http.get("/healthz").status == 200)
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// CloudEvent types are record content: quotes, backslashes and braces in them are escaped, the exposition
    /// stays valid for promtool, and a type with control characters (a newline) is not a label at all: `other`.
    @Test func hostileLabelValuesAreEscaped() async throws {
        let broker = try DevKafkaProcess(arguments: ["--topic", "exercise.submitted:1"])
        let hostile = #"evil\"} {x=\"1\"} \\ type"#
        let withNewline = #"line\nbreak"#
        try Harness.produce(
            [hostile, withNewline].enumerated().map { index, type in
                let value = #"{"specversion":"1.0","id":"h\#(index)","source":"frontend","type":"\#(type)","data":{}}"#
                return ProducerMessage(topic: "exercise.submitted", value: Array(value.utf8))
            },
            bootstrap: broker.bootstrapServers
        )
        let port = try Harness.freePort()
        let daemon = try FlowmeterProcess(arguments: [
            "run", "--brokers", broker.bootstrapServers, "--http", "127.0.0.1:\(port)", "--from", "earliest",
        ])
        let http = HTTPProbe(port: port)
        var text = ""
        let seen = await Harness.eventually(timeout: .seconds(30)) {
            text = (try? await http.get("/metrics").body) ?? ""
            return text.contains("evil")
        }
        #expect(seen, "\(daemon.log.suffix(1500))")
        // The decoded type is: evil"} {x="1"} \ type
        #expect(
            text.contains(#"flowmeter_events_total{topic="exercise.submitted",type="evil\"} {x=\"1\"} \\ type"} 1"#),
            "\(text.split(separator: "\n").filter { $0.contains("evil") })"
        )
        #expect(text.contains(#"flowmeter_events_total{topic="exercise.submitted",type="other"} 1"#))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let promtool = try Harness.run("/bin/sh", ["-c", "\(try Harness.promtool()) check metrics < \(file.path)"])
        #expect(promtool.status == 0, "\(promtool.stdout) \(promtool.stderr)")
        daemon.process.terminate()
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// Sends raw bytes and returns what the server answers before closing or 2 s of silence.
    static func raw(_ port: Int, _ request: String) throws -> String {
        let fd = try connect(port)
        defer { close(fd) }
        _ = request.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
    }

    /// Opens a connection, sends nothing, and measures how long until the server closes it.
    static func secondsUntilClosed(_ port: Int, limit: Int) throws -> Double? {
        let fd = try connect(port)
        defer { close(fd) }
        var timeout = timeval(tv_sec: limit, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, 0)
        return count == 0 ? Date().timeIntervalSince(started) : nil
    }

    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw HarnessError.unexpected("cannot connect to 127.0.0.1:\(port)")
        }
        return fd
    }
}
