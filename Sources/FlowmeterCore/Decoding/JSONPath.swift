/// Reads single values out of JSON documents by path, without building a tree.
public enum JSONPath {
    /// The deepest nesting skipped while walking a document.
    static let maxDepth = 512

    /// Reads the value at `path` in the JSON document `document`.
    ///
    /// Path components name object members; for arrays a component may be a decimal index. A JSON string
    /// met before the path ends is decoded as a JSON document and the walk continues inside it (the Python
    /// SDK's double-encoded `data`).
    /// - Returns: A string's unescaped text, or a number's or boolean's literal text; `nil` if the path does not
    ///   exist, leads to an object, array or `null`, or the document is not valid JSON along the way.
    public static func extractString(atPath path: [String], in document: UnsafeRawBufferPointer) -> String? {
        guard let raw = document.baseAddress else { return nil }
        return extract(path[...], raw.assumingMemoryBound(to: UInt8.self), 0, document.count)
    }

    static func extract(
        _ path: ArraySlice<String>,
        _ base: UnsafePointer<UInt8>,
        _ start: Int,
        _ end: Int
    ) -> String? {
        var cursor = JSONCursor(base: base, start: start, end: end, validate: true, maxDepth: maxDepth)
        var remaining = path
        do throws(JSONFailure) {
            while true {
                cursor.skipWhitespace()
                let c = try cursor.current()
                guard let component = remaining.first else {
                    let valueStart = cursor.pos
                    let kind = try cursor.scanValue(depth: 0)
                    switch kind {
                    case .string:
                        return JSONString.string(
                            base,
                            valueStart + 1,
                            cursor.pos - 1,
                            escaped: cursor.lastStringEscaped
                        )
                    case .number, .bool:
                        return String(
                            decoding: UnsafeBufferPointer(start: base + valueStart, count: cursor.pos - valueStart),
                            as: UTF8.self
                        )
                    case .object, .array, .null:
                        return nil
                    }
                }
                remaining = remaining.dropFirst()
                switch c {
                case ASCII.openBrace:
                    guard try enterMember(named: component, &cursor) else { return nil }
                case ASCII.openBracket:
                    guard let index = Int(component), index >= 0, try enterElement(index, &cursor) else { return nil }
                case ASCII.quote:
                    let valueStart = cursor.pos
                    try cursor.scanString()
                    let inner = JSONString.unescapedBytes(base, valueStart + 1, cursor.pos - 1)
                    return inner.withUnsafeBufferPointer { buffer in
                        guard let p = buffer.baseAddress else { return nil }
                        return extract(path[(path.endIndex - remaining.count - 1)...], p, 0, buffer.count)
                    }
                default:
                    return nil
                }
            }
        } catch {
            return nil
        }
    }

    /// With the cursor on `{`, moves it to the value of member `name`; `false` if there is none.
    private static func enterMember(named name: String, _ cursor: inout JSONCursor) throws(JSONFailure) -> Bool {
        cursor.pos += 1
        cursor.skipWhitespace()
        if try cursor.current() == ASCII.closeBrace { return false }
        while true {
            cursor.skipWhitespace()
            guard try cursor.current() == ASCII.quote else { throw JSONFailure(.expectedKey, cursor.pos) }
            let keyStart = cursor.pos + 1
            try cursor.scanString()
            let matches = keyEquals(cursor.base, keyStart, cursor.pos - 1, cursor.lastStringEscaped, name)
            cursor.skipWhitespace()
            guard try cursor.current() == ASCII.colon else { throw JSONFailure(.expectedColon, cursor.pos) }
            cursor.pos += 1
            cursor.skipWhitespace()
            if matches { return true }
            _ = try cursor.scanValue(depth: 0)
            cursor.skipWhitespace()
            let c = try cursor.current()
            cursor.pos += 1
            if c == ASCII.comma { continue }
            if c == ASCII.closeBrace { return false }
            throw JSONFailure(.expectedCommaOrClose(object: true), cursor.pos - 1)
        }
    }

    /// With the cursor on `[`, moves it to element `index`; `false` if there is none.
    private static func enterElement(_ index: Int, _ cursor: inout JSONCursor) throws(JSONFailure) -> Bool {
        cursor.pos += 1
        cursor.skipWhitespace()
        if try cursor.current() == ASCII.closeBracket { return false }
        var i = 0
        while true {
            cursor.skipWhitespace()
            if i == index { return true }
            _ = try cursor.scanValue(depth: 0)
            cursor.skipWhitespace()
            let c = try cursor.current()
            cursor.pos += 1
            if c == ASCII.comma {
                i += 1
                continue
            }
            if c == ASCII.closeBracket { return false }
            throw JSONFailure(.expectedCommaOrClose(object: false), cursor.pos - 1)
        }
    }

    private static func keyEquals(
        _ base: UnsafePointer<UInt8>,
        _ start: Int,
        _ end: Int,
        _ escaped: Bool,
        _ name: String
    ) -> Bool {
        if escaped { return JSONString.string(base, start, end, escaped: true) == name }
        let n = end - start
        guard name.utf8.count == n else { return false }
        var k = start
        for byte in name.utf8 {
            if base[k] != byte { return false }
            k += 1
        }
        return true
    }
}

extension DecodedEvent {
    /// Reads the value at `path` inside the event's `data` (e.g. `["submissionId"]` for `data.submissionId`),
    /// also through double-encoded JSON strings.
    ///
    /// - Parameters:
    ///   - path: Member names (or array indices) below `data`.
    ///   - value: The same record value bytes this event was decoded from.
    /// - Returns: See ``JSONPath/extractString(atPath:in:)``; `nil` for `data_base64` or binary data that is not JSON.
    public func extractDataString(atPath path: [String], in value: UnsafeRawBufferPointer) -> String? {
        guard let range = dataRange, dataKind != .base64, dataKind != .binary, let raw = value.baseAddress,
            range.lowerBound >= 0, range.upperBound <= value.count
        else { return nil }
        return JSONPath.extract(path[...], raw.assumingMemoryBound(to: UInt8.self), range.lowerBound, range.upperBound)
    }

    /// Reads the value at `path` inside the event's `data`; as the raw-buffer variant.
    public func extractDataString(atPath path: [String], in value: [UInt8]) -> String? {
        value.withUnsafeBytes { extractDataString(atPath: path, in: $0) }
    }
}
