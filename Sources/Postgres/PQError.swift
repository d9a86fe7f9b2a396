/// An error from the PostgreSQL bridge.
///
/// `description` is deliberately generic: the code, the SQLSTATE and, for errors raised on the client side, a short
/// reason. The server's message, detail and hint (which can quote row data) are only in `debugDescription`. No part
/// of the error ever contains the connection's password: every message is scrubbed before it is stored.
public struct PQError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case connectionFailed
            case connectionLost
            case queryFailed
            case transactionRolledBack
            case typeMismatch
            case invalidArgument
            case closed
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// Connecting (or resetting) failed: unreachable server, authentication failure, bad connection string.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke during or before a command (server restart, `pg_terminate_backend`, network).
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected a command; see ``PQError/sqlState``.
        public static let queryFailed = Code(.queryFailed)
        /// `COMMIT` rolled the transaction back because a command in it had failed.
        public static let transactionRolledBack = Code(.transactionRolledBack)
        /// A column's value could not be read as the requested Swift type, or the column does not exist.
        public static let typeMismatch = Code(.typeMismatch)
        /// An argument cannot be sent to the server (e.g. a string containing NUL).
        public static let invalidArgument = Code(.invalidArgument)
        /// The connection was closed with ``PQConnection/close()``, or a transaction handle was used after its end.
        public static let closed = Code(.closed)

        /// The code's name, e.g. `queryFailed`.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public let code: Code
    /// A short, password-free explanation written by the bridge or, for connection failures, by libpq.
    public let reason: String
    /// The five-character SQLSTATE the server reported, e.g. `23505`; nil for client-side failures.
    public let sqlState: String?
    /// The server's primary message (`PG_DIAG_MESSAGE_PRIMARY`), scrubbed of the password.
    public let serverMessage: String?
    /// The server's detail (`PG_DIAG_MESSAGE_DETAIL`), which may quote row data.
    public let detail: String?
    /// The server's hint (`PG_DIAG_MESSAGE_HINT`).
    public let hint: String?
    /// Whether trying again, possibly on a new connection, can succeed.
    ///
    /// True for a lost connection, a connection failure other than a rejected login, SQLSTATE class `08`
    /// (connection exception), `40001` (serialization failure), `40P01` (deadlock), `57P01`/`57P02`/`57P03`
    /// (administrator shutdown, crash shutdown, cannot connect now) and `53300` (too many connections).
    public let isRetriable: Bool
    /// The file that raised the error.
    public let file: String
    /// The line that raised the error.
    public let line: Int

    init(
        code: Code,
        reason: String,
        sqlState: String? = nil,
        serverMessage: String? = nil,
        detail: String? = nil,
        hint: String? = nil,
        isRetriable: Bool? = nil,
        file: String,
        line: Int
    ) {
        self.code = code
        self.reason = reason
        self.sqlState = sqlState
        self.serverMessage = serverMessage
        self.detail = detail
        self.hint = hint
        self.isRetriable = isRetriable ?? Self.isRetriable(code: code, sqlState: sqlState)
        self.file = file
        self.line = line
    }

    /// Whether a failure with this code and SQLSTATE is transient.
    static func isRetriable(code: Code, sqlState: String?) -> Bool {
        if code == .connectionLost { return true }
        guard let sqlState else { return false }
        if sqlState.hasPrefix("08") { return true }
        return ["40001", "40P01", "57P01", "57P02", "57P03", "53300"].contains(sqlState)
    }

    /// Generic and safe to log: the code, the SQLSTATE and, for client-side failures, the reason.
    public var description: String {
        var text = "PQError.\(code)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        // A server's message can quote data; the bridge's own reasons cannot.
        if serverMessage == nil { text += ": \(reason)" }
        return text
    }

    /// Everything known about the error, for debugging: the server's message, detail and hint, and where it was
    /// raised. Never contains the password, but may contain row data.
    public var debugDescription: String {
        var text = "PQError(code: \(code), reason: \(String(reflecting: reason))"
        if let sqlState { text += ", sqlState: \(sqlState)" }
        if let serverMessage { text += ", serverMessage: \(String(reflecting: serverMessage))" }
        if let detail { text += ", detail: \(String(reflecting: detail))" }
        if let hint { text += ", hint: \(String(reflecting: hint))" }
        text += ", isRetriable: \(isRetriable), file: \(file), line: \(line))"
        return text
    }
}

// MARK: - Factories

extension PQError {
    static func connectionFailed(
        reason: String,
        isRetriable: Bool,
        file: String = #fileID,
        line: Int = #line
    ) -> PQError {
        PQError(code: .connectionFailed, reason: reason, isRetriable: isRetriable, file: file, line: line)
    }

    static func typeMismatch(reason: String, file: String = #fileID, line: Int = #line) -> PQError {
        PQError(code: .typeMismatch, reason: reason, file: file, line: line)
    }

    static func invalidArgument(reason: String, file: String = #fileID, line: Int = #line) -> PQError {
        PQError(code: .invalidArgument, reason: reason, file: file, line: line)
    }

    static func closed(
        reason: String = "the connection is closed",
        file: String = #fileID,
        line: Int = #line
    ) -> PQError {
        PQError(code: .closed, reason: reason, file: file, line: line)
    }

    /// Whether a libpq connection-failure message means the server refused us for good (wrong password, unknown
    /// role or database, no `pg_hba.conf` entry) or the connection string is wrong, rather than a transient failure.
    static func isPermanentConnectionFailure(_ message: String) -> Bool {
        let lowered = message.lowercased()
        let transient = [
            "the database system is starting up", "the database system is shutting down",
            "the database system is in recovery mode", "sorry, too many clients", "too many connections",
            "remaining connection slots",
        ]
        if transient.contains(where: lowered.contains) { return false }
        let permanent = [
            "authentication failed", "password authentication", "no password supplied", "does not exist",
            "no pg_hba.conf entry", "permission denied", "invalid connection option", "invalid uri",
            "missing \"=\"", "unterminated quoted string", "invalid sslmode", "invalid integer value",
            "is not permitted to log in", "pg_hba.conf rejects",
        ]
        return permanent.contains(where: lowered.contains)
    }
}
