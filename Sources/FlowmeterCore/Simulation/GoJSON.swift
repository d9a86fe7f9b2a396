/// A JSON value serialized the way Go's `encoding/json` serializes a `map[string]any` (what daprd does with a
/// CloudEvent envelope): object keys in byte-wise sorted order at every level, no white space, `<`, `>` and `&`
/// escaped as `\u003c`, `\u003e` and `\u0026`, U+2028 and U+2029 escaped, and numbers kept as their literal
/// text (Dapr parses `data` with `UseNumber`).
public indirect enum GoJSON: Sendable, Hashable {
    /// A string.
    case string(String)
    /// An integer.
    case int(Int64)
    /// A number, written exactly as this literal text (e.g. `0.85`).
    case number(String)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null
    /// An array.
    case array([GoJSON])
    /// An object; the keys are sorted when written.
    case object([String: GoJSON])

    /// The serialized bytes.
    public var bytes: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        write(into: &output)
        return output
    }

    /// Appends the serialized value.
    public func write(into output: inout [UInt8]) {
        switch self {
        case .string(let text):
            Self.writeString(text, into: &output)
        case .int(let value):
            output.append(contentsOf: String(value).utf8)
        case .number(let literal):
            output.append(contentsOf: literal.utf8)
        case .bool(let value):
            output.append(contentsOf: (value ? "true" : "false").utf8)
        case .null:
            output.append(contentsOf: "null".utf8)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                element.write(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            // Swift orders (NFC) strings by Unicode scalar values, which is the byte order of their UTF-8: Go's order.
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeString(key, into: &output)
                output.append(UInt8(ascii: ":"))
                members[key]!.write(into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Writes a JSON string with Go's escaping (`encoding/json` with HTML escaping, as `json.Marshal` does).
    public static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case 0x22: output.append(contentsOf: [0x5C, 0x22])  // \"
                case 0x5C: output.append(contentsOf: [0x5C, 0x5C])  // \\
                case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
                case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
                case 0x00..<0x20, 0x3C, 0x3E, 0x26:
                    appendUnicodeEscape(UInt32(byte), into: &output)
                case 0xE2
                where index + 2 < bytes.count && bytes[index + 1] == 0x80
                    && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                    // U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR.
                    appendUnicodeEscape(bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029, into: &output)
                    index += 2
                default:
                    // Other bytes, including the rest of any multi-byte sequence, are written as they are.
                    output.append(byte)
                }
                index += 1
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func appendUnicodeEscape(_ value: UInt32, into output: inout [UInt8]) {
        output.append(contentsOf: [0x5C, UInt8(ascii: "u")])
        output.append(lowerHex[Int((value >> 12) & 0xF)])
        output.append(lowerHex[Int((value >> 8) & 0xF)])
        output.append(lowerHex[Int((value >> 4) & 0xF)])
        output.append(lowerHex[Int(value & 0xF)])
    }
}

private let lowerHex: [UInt8] = Array("0123456789abcdef".utf8)

/// Formats epoch milliseconds as Go's `time.RFC3339` in UTC: whole seconds (the fraction truncated), `Z`.
///
/// This is what daprd writes into a CloudEvent's `time` on a host whose zone is UTC.
public func formatRFC3339Seconds(epochMilliseconds: Int64) -> String {
    let seconds = epochMilliseconds >= 0 ? epochMilliseconds / 1000 : (epochMilliseconds - 999) / 1000
    var days = seconds / 86_400
    var secondOfDay = seconds % 86_400
    if secondOfDay < 0 {
        secondOfDay += 86_400
        days -= 1
    }
    let (year, month, day) = civilFromDays(days)
    func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
    var yearText = String(year)
    while yearText.count < 4 { yearText = "0" + yearText }
    return
        "\(yearText)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))Z"
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a proleptic Gregorian date.
private func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
}
