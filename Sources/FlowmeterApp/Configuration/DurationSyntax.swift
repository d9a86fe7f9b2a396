/// Flowmeter's duration syntax: `500ms`, `5s`, `2m`, `1h`, `30d` and compounds such as `1h30m`.
public enum DurationSyntax {
    /// Units from largest to smallest, in milliseconds.
    private static let units: [(name: String, milliseconds: Int64)] = [
        ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1),
    ]

    /// What a duration looks like, for error messages.
    public static let expectation = "a duration such as 500ms, 5s, 1m or 1h30m"

    /// Parses a duration.
    ///
    /// One or more `<integer><unit>` parts, units `d`, `h`, `m`, `s`, `ms`, each at most once and from largest to
    /// smallest; no signs, fractions or spaces.
    ///
    /// - Parameter text: The text, e.g. `1h30m`.
    /// - Returns: The duration, or `nil` if the text is not a duration (or overflows).
    public static func parse(_ text: String) -> Duration? {
        let characters = Array(text)
        var index = 0
        var total: Int64 = 0
        var previousUnit = -1
        guard !characters.isEmpty else {
            return nil
        }
        while index < characters.count {
            var digits = ""
            while index < characters.count, let digit = characters[index].asciiValue, (48...57).contains(digit) {
                digits.append(characters[index])
                index += 1
            }
            var unit = ""
            while index < characters.count, characters[index].isASCII, characters[index].isLetter {
                unit.append(characters[index])
                index += 1
            }
            guard !digits.isEmpty, digits.count <= 12, let number = Int64(digits),
                let unitIndex = units.firstIndex(where: { $0.name == unit }), unitIndex > previousUnit
            else {
                return nil
            }
            previousUnit = unitIndex
            let (part, multiplyOverflow) = number.multipliedReportingOverflow(by: units[unitIndex].milliseconds)
            let (sum, addOverflow) = total.addingReportingOverflow(part)
            guard !multiplyOverflow, !addOverflow else {
                return nil
            }
            total = sum
        }
        return .milliseconds(total)
    }

    /// Formats a duration in the same syntax, e.g. `1h30m`; sub-millisecond parts are dropped.
    ///
    /// - Parameter duration: The duration.
    /// - Returns: Its text, `0s` for zero.
    public static func format(_ duration: Duration) -> String {
        var remaining = milliseconds(duration)
        guard remaining > 0 else {
            return "0s"
        }
        var result = ""
        for unit in units where remaining >= unit.milliseconds {
            result += "\(remaining / unit.milliseconds)\(unit.name)"
            remaining %= unit.milliseconds
        }
        return result
    }

    /// The whole milliseconds in a duration.
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

func formatDuration(_ duration: Duration) -> String { DurationSyntax.format(duration) }
