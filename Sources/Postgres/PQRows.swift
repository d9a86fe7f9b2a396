/// A column of a query result.
public struct PQColumn: Sendable, Hashable {
    /// The column's name (`PQfname`).
    public let name: String
    /// The column's type OID (`PQftype`), e.g. 20 for `int8`.
    public let typeOID: UInt32
}

/// The result of a command, copied out of libpq: column metadata, rows of text values and the affected row count.
public struct PQRows: Sendable, RandomAccessCollection {
    /// The result's columns, in order.
    public var columns: [PQColumn] { layout.columns }
    /// The command status tag, e.g. `INSERT 0 3` or `SELECT 2`.
    public let commandTag: String
    /// The number of rows affected by an `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `SELECT`, `MOVE`, `FETCH` or `COPY`
    /// (`PQcmdTuples`); 0 for other commands.
    public let affectedRows: Int

    private let layout: ColumnLayout
    private let values: [String?]

    init(columns: [PQColumn], values: [String?], commandTag: String, affectedRows: Int) {
        self.layout = ColumnLayout(columns: columns)
        self.values = values
        self.commandTag = commandTag
        self.affectedRows = affectedRows
    }

    /// The index of the first row.
    public var startIndex: Int { 0 }
    /// One past the index of the last row.
    public var endIndex: Int { layout.columns.isEmpty ? 0 : values.count / layout.columns.count }

    /// The row at `position`.
    public subscript(position: Int) -> PQRow {
        precondition(indices.contains(position), "row index \(position) out of range 0..<\(endIndex)")
        let width = layout.columns.count
        return PQRow(layout: layout, values: values[position * width..<(position + 1) * width])
    }
}

/// The columns of a result and a name-to-index map, shared by all its rows.
final class ColumnLayout: Sendable {
    let columns: [PQColumn]
    let indexByName: [String: Int]

    init(columns: [PQColumn]) {
        self.columns = columns
        var indexByName: [String: Int] = [:]
        for (index, column) in columns.enumerated() where indexByName[column.name] == nil {
            indexByName[column.name] = index
        }
        self.indexByName = indexByName
    }
}

/// One row of a ``PQRows``: values in PostgreSQL's text output format, nil for `NULL`.
///
/// The typed accessors return nil for `NULL` and throw a ``PQError`` with code ``PQError/Code/typeMismatch`` when
/// the column does not exist or its text cannot be read as the requested type.
public struct PQRow: Sendable {
    private let layout: ColumnLayout
    private let values: ArraySlice<String?>

    init(layout: ColumnLayout, values: ArraySlice<String?>) {
        self.layout = layout
        self.values = values
    }

    /// The result's columns, in order.
    public var columns: [PQColumn] { layout.columns }

    /// The text of the column at `index`; nil for `NULL` or an index out of range.
    public subscript(index: Int) -> String? {
        guard index >= 0, index < values.count else { return nil }
        return values[values.startIndex + index]
    }

    /// The text of the first column named `name`; nil for `NULL` or an unknown column.
    public subscript(name: String) -> String? {
        guard let index = layout.indexByName[name] else { return nil }
        return self[index]
    }

    // MARK: Typed access by name

    /// The column named `name` as text.
    public func string(_ name: String) throws(PQError) -> String? { try string(index(of: name)) }
    /// The column named `name` as an integer (`int2`, `int4`, `int8`, `oid`, or any text that parses).
    public func int64(_ name: String) throws(PQError) -> Int64? { try int64(index(of: name)) }
    /// The column named `name` as a `Double` (`float4`, `float8`, `numeric`, integers, `NaN`, `Infinity`).
    public func double(_ name: String) throws(PQError) -> Double? { try double(index(of: name)) }
    /// The column named `name` as a `Bool` (`t` or `f`).
    public func bool(_ name: String) throws(PQError) -> Bool? { try bool(index(of: name)) }
    /// The column named `name` as bytes; the column must be a `bytea` (hex output format).
    public func bytes(_ name: String) throws(PQError) -> [UInt8]? { try bytes(index(of: name)) }

    // MARK: Typed access by index

    /// The column at `index` as text.
    public func string(_ index: Int) throws(PQError) -> String? { try text(at: index) }

    /// The column at `index` as an integer.
    public func int64(_ index: Int) throws(PQError) -> Int64? {
        guard let text = try text(at: index) else { return nil }
        guard let value = Int64(text) else { throw mismatch(index, "an integer") }
        return value
    }

    /// The column at `index` as a `Double`.
    public func double(_ index: Int) throws(PQError) -> Double? {
        guard let text = try text(at: index) else { return nil }
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            guard let value = Double(text), value.isFinite else { throw mismatch(index, "a double") }
            return value
        }
    }

    /// The column at `index` as a `Bool`.
    public func bool(_ index: Int) throws(PQError) -> Bool? {
        switch try text(at: index) {
        case nil: return nil
        case "t": return true
        case "f": return false
        default: throw mismatch(index, "a bool")
        }
    }

    /// The column at `index` as bytes, decoded from `bytea`'s hex output (`\x0aff...`).
    public func bytes(_ index: Int) throws(PQError) -> [UInt8]? {
        guard let text = try text(at: index) else { return nil }
        guard layout.columns[index].typeOID == PQTypeOID.bytea else { throw mismatch(index, "a bytea") }
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0
        else { throw mismatch(index, "a bytea in hex output format (bytea_output = hex)") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var position = 2
        while position < utf8.count {
            guard let high = hexValue(utf8[position]), let low = hexValue(utf8[position + 1]) else {
                throw mismatch(index, "a bytea in hex output format")
            }
            bytes.append(high << 4 | low)
            position += 2
        }
        return bytes
    }

    // MARK: Helpers

    private func index(of name: String) throws(PQError) -> Int {
        guard let index = layout.indexByName[name] else {
            throw .typeMismatch(reason: "no column named \(String(reflecting: name)) in the result")
        }
        return index
    }

    private func text(at index: Int) throws(PQError) -> String? {
        guard index >= 0, index < values.count else {
            throw .typeMismatch(reason: "column index \(index) out of range 0..<\(values.count)")
        }
        return values[values.startIndex + index]
    }

    private func mismatch(_ index: Int, _ expected: String) -> PQError {
        let column = layout.columns[index]
        // The value itself is not quoted: it could be sensitive.
        return .typeMismatch(
            reason: "column \(String(reflecting: column.name)) (type OID \(column.typeOID)) is not \(expected)"
        )
    }
}
