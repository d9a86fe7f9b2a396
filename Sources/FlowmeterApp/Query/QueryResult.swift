public import Foundation

/// One value of a ``QueryResult``, typed so that each format can render it as it should.
public enum QueryCell: Sendable, Hashable {
    /// SQL `NULL`: `-` in a table, `null` in JSON, an empty field in CSV.
    case null
    /// Text, e.g. a topic.
    case text(String)
    /// A count or an offset.
    case integer(Int64)
    /// A number shown in a table with `places` decimals, e.g. milliseconds with 1; to 0.001 in JSON and CSV.
    case decimal(Double, places: Int)
    /// A fraction (0.05), shown in a table as a percentage with 2 decimals (`5.00%`); the fraction in JSON and CSV.
    case ratio(Double)
    /// An instant, in RFC 3339 UTC: to the second in a table, with milliseconds (when any) in JSON and CSV.
    case time(Date)

    /// Whether the cell is a number (right-aligned in a table).
    public var isNumeric: Bool {
        switch self {
        case .integer, .decimal, .ratio: true
        case .null, .text, .time: false
        }
    }
}

/// A column of a ``QueryResult``.
public struct QueryColumn: Sendable, Hashable {
    /// The name, e.g. `p95_ms`; the key in JSON and the header in a table and in CSV.
    public var name: String
    /// Whether the column holds numbers: right-aligned in a table, `-` for NULL either way.
    public var isNumeric: Bool

    /// Creates a column.
    public init(_ name: String, numeric: Bool) {
        self.name = name
        self.isNumeric = numeric
    }
}

/// The rows of one query, aggregated over the time range, one per group key.
public struct QueryResult: Sendable, Hashable {
    /// The columns, in order.
    public var columns: [QueryColumn]
    /// The rows; each has one cell per column.
    public var rows: [[QueryCell]]
    /// A totals row, rendered after the rows in table format only (JSON and CSV carry the rows alone).
    public var totals: [QueryCell]?

    /// Creates a result.
    public init(columns: [QueryColumn], rows: [[QueryCell]], totals: [QueryCell]? = nil) {
        precondition(rows.allSatisfy { $0.count == columns.count }, "every row needs one cell per column")
        precondition(totals.map { $0.count == columns.count } ?? true, "the totals need one cell per column")
        self.columns = columns
        self.rows = rows
        self.totals = totals
    }

    /// The cell of column `name` in row `row`; nil for an unknown column.
    public func cell(_ row: Int, _ name: String) -> QueryCell? {
        columns.firstIndex { $0.name == name }.map { rows[row][$0] }
    }
}
