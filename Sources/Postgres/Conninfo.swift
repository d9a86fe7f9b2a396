// Connection-string handling that needs no libpq: redaction for display and scrubbing of secrets from messages.

/// The connection parameters whose values are secrets and are never shown.
let secretConninfoKeys: Set<String> = ["password", "sslpassword"]

/// Returns a connection string with every secret replaced by `***`, safe to print or log.
///
/// Both libpq forms are understood:
/// - URLs (`postgres://` or `postgresql://`): the password in the user info and the `password` and `sslpassword`
///   query parameters are redacted, e.g. `postgres://flowmeter:***@127.0.0.1:5432/flowmeter`.
/// - Keyword/value strings: the values of `password` and `sslpassword` are redacted, e.g.
///   `host=x password=*** dbname=y`.
///
/// A string that cannot be parsed is scrubbed of anything that looks like a password assignment instead, so the
/// result never contains a password either way.
///
/// - Parameter conninfo: A libpq connection string (URL or keyword/value form).
/// - Returns: The connection string with its secrets replaced by `***`.
public func redactedConninfo(_ conninfo: String) -> String {
    if isConnectionURL(conninfo) {
        return redactedURL(conninfo)
    }
    if let redacted = redactedKeywordValue(conninfo) {
        return redacted
    }
    return scrubbedPasswordAssignments(conninfo)
}

/// Whether `conninfo` is in libpq's URL form.
func isConnectionURL(_ conninfo: String) -> Bool {
    conninfo.hasPrefix("postgresql://") || conninfo.hasPrefix("postgres://")
}

// MARK: - URL form

private func redactedURL(_ url: String) -> String {
    guard let schemeEnd = url.firstRange(of: "://") else { return scrubbedPasswordAssignments(url) }
    let scheme = url[..<schemeEnd.upperBound]
    let rest = url[schemeEnd.upperBound...]
    let queryStart = rest.firstIndex(of: "?") ?? rest.endIndex
    var authorityAndPath = String(rest[..<queryStart])
    // Use the last "@" before the query: an unencoded "@" or "/" in a password must not leak it.
    if let at = authorityAndPath.lastIndex(of: "@") {
        let userInfo = authorityAndPath[..<at]
        if let colon = userInfo.firstIndex(of: ":") {
            authorityAndPath = String(userInfo[..<colon]) + ":***" + authorityAndPath[at...]
        }
    }
    var result = String(scheme) + authorityAndPath
    if queryStart < rest.endIndex {
        let query = rest[rest.index(after: queryStart)...]
        let parameters = query.split(separator: "&", omittingEmptySubsequences: false).map { parameter in
            guard let equals = parameter.firstIndex(of: "=") else { return String(parameter) }
            let key = percentDecoded(String(parameter[..<equals])).lowercased()
            return secretConninfoKeys.contains(key) ? parameter[..<equals] + "=***" : String(parameter)
        }
        result += "?" + parameters.joined(separator: "&")
    }
    return result
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
func percentDecoded(_ text: String) -> String {
    var bytes: [UInt8] = []
    var utf8 = Array(text.utf8)[...]
    while let byte = utf8.popFirst() {
        if byte == UInt8(ascii: "%"), utf8.count >= 2,
            let high = hexValue(utf8[utf8.startIndex]),
            let low = hexValue(utf8[utf8.startIndex + 1])
        {
            bytes.append(high << 4 | low)
            utf8 = utf8.dropFirst(2)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

// MARK: - Keyword/value form

/// One `key=value` pair of a keyword/value connection string, with the value's source text as written.
private struct ConninfoPair {
    var key: String
    var rawValue: Substring
}

/// Parses a keyword/value connection string the way libpq does (`key = value`, values optionally single-quoted,
/// backslash escapes); nil if it is malformed.
private func parseKeywordValue(_ conninfo: String) -> [ConninfoPair]? {
    var pairs: [ConninfoPair] = []
    var index = conninfo.startIndex
    func skipSpaces() {
        while index < conninfo.endIndex, conninfo[index].isWhitespace { index = conninfo.index(after: index) }
    }
    while true {
        skipSpaces()
        guard index < conninfo.endIndex else { return pairs }
        let keyStart = index
        while index < conninfo.endIndex, conninfo[index] != "=", !conninfo[index].isWhitespace {
            index = conninfo.index(after: index)
        }
        let key = String(conninfo[keyStart..<index])
        skipSpaces()
        guard !key.isEmpty, index < conninfo.endIndex, conninfo[index] == "=" else { return nil }
        index = conninfo.index(after: index)
        skipSpaces()
        let valueStart = index
        if index < conninfo.endIndex, conninfo[index] == "'" {
            index = conninfo.index(after: index)
            var closed = false
            while index < conninfo.endIndex {
                let character = conninfo[index]
                index = conninfo.index(after: index)
                if character == "\\" {
                    guard index < conninfo.endIndex else { return nil }
                    index = conninfo.index(after: index)
                } else if character == "'" {
                    closed = true
                    break
                }
            }
            guard closed else { return nil }
        } else {
            while index < conninfo.endIndex, !conninfo[index].isWhitespace {
                if conninfo[index] == "\\" {
                    index = conninfo.index(after: index)
                    guard index < conninfo.endIndex else { return nil }
                }
                index = conninfo.index(after: index)
            }
        }
        pairs.append(ConninfoPair(key: key, rawValue: conninfo[valueStart..<index]))
    }
}

private func redactedKeywordValue(_ conninfo: String) -> String? {
    guard let pairs = parseKeywordValue(conninfo) else { return nil }
    return pairs.map { pair in
        secretConninfoKeys.contains(pair.key.lowercased()) ? "\(pair.key)=***" : "\(pair.key)=\(pair.rawValue)"
    }.joined(separator: " ")
}

/// Unquotes and unescapes a keyword/value string's value.
private func unescapedValue(_ raw: Substring) -> String {
    var text = raw
    if text.first == "'", text.count >= 2 { text = text.dropFirst().dropLast() }
    var result = ""
    var escaping = false
    for character in text {
        if escaping {
            result.append(character)
            escaping = false
        } else if character == "\\" {
            escaping = true
        } else {
            result.append(character)
        }
    }
    return result
}

// MARK: - Secrets and scrubbing

/// The secret values (passwords) written in a connection string, in every spelling they may be echoed in.
func secretValues(in conninfo: String) -> [String] {
    var secrets: [String] = []
    if isConnectionURL(conninfo) {
        guard let schemeEnd = conninfo.firstRange(of: "://") else { return [] }
        let rest = conninfo[schemeEnd.upperBound...]
        let queryStart = rest.firstIndex(of: "?") ?? rest.endIndex
        let authority = rest[..<queryStart]
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                let raw = String(userInfo[userInfo.index(after: colon)...])
                secrets += [raw, percentDecoded(raw)]
            }
            // libpq splits at the first "@"; a password holding an unencoded "@" is partly in what follows.
            if let firstAt = authority.firstIndex(of: "@"), firstAt != at {
                secrets.append(String(authority[authority.index(after: firstAt)..<at]))
            }
        }
        if queryStart < rest.endIndex {
            for parameter in rest[rest.index(after: queryStart)...].split(separator: "&") {
                guard let equals = parameter.firstIndex(of: "=") else { continue }
                let key = percentDecoded(String(parameter[..<equals])).lowercased()
                guard secretConninfoKeys.contains(key) else { continue }
                let raw = String(parameter[parameter.index(after: equals)...])
                secrets += [raw, percentDecoded(raw)]
            }
        }
    } else if let pairs = parseKeywordValue(conninfo) {
        for pair in pairs where secretConninfoKeys.contains(pair.key.lowercased()) {
            secrets += [String(pair.rawValue), unescapedValue(pair.rawValue)]
        }
    }
    return secrets.filter { !$0.isEmpty }
}

/// Removes every given secret, and anything that looks like a password assignment or a URL's password, from
/// `message`.
func scrubbed(_ message: String, secrets: [String]) -> String {
    var result = message
    // Longest first, so that a secret containing another is removed whole.
    for secret in Set(secrets).sorted(by: { $0.count > $1.count }) where !secret.isEmpty {
        result = result.replacing(secret, with: "***")
    }
    return scrubbedPasswordAssignments(result)
}

/// Replaces the value of anything shaped like `password=value` or `scheme://user:password@` with `***`.
func scrubbedPasswordAssignments(_ text: String) -> String {
    let assignment = /(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]+)/
    let urlUserInfo = /(?i)(postgres(?:ql)?:\/\/[^:\/@\s]*):[^\s]*@/
    return
        text
        .replacing(assignment) { match in match.output.1 + "***" }
        .replacing(urlUserInfo) { match in match.output.1 + ":***@" }
}
