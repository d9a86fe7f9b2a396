public import Hummingbird
public import Logging
import NIOCore

/// What Flowmeter's HTTP endpoints serve. Every closure answers from memory: no scrape ever waits on Kafka or
/// PostgreSQL.
public struct HTTPEndpoints: Sendable {
    /// The Prometheus text exposition for `GET /metrics`.
    public var metrics: @Sendable () -> String
    /// Why the process is not ready (`GET /readyz` answers 503 with these lines); empty when ready.
    public var notReadyReasons: @Sendable () -> [String]

    /// Creates the endpoints.
    public init(metrics: @escaping @Sendable () -> String, notReadyReasons: @escaping @Sendable () -> [String]) {
        self.metrics = metrics
        self.notReadyReasons = notReadyReasons
    }
}

/// Builds the HTTP server (`/metrics`, `/healthz`, `/readyz`) as a `Service` for the process's service group.
///
/// - Parameter onListening: called with the bound `host:port` once the server accepts connections (the port
///   is the real one when 0 was asked for).
public func makeHTTPServer(
    host: String,
    port: Int,
    endpoints: HTTPEndpoints,
    logger: Logger,
    onListening: @escaping @Sendable (String) -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router()
    router.get("/metrics") { _, _ -> Response in
        let text = endpoints.metrics()
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text))
        )
    }
    router.get("/healthz") { _, _ -> Response in
        Response(
            status: .ok,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: "ok\n"))
        )
    }
    router.get("/readyz") { _, _ -> Response in
        let reasons = endpoints.notReadyReasons()
        let body = reasons.isEmpty ? "ready\n" : "not ready:\n" + reasons.map { "- \($0)\n" }.joined()
        return Response(
            status: reasons.isEmpty ? .ok : .serviceUnavailable,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }
    return Application(
        router: router,
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
        onServerRunning: { channel in
            let bound = channel.localAddress.map { "\(host):\($0.port ?? port)" } ?? "\(host):\(port)"
            logger.info("HTTP server listening", metadata: ["http.address": "\(bound)"])
            onListening(bound)
        },
        logger: logger
    )
}
