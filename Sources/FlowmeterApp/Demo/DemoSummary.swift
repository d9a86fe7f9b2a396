import Foundation

/// The samples of a Prometheus text exposition (comments skipped), as `flowmeter demo` reads its own `/metrics`.
struct MetricSamples: Sendable {
    struct Sample: Sendable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    private(set) var samples: [Sample] = []

    init(parsing text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else {
                samples.append(Sample(name: String(series), labels: [:], value: value))
                continue
            }
            var labels: [String: String] = [:]
            var rest = series[series.index(after: brace)...].dropLast()
            while let equals = rest.firstIndex(of: "=") {
                let key = String(rest[..<equals]).trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                var index = rest.index(equals, offsetBy: 2, limitedBy: rest.endIndex) ?? rest.endIndex
                var labelValue = ""
                while index < rest.endIndex, rest[index] != "\"" {
                    if rest[index] == "\\", rest.index(after: index) < rest.endIndex {
                        index = rest.index(after: index)
                        labelValue.append(rest[index] == "n" ? "\n" : rest[index])
                    } else {
                        labelValue.append(rest[index])
                    }
                    index = rest.index(after: index)
                }
                labels[key] = labelValue
                rest = index < rest.endIndex ? rest[rest.index(after: index)...] : rest[rest.endIndex...]
            }
            samples.append(Sample(name: String(series[..<brace]), labels: labels, value: value))
        }
    }

    /// The series of a metric.
    func series(_ name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// The sum over the series of a metric whose labels include `matching`.
    func sum(_ name: String, matching: [String: String] = [:]) -> Double {
        samples.reduce(0) { total, sample in
            guard sample.name == name, matching.allSatisfy({ sample.labels[$0.key] == $0.value }) else { return total }
            return total + sample.value
        }
    }

    /// A histogram's cumulative buckets (`le`, count) for series whose labels include `matching`, ascending.
    func buckets(_ name: String, matching: [String: String]) -> [(le: Double, count: Double)] {
        var byBound: [Double: Double] = [:]
        for sample in series(name + "_bucket") where matching.allSatisfy({ sample.labels[$0.key] == $0.value }) {
            guard let text = sample.labels["le"], let le = text == "+Inf" ? Double.infinity : Double(text) else {
                continue
            }
            byBound[le, default: 0] += sample.value
        }
        return byBound.sorted { $0.key < $1.key }.map { (le: $0.key, count: $0.value) }
    }
}

/// The q-quantile of a cumulative histogram, as PromQL's `histogram_quantile` computes it: linear interpolation
/// inside the bucket that holds the rank; the highest finite bound if the rank falls in `+Inf`; `nil` without
/// observations.
func histogramQuantile(_ q: Double, _ buckets: [(le: Double, count: Double)]) -> Double? {
    guard let total = buckets.last?.count, total > 0 else { return nil }
    let rank = q * total
    var lowerBound = 0.0
    var lowerCount = 0.0
    for bucket in buckets {
        if bucket.count >= rank {
            if bucket.le.isInfinite { return lowerBound }
            let inBucket = bucket.count - lowerCount
            guard inBucket > 0 else { return bucket.le }
            return lowerBound + (bucket.le - lowerBound) * (rank - lowerCount) / inBucket
        }
        lowerBound = bucket.le
        lowerCount = bucket.count
    }
    return lowerBound
}

/// What `flowmeter demo` shows on the terminal, computed from its own `/metrics` (so it shows exactly what
/// Prometheus would scrape) and the simulator's counters.
struct DemoSummary: Sendable {
    struct Flow: Sendable {
        var name: String
        var p50: Double?
        var p95: Double?
        var completed: Double
        var incomplete: Double
    }

    struct DeadLetters: Sendable {
        var topic: String
        var events: Double
        var deadLettered: Double
        var ratio: Double? { events > 0 ? deadLettered / events : nil }
    }

    struct Group: Sendable {
        var name: String
        var lagMessages: Double?
        var lagSeconds: Double?
        var status: String
    }

    var elapsed: Duration
    /// `nil` until there is an earlier exposition to compare with.
    var eventsPerSecond: Double?
    var eventsTotal: Double
    var flows: [Flow]
    var deadLetters: [DeadLetters]
    var groups: [Group]
    var postgres: String

    /// Computes the summary.
    ///
    /// - Parameters:
    ///   - current: The exposition now.
    ///   - rateBase: An earlier exposition and its age in seconds, for events per second.
    ///   - latencyBase: An earlier exposition for the latency window (quantiles over the observations since).
    ///   - flows, topics, groups: What to list, in order.
    ///   - postgresEnabled: Whether rollups are written.
    static func make(
        current: MetricSamples,
        rateBase: (samples: MetricSamples, seconds: Double)?,
        latencyBase: MetricSamples?,
        elapsed: Duration,
        flows: [String],
        topics: [String],
        groups: [String],
        postgresEnabled: Bool,
        now: Date
    ) -> DemoSummary {
        let total = current.sum("flowmeter_events_total")
        var rate: Double?
        if let rateBase, rateBase.seconds > 0 {
            rate = max(0, total - rateBase.samples.sum("flowmeter_events_total")) / rateBase.seconds
        }
        let flowRows = flows.map { flow -> Flow in
            let labels = ["flow": flow]
            var buckets = current.buckets("flowmeter_flow_latency_seconds", matching: labels)
            if let latencyBase {
                let earlier = Dictionary(
                    latencyBase.buckets("flowmeter_flow_latency_seconds", matching: labels).map { ($0.le, $0.count) },
                    uniquingKeysWith: +
                )
                let window = buckets.map { (le: $0.le, count: $0.count - (earlier[$0.le] ?? 0)) }
                // Too few observations in the window: fall back to everything since the start.
                if (window.last?.count ?? 0) >= 20 { buckets = window }
            }
            return Flow(
                name: flow,
                p50: histogramQuantile(0.5, buckets),
                p95: histogramQuantile(0.95, buckets),
                completed: current.sum("flowmeter_flow_latency_seconds_count", matching: labels),
                incomplete: current.sum("flowmeter_flow_incomplete_total", matching: labels)
            )
        }
        let deadLetterRows = topics.map { topic in
            DeadLetters(
                topic: topic,
                events: current.sum("flowmeter_events_total", matching: ["topic": topic]),
                deadLettered: current.sum("flowmeter_deadletter_events_total", matching: ["topic": topic])
            )
        }
        let groupRows = groups.map { group -> Group in
            let labels = ["group": group]
            let lag = current.series("flowmeter_consumergroup_lag_messages").filter { $0.labels["group"] == group }
            let seconds = current.series("flowmeter_consumergroup_lag_seconds").filter { $0.labels["group"] == group }
            var status =
                current.series("flowmeter_consumergroup_status").first {
                    $0.labels["group"] == group && $0.value == 1
                }?.labels["status"] ?? "-"
            if current.sum("flowmeter_consumergroup_lag_stale", matching: labels) > 0 { status += " (stale)" }
            let noCommit = current.sum("flowmeter_consumergroup_no_commit", matching: labels)
            if lag.isEmpty, noCommit > 0 { status = "no commit" }
            return Group(
                name: group,
                lagMessages: lag.isEmpty ? nil : lag.reduce(0) { $0 + $1.value },
                lagSeconds: seconds.map(\.value).max(),
                status: status
            )
        }
        var postgres = "skipped: no --postgres or FLOWMETER_POSTGRES_URL, so no rollups"
        if postgresEnabled {
            let last = current.sum("flowmeter_rollup_last_flush_timestamp_seconds")
            let rows = current.sum("flowmeter_rollup_rows_written_total")
            let up = current.sum("flowmeter_postgres_up") > 0
            if last > 0 {
                let age = max(0, now.timeIntervalSince1970 - last)
                postgres = "last flush \(Int(age.rounded()))s ago, \(Int(rows)) rows written"
            } else {
                postgres = "no flush yet"
            }
            if !up { postgres += " (PostgreSQL unreachable, retrying)" }
        }
        return DemoSummary(
            elapsed: elapsed,
            eventsPerSecond: rate,
            eventsTotal: total,
            flows: flowRows,
            deadLetters: deadLetterRows,
            groups: groupRows,
            postgres: postgres
        )
    }

    /// The lines to show.
    func render(simulator: SimulationSnapshot, latencyWindow: String) -> [String] {
        var lines: [String] = []
        lines.append(
            "flowmeter demo  \(formatClock(elapsed))  events \(eventsPerSecond.map(formatNumber) ?? "-")/s  "
                + "analyzed \(Int(eventsTotal))  produced \(simulator.producedTotal)"
        )
        lines.append(row(["flow", "p50", "p95 (\(latencyWindow))", "completed", "incomplete"], widths: flowWidths))
        for flow in flows {
            lines.append(
                row(
                    [
                        flow.name, formatSeconds(flow.p50), formatSeconds(flow.p95), "\(Int(flow.completed))",
                        "\(Int(flow.incomplete))",
                    ],
                    widths: flowWidths
                )
            )
        }
        lines.append(row(["topic", "events", "dead letters", "ratio"], widths: deadLetterWidths))
        for topic in deadLetters {
            lines.append(
                row(
                    [
                        topic.topic, "\(Int(topic.events))", "\(Int(topic.deadLettered))",
                        topic.ratio.map { String(format: "%.2f%%", $0 * 100) } ?? "-",
                    ],
                    widths: deadLetterWidths
                )
            )
        }
        lines.append(row(["consumer group", "lag (records)", "lag (seconds)", "", "status"], widths: groupWidths))
        for group in groups {
            lines.append(
                row(
                    [
                        group.name, group.lagMessages.map { "\(Int($0))" } ?? "-",
                        group.lagSeconds.map { String(format: "%.1f", $0) } ?? "-", "", group.status,
                    ],
                    widths: groupWidths
                )
            )
        }
        lines.append("postgres: \(postgres)")
        return lines
    }

    private let flowWidths = [-24, 9, 16, 11, 11]
    private let deadLetterWidths = [-24, 9, 16, 11]
    private let groupWidths = [-24, 14, 14, -2, -12]

    /// Columns padded to `widths`: negative widths are left-aligned.
    private func row(_ cells: [String], widths: [Int]) -> String {
        zip(cells, widths).map { cell, width in
            let padding = String(repeating: " ", count: max(0, abs(width) - cell.count))
            return width < 0 ? cell + padding : padding + cell
        }.joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }
}

/// `412 ms`, `2.81 s`, or `-`.
func formatSeconds(_ value: Double?) -> String {
    guard let value else { return "-" }
    return value < 1 ? "\(Int((value * 1000).rounded())) ms" : String(format: "%.2f s", value)
}
