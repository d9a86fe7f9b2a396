import FlowmeterCore
import Foundation
import Logging
import Postgres
import ServiceLifecycle

/// Writes the lag monitor's latest samples to `flowmeter.consumer_lag` once a minute (on a connection of its own).
final class LagSampleWriter: Service {
    private let url: String
    private let monitor: LagMonitor
    private let interval: Duration
    private let logger: Logger

    /// The sampling period: `FLOWMETER_LAG_SAMPLE_INTERVAL` (a duration, at least 1s), else one minute.
    static var configuredInterval: Duration {
        ProcessInfo.processInfo.environment["FLOWMETER_LAG_SAMPLE_INTERVAL"].flatMap(DurationSyntax.parse).map {
            max($0, .seconds(1))
        } ?? .seconds(60)
    }

    init(url: String, monitor: LagMonitor, interval: Duration = LagSampleWriter.configuredInterval, logger: Logger) {
        self.url = url
        self.monitor = monitor
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        let url = self.url
        let monitor = self.monitor
        let logger = self.logger
        let interval = self.interval
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                let samples = monitor.samples
                guard !samples.isEmpty else { continue }
                let written: Result<Int, PQError> = await withCheckedContinuation { continuation in
                    Thread.detachNewThread {
                        continuation.resume(
                            returning: Result { () throws(PQError) -> Int in
                                let connection = try PQConnection.connect(url: url, logger: logger)
                                defer { connection.close() }
                                return try Self.insert(samples, into: connection)
                            }
                        )
                    }
                }
                if case .failure(let error) = written {
                    logger.warning(
                        "Lag samples not written; trying again at the next sample",
                        metadata: ["postgres.error": "\(error)"]
                    )
                }
            }
        }
    }

    /// Inserts samples with one parameterized statement over arrays.
    static func insert(_ samples: [LagSample], into connection: PQConnection) throws(PQError) -> Int {
        func array(_ values: [String?]) -> PQValue {
            .string(
                "{"
                    + values.map {
                        $0.map {
                            "\""
                                + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
                                    of: "\"",
                                    with: "\\\""
                                ) + "\""
                        } ?? "NULL"
                    }.joined(separator: ",") + "}"
            )
        }
        return try connection.execute(
            """
            INSERT INTO flowmeter.consumer_lag
                (sampled_at, group_id, topic, partition, committed_offset, log_start_offset, end_offset,
                 lag_messages, lag_seconds, status)
            SELECT to_timestamp(s / 1000.0), g, t, p, c, l, e, m, sec, st
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[],
                        $8::bigint[], $9::float8[], $10::text[]) AS u(s, g, t, p, c, l, e, m, sec, st)
            """,
            [
                array(samples.map { "\($0.sampledAtMs)" }), array(samples.map(\.groupID)), array(samples.map(\.topic)),
                array(samples.map { "\($0.partition)" }), array(samples.map { $0.committedOffset.map { "\($0)" } }),
                array(samples.map { "\($0.logStartOffset)" }), array(samples.map { "\($0.endOffset)" }),
                array(samples.map { $0.lagMessages.map { "\($0)" } }),
                array(samples.map { $0.lagSeconds.map { "\($0)" } }),
                array(samples.map { $0.status.rawValue }),
            ]
        )
    }
}
