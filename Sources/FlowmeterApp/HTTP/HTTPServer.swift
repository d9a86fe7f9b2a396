import Foundation
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
    router.add(middleware: RequestLimits())
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
        server: .http1(
            configuration: .init(
                // Connections idle (nothing read or written) this long are closed: a client cannot hold one open
                // by sending nothing. Prometheus keeps its connection busy every scrape interval.
                idleTimeout: httpIdleTimeout,
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: 8 * 1024,
                    maxHeaderListSize: 16 * 1024,
                    maxHeaderFieldCount: 64
                )
            )
        ),
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
        onServerRunning: { channel in
            let bound = channel.localAddress.map { "\(host):\($0.port ?? port)" } ?? "\(host):\(port)"
            logger.info("HTTP server listening", metadata: ["http.address": "\(bound)"])
            onListening(bound)
        },
        logger: logger
    )
}

/// How long an HTTP connection may stay idle: `FLOWMETER_HTTP_IDLE_TIMEOUT` (a duration), else 60 s.
private var httpIdleTimeout: TimeAmount {
    let configured = ProcessInfo.processInfo.environment["FLOWMETER_HTTP_IDLE_TIMEOUT"].flatMap(DurationSyntax.parse)
    let duration = configured ?? .seconds(60)
    let (seconds, attoseconds) = duration.components
    return .milliseconds(max(100, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
}

/// The endpoints only answer GET without a body: anything else is refused before routing, and a
/// request announcing a body is refused without reading it.
struct RequestLimits<Context: RequestContext>: RouterMiddleware {
    @concurrent func handle(
        _ request: Request,
        context: Context,
        next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.method == .get else {
            throw HTTPError(.methodNotAllowed, headers: [.allow: "GET"])
        }
        if let length = request.headers[.contentLength], length != "0" {
            throw HTTPError(.contentTooLarge)
        }
        if request.headers[.transferEncoding] != nil {
            throw HTTPError(.contentTooLarge)
        }
        return try await next(request, context)
    }
}
