internal import CLibPQ
public import Logging
import Synchronization

/// Metadata keys this module logs under.
enum PQLogKeys {
    static let host = "postgres.host"
    static let port = "postgres.port"
    static let database = "postgres.database"
    static let serverVersion = "postgres.server_version"
    static let severity = "postgres.severity"
    static let sqlState = "postgres.sqlstate"
    static let message = "postgres.message"
    static let error = "postgres.error"
}

/// A transaction's isolation level, for ``PQConnection/transaction(isolation:readOnly:_:)``.
public enum PQIsolationLevel: String, Sendable, Hashable {
    /// `READ COMMITTED`, PostgreSQL's default.
    case readCommitted = "READ COMMITTED"
    /// `REPEATABLE READ`.
    case repeatableRead = "REPEATABLE READ"
    /// `SERIALIZABLE`; commits can fail with SQLSTATE `40001`, which is retriable.
    case serializable = "SERIALIZABLE"
}

/// A connection to PostgreSQL through libpq (`PGconn`).
///
/// Every method blocks the calling thread until the server answers (or `connect_timeout` passes when connecting).
/// Callers in Swift concurrency must run them off the cooperative thread pool, e.g. on a dedicated thread or
/// dispatch queue; this type deliberately offers no `async` API.
///
/// - Important: libpq forbids using one `PGconn` from two threads at once. Every libpq call on the connection is
///   made while holding one `Mutex`, so concurrent calls from many tasks are serialized, not interleaved. The lock
///   is held for a whole ``transaction(isolation:readOnly:_:)``: inside its body, use only the ``PQTransaction``
///   handle; calling this connection's methods there deadlocks.
/// - Important: The connection owns its `PGconn` and calls `PQfinish` in ``close()`` or, at the latest, in
///   `deinit`; the notice-receiver context is released only after that.
public final class PQConnection: @unchecked Sendable {
    // `@unchecked`: `conn` is a `PGconn *`, read and written only while `lock` is held.
    private let lock = Mutex<Void>(())
    private var conn: OpaquePointer?
    private let secrets: [String]
    private let logger: Logger
    /// Passed unretained to libpq as the notice receiver's context: must outlive `conn`.
    private let noticeContext: NoticeContext

    private init(conn: OpaquePointer, secrets: [String], logger: Logger) {
        self.conn = conn
        self.secrets = secrets
        self.logger = logger
        self.noticeContext = NoticeContext(logger: logger)
        PQsetNoticeReceiver(conn, receiveNotice, Unmanaged.passUnretained(noticeContext).toOpaque())
    }

    deinit {
        // No other reference exists, so no lock is needed; `noticeContext` is released after this body.
        if let conn { PQfinish(conn) }
    }

    // MARK: - Connecting

    /// Connects to PostgreSQL.
    ///
    /// `application_name` defaults to `flowmeter` and `connect_timeout` to `connectTimeoutSeconds`; values given in
    /// the connection string win.
    ///
    /// - Parameters:
    ///   - url: A libpq connection string: a URL (`postgres://user:pass@host:port/db?sslmode=...`) or keyword/value
    ///     pairs (`host=... port=... dbname=... user=... password=...`).
    ///   - connectTimeoutSeconds: The `connect_timeout` used unless the connection string sets one.
    ///   - logger: Receives connection events and the server's notices; never the password.
    /// - Returns: An open connection.
    /// - Throws: A ``PQError`` with code ``PQError/Code/connectionFailed`` if the connection string is invalid or
    ///   the server cannot be reached or rejects the login. Its messages never contain the password.
    public static func connect(
        url: String,
        connectTimeoutSeconds: Int = 10,
        logger: Logger
    ) throws(PQError) -> PQConnection {
        var secrets = secretValues(in: url)
        try validate(conninfo: url, secrets: &secrets)

        let keywords = ["fallback_application_name", "connect_timeout", "dbname"]
        let values = ["flowmeter", String(connectTimeoutSeconds), url]
        // Parameters before the expanded `dbname` are defaults that the connection string overrides.
        let connection = withCStringArray(keywords) { keywords in
            withCStringArray(values) { values in PQconnectdbParams(keywords, values, 1) }
        }
        guard let connection else {
            throw .connectionFailed(reason: "libpq could not allocate a connection", isRetriable: true)
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            if let password = PQpass(connection) { secrets.append(String(cString: password)) }
            let message = scrubbed(errorMessage(connection), secrets: secrets)
            PQfinish(connection)
            throw .connectionFailed(
                reason: message,
                isRetriable: !PQError.isPermanentConnectionFailure(message)
            )
        }
        // Scrub the password however it was supplied (connection string, PGPASSWORD, .pgpass).
        if let password = PQpass(connection) { secrets.append(String(cString: password)) }
        let result = PQConnection(conn: connection, secrets: secrets.filter { !$0.isEmpty }, logger: logger)
        logger.info(
            "Connected to PostgreSQL",
            metadata: [
                PQLogKeys.host: "\(optionalString(PQhost(connection)) ?? "")",
                PQLogKeys.port: "\(optionalString(PQport(connection)) ?? "")",
                PQLogKeys.database: "\(optionalString(PQdb(connection)) ?? "")",
                PQLogKeys.serverVersion: "\(PQserverVersion(connection))",
            ]
        )
        return result
    }

    /// Checks the connection string with `PQconninfoParse` and collects the secrets it holds.
    private static func validate(conninfo: String, secrets: inout [String]) throws(PQError) {
        // A bare word is a database name, which `PQconnectdbParams` accepts and `PQconninfoParse` does not.
        guard isConnectionURL(conninfo) || conninfo.contains("=") else { return }
        var errorPointer: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorPointer) else {
            var message = "invalid connection string"
            if let errorPointer {
                message = String(cString: errorPointer).trimmingTrailingWhitespace()
                PQfreemem(errorPointer)
            }
            throw .connectionFailed(reason: scrubbed(message, secrets: secrets), isRetriable: false)
        }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if secretConninfoKeys.contains(String(cString: keyword)), let value = option.pointee.val {
                secrets.append(String(cString: value))
            }
            option += 1
        }
    }

    // MARK: - State

    /// Whether the connection is open and libpq considers it healthy (`PQstatus` is `CONNECTION_OK`).
    ///
    /// libpq notices a broken connection only when it next uses it, so this can be true for a connection the server
    /// has already dropped; the next command then fails with ``PQError/Code/connectionLost``.
    public var isConnected: Bool {
        lock.withLock { _ in
            guard let conn else { return false }
            return PQstatus(conn) == CONNECTION_OK
        }
    }

    /// The server's version as `PQserverVersion` reports it (e.g. 150018 for 15.18); nil if the connection is closed
    /// or broken.
    public var serverVersion: Int? {
        lock.withLock { _ in
            guard let conn else { return nil }
            let version = Int(PQserverVersion(conn))
            return version > 0 ? version : nil
        }
    }

    /// A parameter the server reported (`PQparameterStatus`), e.g. `server_version`, `TimeZone`,
    /// `application_name`; nil if unknown or the connection is closed.
    ///
    /// - Parameter name: The parameter's name.
    /// - Returns: Its current value.
    public func parameterStatus(_ name: String) -> String? {
        lock.withLock { _ in
            guard let conn else { return nil }
            return optionalString(PQparameterStatus(conn, name))
        }
    }

    /// Closes the connection to the server and reconnects with the same parameters (`PQreset`).
    ///
    /// - Throws: A ``PQError`` with code ``PQError/Code/closed`` after ``close()``, or
    ///   ``PQError/Code/connectionFailed`` if reconnecting fails.
    public func reset() throws(PQError) {
        try lock.withLock { _ throws(PQError) in
            guard let conn else { throw .closed() }
            PQreset(conn)
            guard PQstatus(conn) == CONNECTION_OK else {
                let message = scrubbed(errorMessage(conn), secrets: secrets)
                throw .connectionFailed(reason: message, isRetriable: !PQError.isPermanentConnectionFailure(message))
            }
            logger.info("Reconnected to PostgreSQL")
        }
    }

    /// Closes the connection (`PQfinish`). Later calls throw ``PQError/Code/closed``; closing again does nothing.
    public func close() {
        lock.withLock { _ in
            if let conn {
                PQfinish(conn)
                self.conn = nil
            }
        }
    }

    // MARK: - Commands

    /// Runs one SQL command with parameters (`PQexecParams`) and returns its rows, copied out of libpq.
    ///
    /// - Parameters:
    ///   - sql: One SQL command; parameters are referenced as `$1`, `$2`, ….
    ///   - params: The parameters' values.
    /// - Returns: The result's columns and rows (none for commands that return no rows).
    /// - Throws: A ``PQError``: ``PQError/Code/queryFailed`` with the server's SQLSTATE,
    ///   ``PQError/Code/connectionLost`` if the connection broke, ``PQError/Code/closed``, or
    ///   ``PQError/Code/invalidArgument``.
    @discardableResult
    public func query(_ sql: String, _ params: [PQValue] = []) throws(PQError) -> PQRows {
        try lock.withLock { _ throws(PQError) in
            guard let conn else { throw .closed() }
            return try runCommand(conn: conn, sql: sql, params: params, secrets: secrets)
        }
    }

    /// Runs one SQL command with parameters and returns the number of rows it affected (`PQcmdTuples`).
    ///
    /// - Parameters:
    ///   - sql: One SQL command; parameters are referenced as `$1`, `$2`, ….
    ///   - params: The parameters' values.
    /// - Returns: The affected row count; 0 for commands without one.
    /// - Throws: A ``PQError``, as ``query(_:_:)`` does.
    @discardableResult
    public func execute(_ sql: String, _ params: [PQValue] = []) throws(PQError) -> Int {
        try query(sql, params).affectedRows
    }

    // MARK: - Transactions

    /// Runs `body` in a transaction: `BEGIN`, then `COMMIT` if `body` returns, `ROLLBACK` if it throws.
    ///
    /// - Important: The connection stays locked until the transaction ends; inside `body`, run commands through the
    ///   given ``PQTransaction`` only (calling this connection's methods deadlocks), and do not keep the handle: it
    ///   throws ``PQError/Code/closed`` once the transaction has ended.
    ///
    /// - Parameters:
    ///   - isolation: The isolation level; nil for the session's default.
    ///   - readOnly: Whether to start a `READ ONLY` transaction.
    ///   - body: The transaction's work.
    /// - Returns: What `body` returned, once the transaction has committed.
    /// - Throws: The error `body` threw (after rolling back); a ``PQError`` if `BEGIN` or `COMMIT` fails (e.g. a
    ///   serialization failure, SQLSTATE `40001`), or ``PQError/Code/transactionRolledBack`` if the server rolled back
    ///   at `COMMIT` because a command in the transaction had failed.
    public func transaction<T>(
        isolation: PQIsolationLevel? = nil,
        readOnly: Bool = false,
        _ body: (PQTransaction) throws -> T
    ) throws -> T {
        var outcome: Result<T, any Error>?
        lock.withLock { _ in
            outcome = Result { () throws -> T in
                guard let conn else { throw PQError.closed() }
                return try runTransaction(conn: conn, isolation: isolation, readOnly: readOnly, body)
            }
        }
        return try outcome!.get()
    }

    /// Runs a transaction on `conn`; the caller holds the lock.
    private func runTransaction<T>(
        conn: OpaquePointer,
        isolation: PQIsolationLevel?,
        readOnly: Bool,
        _ body: (PQTransaction) throws -> T
    ) throws -> T {
        var begin = "BEGIN"
        if let isolation { begin += " ISOLATION LEVEL \(isolation.rawValue)" }
        if readOnly { begin += " READ ONLY" }
        try runCommand(conn: conn, sql: begin, params: [], secrets: secrets)

        let transaction = PQTransaction(conn: conn, secrets: secrets)
        defer { transaction.isActive = false }
        let result: T
        do {
            result = try body(transaction)
        } catch {
            do {
                try runCommand(conn: conn, sql: "ROLLBACK", params: [], secrets: secrets)
            } catch let rollbackError {
                logger.debug(
                    "ROLLBACK failed after the transaction body threw",
                    metadata: [PQLogKeys.error: "\(rollbackError)"]
                )
            }
            throw error
        }
        let commit = try runCommand(conn: conn, sql: "COMMIT", params: [], secrets: secrets)
        // COMMIT of a transaction in which a command failed succeeds with the tag ROLLBACK.
        if commit.commandTag == "ROLLBACK" {
            throw PQError(
                code: .transactionRolledBack,
                reason: "COMMIT rolled the transaction back because a command in it had failed",
                file: #fileID,
                line: #line
            )
        }
        return result
    }
}

/// The handle a ``PQConnection/transaction(isolation:readOnly:_:)`` body runs its commands through.
///
/// - Important: Valid only inside the transaction's body, on the body's thread; afterwards every call throws
///   ``PQError/Code/closed``. It is not `Sendable`.
public final class PQTransaction {
    /// The transaction's connection; the owning ``PQConnection`` holds its lock while this handle is active.
    private let conn: OpaquePointer
    private let secrets: [String]
    fileprivate var isActive = true

    fileprivate init(conn: OpaquePointer, secrets: [String]) {
        self.conn = conn
        self.secrets = secrets
    }

    /// Runs one SQL command with parameters inside the transaction and returns its rows.
    ///
    /// - Parameters:
    ///   - sql: One SQL command; parameters are referenced as `$1`, `$2`, ….
    ///   - params: The parameters' values.
    /// - Returns: The result's columns and rows.
    /// - Throws: A ``PQError``, as ``PQConnection/query(_:_:)`` does; ``PQError/Code/closed`` after the transaction.
    @discardableResult
    public func query(_ sql: String, _ params: [PQValue] = []) throws(PQError) -> PQRows {
        guard isActive else { throw .closed(reason: "the transaction has ended") }
        return try runCommand(conn: conn, sql: sql, params: params, secrets: secrets)
    }

    /// Runs one SQL command with parameters inside the transaction and returns the number of rows it affected.
    ///
    /// - Parameters:
    ///   - sql: One SQL command; parameters are referenced as `$1`, `$2`, ….
    ///   - params: The parameters' values.
    /// - Returns: The affected row count; 0 for commands without one.
    /// - Throws: A ``PQError``, as ``query(_:_:)`` does.
    @discardableResult
    public func execute(_ sql: String, _ params: [PQValue] = []) throws(PQError) -> Int {
        try query(sql, params).affectedRows
    }
}

// MARK: - libpq calls

/// Runs `sql` with `PQexecParams` and copies the result into Swift values. The caller owns `conn` exclusively.
@discardableResult
private func runCommand(
    conn: OpaquePointer,
    sql: String,
    params: [PQValue],
    secrets: [String]
) throws(PQError) -> PQRows {
    let encoded = try params.map { value throws(PQError) in try value.encoded() }
    var buffers: [UnsafeMutablePointer<CChar>?] = []
    buffers.reserveCapacity(encoded.count)
    defer { for buffer in buffers { buffer?.deallocate() } }
    for parameter in encoded {
        guard let bytes = parameter.bytes else {
            buffers.append(nil)
            continue
        }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
        UnsafeMutableRawBufferPointer(start: buffer, count: bytes.count).copyBytes(from: bytes)
        buffer[bytes.count] = 0
        buffers.append(buffer)
    }
    let types = encoded.map { Oid($0.typeOID) }
    let lengths = encoded.map { Int32($0.bytes?.count ?? 0) }
    let formats = encoded.map(\.format)
    let values = buffers.map { $0.map { UnsafePointer($0) } }

    let result = types.withUnsafeBufferPointer { types in
        values.withUnsafeBufferPointer { values in
            lengths.withUnsafeBufferPointer { lengths in
                formats.withUnsafeBufferPointer { formats in
                    PQexecParams(
                        conn,
                        sql,
                        Int32(encoded.count),
                        types.baseAddress,
                        values.baseAddress,
                        lengths.baseAddress,
                        formats.baseAddress,
                        0
                    )
                }
            }
        }
    }
    guard let result else {
        throw commandError(conn: conn, result: nil, secrets: secrets)
    }
    defer { PQclear(result) }
    let status = PQresultStatus(result)
    guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY else {
        throw commandError(conn: conn, result: result, secrets: secrets)
    }
    return copyRows(result)
}

private func copyRows(_ result: OpaquePointer) -> PQRows {
    let columnCount = PQnfields(result)
    let rowCount = PQntuples(result)
    var columns: [PQColumn] = []
    columns.reserveCapacity(Int(columnCount))
    for column in 0..<columnCount {
        columns.append(
            PQColumn(name: optionalString(PQfname(result, column)) ?? "", typeOID: UInt32(PQftype(result, column)))
        )
    }
    var values: [String?] = []
    values.reserveCapacity(Int(rowCount) * Int(columnCount))
    for row in 0..<rowCount {
        for column in 0..<columnCount {
            if PQgetisnull(result, row, column) == 1 {
                values.append(nil)
            } else {
                let bytes = UnsafeRawBufferPointer(
                    start: PQgetvalue(result, row, column),
                    count: Int(PQgetlength(result, row, column))
                )
                values.append(String(decoding: bytes, as: UTF8.self))
            }
        }
    }
    return PQRows(
        columns: columns,
        values: values,
        commandTag: optionalString(PQcmdStatus(result)) ?? "",
        affectedRows: optionalString(PQcmdTuples(result)).flatMap { Int($0) } ?? 0
    )
}

/// The `PG_DIAG_*` field codes; libpq defines them as character macros, which Swift does not import.
private enum DiagnosticField {
    static let severity = Int32(UInt8(ascii: "S"))
    static let severityNonLocalized = Int32(UInt8(ascii: "V"))
    static let sqlState = Int32(UInt8(ascii: "C"))
    static let messagePrimary = Int32(UInt8(ascii: "M"))
    static let messageDetail = Int32(UInt8(ascii: "D"))
    static let messageHint = Int32(UInt8(ascii: "H"))
}

private func commandError(
    conn: OpaquePointer,
    result: OpaquePointer?,
    secrets: [String],
    file: String = #fileID,
    line: Int = #line
) -> PQError {
    func field(_ code: Int32) -> String? {
        guard let result else { return nil }
        return optionalString(PQresultErrorField(result, code)).map { scrubbed($0, secrets: secrets) }
    }
    var message = result.flatMap { optionalString(PQresultErrorMessage($0)) } ?? ""
    if message.isEmpty { message = errorMessage(conn) }
    message = scrubbed(message.trimmingTrailingWhitespace(), secrets: secrets)
    let sqlState = field(DiagnosticField.sqlState)
    let lost = PQstatus(conn) == CONNECTION_BAD
    // libpq's own errors (no SQLSTATE) are about the client or the connection, never about data.
    let fromServer = sqlState != nil
    return PQError(
        code: lost ? .connectionLost : .queryFailed,
        reason: fromServer
            ? (lost ? "the server closed the connection" : "the server rejected the command")
            : (message.isEmpty ? "the command failed" : message),
        sqlState: sqlState,
        serverMessage: fromServer ? field(DiagnosticField.messagePrimary) : nil,
        detail: field(DiagnosticField.messageDetail),
        hint: field(DiagnosticField.messageHint),
        file: file,
        line: line
    )
}

// MARK: - Notices

/// The notice receiver's context: the logger notices go to.
private final class NoticeContext: Sendable {
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }
}

/// libpq's `PQnoticeReceiver`: logs a server notice. Runs on the thread of the libpq call that received it.
private func receiveNotice(_ context: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
    guard let context, let result else { return }
    let logger = Unmanaged<NoticeContext>.fromOpaque(context).takeUnretainedValue().logger
    let severity =
        optionalString(PQresultErrorField(result, DiagnosticField.severityNonLocalized))
        ?? optionalString(PQresultErrorField(result, DiagnosticField.severity)) ?? "NOTICE"
    let level: Logger.Level =
        switch severity {
        case "WARNING": .warning
        case "NOTICE": .notice
        case "INFO": .info
        default: .debug
        }
    logger.log(
        level: level,
        "PostgreSQL notice",
        metadata: [
            PQLogKeys.severity: "\(severity)",
            PQLogKeys.sqlState: "\(optionalString(PQresultErrorField(result, DiagnosticField.sqlState)) ?? "")",
            PQLogKeys.message: "\(optionalString(PQresultErrorField(result, DiagnosticField.messagePrimary)) ?? "")",
        ]
    )
}

// MARK: - Helpers

private func optionalString(_ pointer: UnsafePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}

private func optionalString(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
    pointer.map { String(cString: $0) }
}

private func errorMessage(_ conn: OpaquePointer) -> String {
    (optionalString(PQerrorMessage(conn)) ?? "").trimmingTrailingWhitespace()
}

/// Calls `body` with a NULL-terminated array of C strings; the strings live only during the call.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>] = strings.map { string in
        let utf8 = string.utf8CString
        let copy = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        _ = UnsafeMutableBufferPointer(start: copy, count: utf8.count).initialize(from: utf8)
        return copy
    }
    defer { for copy in copies { copy.deallocate() } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
