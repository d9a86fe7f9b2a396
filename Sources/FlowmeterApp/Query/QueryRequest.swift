public import Foundation

/// What `flowmeter query` reads (DESIGN.md 3.1).
public enum QueryKind: String, Sendable, Hashable, CaseIterable {
    /// Events and bytes per topic and CloudEvent type, from `flowmeter.event_counts_1m`.
    case events
    /// Flow counts and latency percentiles over the merged sketches, from `flowmeter.flow_latency_1m`.
    case flows
    /// Dead-letter counts, ratio and delay per original topic, from `flowmeter.deadletters_1m`.
    case deadletters
    /// The latest lag sample per group, topic and partition, from `flowmeter.consumer_lag`.
    case lag
}

/// A problem with the options of `flowmeter query`; the command prints it as `error: …` and exits with 2.
public struct QueryOptionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The option, e.g. `--since`.
    public let option: String
    /// What is wrong, e.g. `expected a duration such as 1h or an RFC 3339 time, got "x"`.
    public let message: String

    /// Creates an error.
    public init(option: String, message: String) {
        self.option = option
        self.message = message
    }

    /// `--since: expected …`.
    public var description: String { "\(option): \(message)" }
}

/// One `flowmeter query`: the kind, the time range and the filters.
///
/// Minute windows are included when `since <= window_start < until`; lag samples when
/// `since <= sampled_at < until`.
public struct QueryRequest: Sendable, Hashable {
    /// What to read.
    public var kind: QueryKind
    /// The inclusive start of the range.
    public var since: Date
    /// The exclusive end of the range.
    public var until: Date
    /// Only this topic (`events`, `deadletters`, `lag`).
    public var topic: String?
    /// Only this flow (`flows`).
    public var flow: String?
    /// Only this consumer group (`lag`).
    public var group: String?

    /// Creates a request; see ``parse(kind:since:until:topic:flow:group:now:)`` for one from option text.
    public init(
        kind: QueryKind,
        since: Date,
        until: Date,
        topic: String? = nil,
        flow: String? = nil,
        group: String? = nil
    ) {
        self.kind = kind
        self.since = since
        self.until = until
        self.topic = topic
        self.flow = flow
        self.group = group
    }

    /// The `--since` default.
    public static let defaultSince = "1h"

    /// Builds a request from the command's option texts.
    ///
    /// - Parameters:
    ///   - kind: What to read.
    ///   - since: `--since`: a duration (`1h`, `30m`, `7d`, meaning `now` minus it) or an RFC 3339 instant.
    ///   - until: `--until`, the same syntax; nil for `now`.
    ///   - topic: `--topic`; only for `events`, `deadletters` and `lag`.
    ///   - flow: `--flow`; only for `flows`.
    ///   - group: `--group`; only for `lag`.
    ///   - now: The current time.
    /// - Returns: The request.
    /// - Throws: A ``QueryOptionError`` for a bad time, an empty range, or a filter the kind does not have.
    public static func parse(
        kind: QueryKind,
        since: String = defaultSince,
        until: String? = nil,
        topic: String? = nil,
        flow: String? = nil,
        group: String? = nil,
        now: Date = Date()
    ) throws(QueryOptionError) -> QueryRequest {
        let start = try QueryTime.parse(since, option: "--since", now: now)
        let end =
            try until.map { text throws(QueryOptionError) in try QueryTime.parse(text, option: "--until", now: now) }
            ?? now
        guard start < end else {
            throw QueryOptionError(
                option: "--since",
                message: "the range is empty: \(formatRFC3339(start)) is not before --until \(formatRFC3339(end))"
            )
        }
        let filters: [(option: String, value: String?, kinds: Set<QueryKind>)] = [
            ("--topic", topic, [.events, .deadletters, .lag]),
            ("--flow", flow, [.flows]),
            ("--group", group, [.lag]),
        ]
        for filter in filters {
            guard let value = filter.value else { continue }
            guard filter.kinds.contains(kind) else {
                let kinds = QueryKind.allCases.filter(filter.kinds.contains).map(\.rawValue).joined(separator: ", ")
                throw QueryOptionError(
                    option: filter.option,
                    message: "does not apply to query \(kind.rawValue) (only to \(kinds))"
                )
            }
            guard !value.isEmpty else { throw QueryOptionError(option: filter.option, message: "must not be empty") }
            guard !value.utf8.contains(0) else {
                throw QueryOptionError(option: filter.option, message: "must not contain a NUL character")
            }
        }
        return QueryRequest(kind: kind, since: start, until: end, topic: topic, flow: flow, group: group)
    }
}

/// The time syntax of `--since` and `--until`.
public enum QueryTime {
    /// What a time looks like, for error messages.
    public static let expectation = "a duration such as 1h or an RFC 3339 time"

    /// Parses a duration (`1h`, `30m`, `7d`, `1h30m`: that long before `now`) or an RFC 3339 instant
    /// (`2026-11-29T03:00:00Z`, `2026-11-29T04:00:00.5+01:00`).
    ///
    /// - Returns: The instant, or nil if the text is neither.
    public static func parse(_ text: String, now: Date) -> Date? {
        if let duration = DurationSyntax.parse(text) {
            return now.addingTimeInterval(-Double(DurationSyntax.milliseconds(duration)) / 1000)
        }
        return parseRFC3339(text)
    }

    /// Like ``parse(_:now:)``, throwing `<option>: expected a duration such as 1h or an RFC 3339 time, got "…"`.
    public static func parse(_ text: String, option: String, now: Date) throws(QueryOptionError) -> Date {
        guard let date = parse(text, now: now) else {
            throw QueryOptionError(option: option, message: "expected \(expectation), got \(quoted(text))")
        }
        return date
    }

    /// `text` in double quotes, with `"`, `\` and control characters escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
