import Foundation

// MARK: - Host and port

/// Parses `host:port`, `[ipv6]:port`; the host is returned without brackets. The reason names what is wrong.
func parseHostPort(_ text: String) -> Result<(host: String, port: Int), HostPortProblem> {
    let host: String
    let portText: Substring
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else {
            return .failure(HostPortProblem("no closing ]"))
        }
        host = String(text[text.index(after: text.startIndex)..<close])
        let afterClose = text[text.index(after: close)...]
        guard afterClose.hasPrefix(":") else {
            return .failure(HostPortProblem("no port"))
        }
        portText = afterClose.dropFirst()
        guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || ":.%".contains($0) || $0.isLetter }) else {
            return .failure(HostPortProblem("not an IPv6 address in brackets"))
        }
    } else {
        guard let colon = text.lastIndex(of: ":") else {
            return .failure(HostPortProblem("no port"))
        }
        host = String(text[..<colon])
        portText = text[text.index(after: colon)...]
        if host.contains(":") {
            return .failure(HostPortProblem("an IPv6 address needs brackets, as in [::1]:9092"))
        }
        guard !host.isEmpty else {
            return .failure(HostPortProblem("no host"))
        }
        guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
            return .failure(HostPortProblem("the host has characters not allowed in a host name"))
        }
    }
    guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), let port = Int(portText),
        (1...65535).contains(port)
    else {
        return .failure(HostPortProblem("the port must be a number from 1 to 65535"))
    }
    return .success((host, port))
}

/// What is wrong with a `host:port`.
struct HostPortProblem: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// `host:port`, with an IPv6 host in brackets.
func formatHostPort(host: String, port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}

// MARK: - Start position

/// Parses `earliest`, `latest` (any case) or an RFC 3339 instant with a time zone, e.g. `2026-11-29T03:00:00Z`.
func parseStartPosition(_ text: String) -> StartPosition? {
    switch text.lowercased() {
    case "earliest": return .earliest
    case "latest": return .latest
    default: return parseRFC3339(text).map(StartPosition.time)
    }
}

/// Parses an RFC 3339 date-time (`T` separator, `Z` or a numeric offset, optional fractional seconds).
func parseRFC3339(_ text: String) -> Date? {
    // RFC 3339 allows a lowercase t and z; ISO8601DateFormatter wants them uppercase.
    let normalized = text.uppercased()
    guard normalized.count >= 20, normalized.contains("T") else {
        return nil
    }
    for options: ISO8601DateFormatter.Options in [
        [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds],
    ] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = options
        if let date = formatter.date(from: normalized) {
            return date
        }
    }
    return nil
}

/// An instant in RFC 3339, UTC, with milliseconds only when there are some.
func formatRFC3339(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    let hasFraction = date.timeIntervalSince1970.rounded(.down) != date.timeIntervalSince1970
    formatter.formatOptions = hasFraction ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
    return formatter.string(from: date)
}

// MARK: - Names

/// Whether a Kafka consumer group id is acceptable: 1-249 characters from `A-Z a-z 0-9 . _ -`.
func isValidGroupID(_ text: String) -> Bool {
    (1...249).contains(text.count)
        && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
}

/// Whether a text looks like a librdkafka property name: lowercase letters, digits, `.`, `_`, `-`.
func isValidKafkaPropertyName(_ text: String) -> Bool {
    !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || "._-".contains($0)) }
}
