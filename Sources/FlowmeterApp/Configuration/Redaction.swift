/// Redaction of secrets for logs, error messages and `flowmeter check` output.
public enum Redaction {
    /// What a secret is replaced with.
    public static let mask = "***"

    /// Kafka property names whose values are secrets, besides those matched by ``isSecretKafkaProperty(_:)``'s
    /// word rules.
    static let secretKafkaProperties: Set<String> = [
        "sasl.password",
        "sasl.jaas.config",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl.keystore.password",
        "ssl.truststore.password",
        "ssl_key",
    ]

    /// Whether a librdkafka property's value is secret-bearing.
    ///
    /// Secret are: `sasl.password`, `sasl.oauthbearer.client.secret`, `sasl.oauthbearer.config`, `ssl.key.pem`,
    /// `ssl_key`, the `ssl.*.password` keys, any key containing `password`, `passphrase` or `secret`, and key
    /// material in PEM (a key ending in `.pem` that names a `key`). Certificates (`ssl.certificate.pem`,
    /// `ssl.ca.pem`) and file locations are not secret.
    ///
    /// - Parameter key: The property name.
    /// - Returns: `true` if the value must be shown as `***`.
    public static func isSecretKafkaProperty(_ key: String) -> Bool {
        let key = key.lowercased()
        if secretKafkaProperties.contains(key) {
            return true
        }
        if ["password", "passphrase", "secret"].contains(where: key.contains) {
            return true
        }
        return key.hasSuffix(".pem") && key.contains("key")
    }

    /// A libpq connection string with its passwords replaced by `***`.
    ///
    /// Handles the URI form (`postgres://user:***@host:5432/db`, and `password=` / `sslpassword=` query parameters)
    /// and the keyword form (`host=h password=***`, quoted values included). A string in neither form is replaced
    /// entirely, since it may be a bare secret.
    ///
    /// - Parameter connection: The connection string.
    /// - Returns: The redacted connection string.
    public static func redactPostgres(_ connection: String) -> String {
        let lowercased = connection.lowercased()
        if lowercased.hasPrefix("postgres://") || lowercased.hasPrefix("postgresql://"),
            let schemeEnd = connection.firstRange(of: "://")?.upperBound
        {
            var text = connection
            let rest = connection[schemeEnd...]
            if let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                text = String(connection[...colon]) + mask + String(connection[at...])
            }
            return redactPasswordKeywords(text, inURI: true)
        }
        if connection.contains("=") {
            return redactPasswordKeywords(connection, inURI: false)
        }
        return connection.isEmpty ? connection : mask
    }

    /// `message` with every occurrence of `secret` replaced by `***`.
    static func scrub(_ message: String, secret: String) -> String {
        secret.isEmpty ? message : message.replacingAll(secret, with: mask)
    }

    /// Replaces the values of `password=` and `sslpassword=` (keyword form or URI query parameters).
    private static func redactPasswordKeywords(_ text: String, inURI: Bool) -> String {
        let characters = Array(text)
        let keywords = ["password", "sslpassword"].map { Array($0) }
        var result = ""
        var index = 0
        func isBoundary(_ position: Int) -> Bool {
            position == 0 || characters[position - 1].isWhitespace || "?&".contains(characters[position - 1])
        }
        while index < characters.count {
            if isBoundary(index),
                let keyword = keywords.first(where: { matches($0, in: characters, at: index) })
            {
                var cursor = index + keyword.count
                while cursor < characters.count, characters[cursor] == " " { cursor += 1 }
                if cursor < characters.count, characters[cursor] == "=" {
                    cursor += 1
                    while cursor < characters.count, characters[cursor] == " " { cursor += 1 }
                    result += String(characters[index..<cursor]) + mask
                    cursor = endOfValue(in: characters, from: cursor, inURI: inURI)
                    index = cursor
                    continue
                }
            }
            result.append(characters[index])
            index += 1
        }
        return result
    }

    private static func matches(_ keyword: [Character], in characters: [Character], at index: Int) -> Bool {
        guard index + keyword.count <= characters.count else {
            return false
        }
        return zip(keyword, characters[index..<index + keyword.count]).allSatisfy { $0.lowercased() == $1.lowercased() }
    }

    /// The index after a value: a single-quoted one, or up to white space (keyword form) or `&` or `#` (URI query);
    /// a backslash escapes the next character, as libpq's parser has it.
    private static func endOfValue(in characters: [Character], from start: Int, inURI: Bool) -> Int {
        var cursor = start
        if cursor < characters.count, characters[cursor] == "'" {
            cursor += 1
            while cursor < characters.count, characters[cursor] != "'" {
                cursor += characters[cursor] == "\\" ? 2 : 1
            }
            return min(cursor + 1, characters.count)
        }
        while cursor < characters.count,
            inURI ? !"&#".contains(characters[cursor]) : !characters[cursor].isWhitespace
        {
            cursor += characters[cursor] == "\\" ? 2 : 1
        }
        return min(cursor, characters.count)
    }
}

extension String {
    /// `self` with every occurrence of `target` replaced, without Foundation.
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
