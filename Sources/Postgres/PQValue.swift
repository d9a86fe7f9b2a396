/// A query parameter, sent with `PQexecParams`.
///
/// Strings, numbers, booleans and timestamps are sent in text format; bytes are sent in binary format as `bytea`.
/// Strings are sent untyped (`unknown`), so the server can coerce them to the column's type (`json`, enums, ...);
/// the other kinds carry their type (`int8`, `float8`, `bool`, `bytea`, `timestamptz`). An `int8` parameter is
/// assigned to `int4`/`int2` columns and compared with them directly, but a function that takes `integer` needs a
/// cast, e.g. `pg_terminate_backend($1::int4)`.
public enum PQValue: Sendable, Hashable {
    /// SQL `NULL`.
    case null
    /// An `int8`.
    case int64(Int64)
    /// A `float8`.
    case double(Double)
    /// A `bool`.
    case bool(Bool)
    /// Text, sent untyped; must not contain NUL.
    case string(String)
    /// A `bytea`, sent in binary format.
    case bytes([UInt8])
    /// A `timestamptz`, as microseconds since 1970-01-01 00:00:00 UTC; sent as ISO-8601 UTC text.
    case timestamp(microsecondsSinceEpoch: Int64)

    /// An `int8` from an `Int`.
    public static func int(_ value: Int) -> PQValue { .int64(Int64(value)) }

    /// An `int8` from an `Int32`.
    public static func int32(_ value: Int32) -> PQValue { .int64(Int64(value)) }

    /// A `timestamptz` from milliseconds since 1970-01-01 00:00:00 UTC.
    public static func timestamp(millisecondsSinceEpoch: Int64) -> PQValue {
        .timestamp(microsecondsSinceEpoch: millisecondsSinceEpoch * 1000)
    }
}

extension PQValue: ExpressibleByNilLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByStringLiteral
{
    /// `NULL`.
    public init(nilLiteral: ()) { self = .null }
    /// An `int8`.
    public init(integerLiteral value: Int64) { self = .int64(value) }
    /// A `float8`.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A `bool`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// Text.
    public init(stringLiteral value: String) { self = .string(value) }
}

// MARK: - Wire encoding

/// Type OIDs from `pg_type`.
enum PQTypeOID {
    static let unknown: UInt32 = 0
    static let bool: UInt32 = 16
    static let bytea: UInt32 = 17
    static let int8: UInt32 = 20
    static let int2: UInt32 = 21
    static let int4: UInt32 = 23
    static let oid: UInt32 = 26
    static let float4: UInt32 = 700
    static let float8: UInt32 = 701
    static let numeric: UInt32 = 1700
    static let timestamptz: UInt32 = 1184
}

/// A parameter as `PQexecParams` takes it.
struct EncodedParameter {
    var typeOID: UInt32
    /// nil for `NULL`.
    var bytes: [UInt8]?
    /// 0 text, 1 binary.
    var format: Int32
}

extension PQValue {
    func encoded() throws(PQError) -> EncodedParameter {
        switch self {
        case .null:
            return EncodedParameter(typeOID: PQTypeOID.unknown, bytes: nil, format: 0)
        case .int64(let value):
            return EncodedParameter(typeOID: PQTypeOID.int8, bytes: Array(String(value).utf8), format: 0)
        case .double(let value):
            let text: String
            if value.isNaN {
                text = "NaN"
            } else if value.isInfinite {
                text = value < 0 ? "-Infinity" : "Infinity"
            } else {
                text = String(value)  // Shortest text that reads back to the same Double.
            }
            return EncodedParameter(typeOID: PQTypeOID.float8, bytes: Array(text.utf8), format: 0)
        case .bool(let value):
            return EncodedParameter(typeOID: PQTypeOID.bool, bytes: Array((value ? "t" : "f").utf8), format: 0)
        case .string(let value):
            guard !value.utf8.contains(0) else {
                throw .invalidArgument(reason: "a text parameter contains a NUL character")
            }
            return EncodedParameter(typeOID: PQTypeOID.unknown, bytes: Array(value.utf8), format: 0)
        case .bytes(let value):
            return EncodedParameter(typeOID: PQTypeOID.bytea, bytes: value, format: 1)
        case .timestamp(let microseconds):
            return EncodedParameter(
                typeOID: PQTypeOID.timestamptz,
                bytes: Array(iso8601UTC(microsecondsSinceEpoch: microseconds).utf8),
                format: 0
            )
        }
    }
}

/// Renders microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (proleptic Gregorian, UTC), which
/// PostgreSQL parses as a `timestamptz`. Years before 1 are written with PostgreSQL's ` BC` suffix.
func iso8601UTC(microsecondsSinceEpoch: Int64) -> String {
    let perDay: Int64 = 86_400_000_000
    var days = microsecondsSinceEpoch / perDay
    var rest = microsecondsSinceEpoch % perDay
    if rest < 0 {
        rest += perDay
        days -= 1
    }
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)

    let micros = rest % 1_000_000
    let seconds = rest / 1_000_000
    func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    // PostgreSQL has no year 0: astronomical year 0 is 1 BC.
    let bc = year <= 0
    let shownYear = bc ? 1 - year : year
    return "\(pad(shownYear, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(seconds / 3600, 2)):"
        + "\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2)).\(pad(micros, 6))Z\(bc ? " BC" : "")"
}
