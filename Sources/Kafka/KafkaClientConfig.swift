internal import CRdKafka
import Dispatch
import Foundation
import Logging
import Synchronization

/// librdkafka properties for one client, in the order they are applied (a later value for a key wins).
///
/// Everything librdkafka understands passes through (TLS: `security.protocol`, `ssl.*`; SASL: `sasl.*`), so
/// a deployment's security settings reach librdkafka unchanged. Values of secret-bearing keys never appear in
/// errors or logs (see ``isSecret(key:)``).
public struct KafkaClientConfig: Sendable {
    /// The properties in application order.
    public var properties: [(key: String, value: String)]

    /// Creates a configuration for the given bootstrap servers and extra properties.
    public init(bootstrapServers: String, properties: [(key: String, value: String)] = []) {
        self.properties = [("bootstrap.servers", bootstrapServers)] + properties
    }

    /// Sets (appends) a property; the last value for a key wins.
    public mutating func set(_ key: String, _ value: String) {
        properties.append((key, value))
    }

    /// Returns the last value set for a key.
    public func value(for key: String) -> String? {
        properties.last(where: { $0.key == key })?.value
    }

    /// Whether a librdkafka property carries a secret whose value must never be shown.
    public static func isSecret(key: String) -> Bool {
        let lowered = key.lowercased()
        return lowered.contains("password") || lowered.contains("secret") || lowered == "ssl.key.pem"
            || lowered == "ssl_key" || lowered == "sasl.oauthbearer.config" || lowered.hasSuffix(".key.pem")
    }

    /// Checks every property against librdkafka's own validation without creating a client.
    ///
    /// - Returns: One message per rejected property, naming the key (values of secret keys are redacted).
    public static func validate(_ properties: [(key: String, value: String)]) -> [String] {
        guard let conf = rd_kafka_conf_new() else { return ["cannot allocate a librdkafka configuration"] }
        defer { rd_kafka_conf_destroy(conf) }
        var problems: [String] = []
        for (key, value) in properties {
            if let problem = apply(conf, key: key, value: value) { problems.append(problem) }
        }
        return problems
    }

    /// librdkafka's own verdict on one property: `nil` if it accepts it, else its message (with the value
    /// scrubbed when the key is secret).
    public static func problem(key: String, value: String) -> String? {
        guard let conf = rd_kafka_conf_new() else { return "cannot allocate a librdkafka configuration" }
        defer { rd_kafka_conf_destroy(conf) }
        return set(conf, key: key, value: value)
    }

    static func apply(_ conf: OpaquePointer, key: String, value: String) -> String? {
        set(conf, key: key, value: value).map { "librdkafka property \(key): \($0)" }
    }

    private static func set(_ conf: OpaquePointer, key: String, value: String) -> String? {
        var errstr = [CChar](repeating: 0, count: 512)
        let result = errstr.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_conf_set(conf, key, value, buffer.baseAddress, buffer.count)
        }
        guard result != RD_KAFKA_CONF_OK else { return nil }
        var message = errstr.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if isSecret(key: key), !value.isEmpty {
            message = message.replacingAll(value, with: "***")
        }
        return message
    }

    /// Builds an `rd_kafka_conf_t`. The caller owns it until `rd_kafka_new` succeeds.
    func makeConf() throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(code: .config, reason: "cannot allocate a librdkafka configuration")
        }
        for (key, value) in properties {
            if let problem = Self.apply(conf, key: key, value: value) {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(code: .config, reason: problem)
            }
        }
        return conf
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

/// An `rd_kafka_t` (or other thread-safe librdkafka handle) that may cross concurrency domains.
///
/// - Important: Only for handles librdkafka documents as thread-safe.
struct SendableHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Creates an `rd_kafka_t` from a configuration that already has its callbacks and opaque set.
///
/// - Important: On success librdkafka owns `conf`; on failure it is destroyed here.
func makeClient(type: rd_kafka_type_t, conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    let handle = errstr.withUnsafeMutableBufferPointer { buffer in
        rd_kafka_new(type, conf, buffer.baseAddress, buffer.count)
    }
    guard let handle else {
        rd_kafka_conf_destroy(conf)
        let message = errstr.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        throw KafkaError(code: .clientCreation, reason: "cannot create a Kafka client: \(message)")
    }
    return handle
}

/// Drains librdkafka's log queue (and optionally other event queues) on a thread of its own and routes
/// log lines to swift-log, so that no librdkafka thread ever calls into Swift.
final class EventPump: @unchecked Sendable {
    // @unchecked: `stopped` is a Mutex; the queues are thread-safe librdkafka handles.
    private let logQueue: SendableHandle
    private let mainQueue: SendableHandle?
    private let logger: Logger
    private let onEvent: (@Sendable (OpaquePointer) -> Void)?
    private let state = Mutex(false)
    private let done = DispatchSemaphore(value: 0)
    /// Error events seen (transport failures, broker errors, ...).
    let errorCount = Atomic<Int>(0)

    /// - Parameters:
    ///   - client: the client whose log queue (and, if `serveMain`, main queue) to drain.
    ///   - onEvent: called on the pump thread for every non-log event from the main queue; it must not
    ///     destroy the event.
    init(client: OpaquePointer, serveMain: Bool, logger: Logger, onEvent: (@Sendable (OpaquePointer) -> Void)?) {
        let queue = rd_kafka_queue_new(client)!
        rd_kafka_set_log_queue(client, queue)
        self.logQueue = SendableHandle(pointer: queue)
        self.mainQueue = serveMain ? SendableHandle(pointer: rd_kafka_queue_get_main(client)!) : nil
        self.logger = logger
        self.onEvent = onEvent
        let thread = Thread { [self] in self.loop() }
        thread.name = "flowmeter-rdkafka-events"
        thread.start()
    }

    private func loop() {
        defer { done.signal() }
        while !state.withLock({ $0 }) {
            drainLogs(wait: mainQueue == nil ? 100 : 0)
            if let mainQueue {
                if let event = rd_kafka_queue_poll(mainQueue.pointer, 100) {
                    handle(event)
                    rd_kafka_event_destroy(event)
                }
            }
        }
        drainLogs(wait: 0)
    }

    private func drainLogs(wait: Int32) {
        var timeout = wait
        while let event = rd_kafka_queue_poll(logQueue.pointer, timeout) {
            timeout = 0
            handle(event)
            rd_kafka_event_destroy(event)
        }
    }

    private func handle(_ event: OpaquePointer) {
        switch rd_kafka_event_type(event) {
        case RD_KAFKA_EVENT_LOG:
            var facility: UnsafePointer<CChar>?
            var message: UnsafePointer<CChar>?
            var level: Int32 = 0
            guard rd_kafka_event_log(event, &facility, &message, &level) == 0 else { return }
            let text = message.map { String(cString: $0) } ?? ""
            let fac = facility.map { String(cString: $0) } ?? ""
            logger.log(
                level: Self.level(syslog: level),
                "librdkafka",
                metadata: ["rdkafka.facility": "\(fac)", "rdkafka.message": "\(text)"]
            )
        case RD_KAFKA_EVENT_ERROR:
            errorCount.add(1, ordering: .relaxed)
            let err = rd_kafka_event_error(event)
            let text = String(cString: rd_kafka_event_error_string(event))
            let fatal = rd_kafka_event_error_is_fatal(event) != 0
            logger.log(
                level: fatal ? .critical : .warning,
                "Kafka client error",
                metadata: [
                    "rdkafka.error": "\(String(cString: rd_kafka_err2name(err)))",
                    "rdkafka.message": "\(text)",
                ]
            )
        default:
            onEvent?(event)
        }
    }

    static func level(syslog: Int32) -> Logger.Level {
        switch syslog {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }

    /// Stops the thread and waits for it; then releases the queues. Call before `rd_kafka_destroy`.
    func stop() {
        let wasStopped = state.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !wasStopped else { return }
        // Cut the thread's wait short (it polls for up to 100 ms; a yield before its poll starts makes that poll
        // return at once): each client's close waited out that poll, ~50 ms on average, 100 ms at most.
        rd_kafka_queue_yield(logQueue.pointer)
        if let mainQueue { rd_kafka_queue_yield(mainQueue.pointer) }
        done.wait()
        rd_kafka_queue_destroy(logQueue.pointer)
        if let mainQueue { rd_kafka_queue_destroy(mainQueue.pointer) }
    }
}
