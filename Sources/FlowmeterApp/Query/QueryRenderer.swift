import Foundation

/// An output format of `flowmeter query`.
public enum QueryFormat: String, Sendable, Hashable, CaseIterable {
    /// Aligned columns for people: a header line, numbers right-aligned, ms with 1 decimal, percentages.
    case table
    /// An array of objects, numbers as numbers and NULL as `null`.
    case json
    /// RFC 4180: a header line, CRLF line ends, fields quoted when they hold a comma, a quote or a line break.
    case csv
}

/// Renders a ``QueryResult`` as text.
public enum QueryRenderer {
    /// The result in `format`, ending with a line break.
    public static func render(_ result: QueryResult, format: QueryFormat) -> String {
        switch format {
        case .table: table(result)
        case .json: json(result)
        case .csv: csv(result)
        }
    }

    // MARK: - Table

    private static func table(_ result: QueryResult) -> String {
        var lines = [result.columns.map(\.name)]
        lines += result.rows.map { $0.map(tableText) }
        if let totals = result.totals, !result.rows.isEmpty {
            lines.append(totals.map(tableText))
        }
        var widths = result.columns.map { _ in 0 }
        for line in lines {
            for (index, text) in line.enumerated() { widths[index] = max(widths[index], text.count) }
        }
        var output = ""
        for (lineIndex, line) in lines.enumerated() {
            if lineIndex == result.rows.count + 1 {
                // A rule above the totals.
                output += trimmed(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) + "\n"
            }
            let cells = line.enumerated().map { index, text in
                let padding = String(repeating: " ", count: widths[index] - text.count)
                return result.columns[index].isNumeric ? padding + text : text + padding
            }
            output += trimmed(cells.joined(separator: "  ")) + "\n"
        }
        if result.rows.isEmpty { output += "(no rows)\n" }
        return output
    }

    private static func trimmed(_ line: String) -> String {
        var line = line
        while line.last == " " { line.removeLast() }
        return line
    }

    static func tableText(_ cell: QueryCell) -> String {
        switch cell {
        case .null: "-"
        case .text(let text): text.map { $0.isNewline || $0 == "\t" ? " " : String($0) }.joined()
        case .integer(let value): String(value)
        case .decimal(let value, let places): fixed(value, places: places)
        case .ratio(let value): fixed(value * 100, places: 2) + "%"
        case .time(let date): formatRFC3339(Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
        }
    }

    /// A decimal for JSON and CSV: rounded to 0.001 (a sketch's quantiles are within 1% anyway), shortest text.
    private static func machineText(_ value: Double) -> String? {
        guard value.isFinite else { return nil }
        let rounded = (value * 1000).rounded() / 1000
        return rounded.isFinite ? String(rounded) : String(value)
    }

    /// `value` with exactly `places` decimals, rounded half away from zero; `-0.0` shows as `0.0`.
    private static func fixed(_ value: Double, places: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value < 0 ? "-inf" : "inf") }
        let text = String(format: "%.\(places)f", value)
        return text.hasPrefix("-") && text.dropFirst().allSatisfy { $0 == "0" || $0 == "." }
            ? String(text.dropFirst()) : text
    }

    // MARK: - JSON

    private static func json(_ result: QueryResult) -> String {
        guard !result.rows.isEmpty else { return "[]\n" }
        let objects = result.rows.map { row in
            let members = zip(result.columns, row).map { column, cell in
                jsonString(column.name) + ": " + jsonValue(cell)
            }
            return "  {" + members.joined(separator: ", ") + "}"
        }
        return "[\n" + objects.joined(separator: ",\n") + "\n]\n"
    }

    private static func jsonValue(_ cell: QueryCell) -> String {
        switch cell {
        case .null: "null"
        case .text(let text): jsonString(text)
        case .integer(let value): String(value)
        case .decimal(let value, _): machineText(value) ?? "null"
        case .ratio(let value): value.isFinite ? String(value) : "null"
        case .time(let date): jsonString(formatRFC3339(date))
        }
    }

    private static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    // MARK: - CSV

    private static func csv(_ result: QueryResult) -> String {
        var lines = [result.columns.map { csvField($0.name) }.joined(separator: ",")]
        for row in result.rows {
            lines.append(row.map { csvField(csvText($0)) }.joined(separator: ","))
        }
        return lines.map { $0 + "\r\n" }.joined()
    }

    private static func csvText(_ cell: QueryCell) -> String {
        switch cell {
        case .null: ""
        case .text(let text): text
        case .integer(let value): String(value)
        case .decimal(let value, _): machineText(value) ?? ""
        case .ratio(let value): value.isFinite ? String(value) : ""
        case .time(let date): formatRFC3339(date)
        }
    }

    private static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
