/// One problem in an analyzer file.
///
/// Its ``description`` is `file:line: key.path: message`, e.g.
/// `analyzers/learnflow.yaml:23: flows[1].timeout: expected a duration such as 500ms, 5s, 1m or 1h30m, got "soon"`.
public struct AnalyzerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file as it was named (a path, or `<built-in>/learnflow.yaml`).
    public var file: String
    /// The 1-based line, or `nil` when the problem is about the file as a whole (e.g. it cannot be read).
    public var line: Int?
    /// The key path, e.g. `flows[1].timeout` (list indexes are 0-based); empty for the document as a whole.
    public var keyPath: String
    /// What was expected and what was found.
    public var message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - file: The file.
    ///   - line: The 1-based line, if known.
    ///   - keyPath: The key path, or empty.
    ///   - message: What was expected and what was found.
    public init(file: String, line: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    /// `file:line` (or just `file` without a line).
    public var location: String { line.map { "\(file):\($0)" } ?? file }

    /// `file:line: key.path: message`; the line and key are left out when unknown.
    public var description: String {
        keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

/// Every problem found in a set of analyzer files, in file and line order.
public struct AnalyzerErrors: Error, Sendable, Hashable, CustomStringConvertible {
    /// The problems; never empty when thrown.
    public var errors: [AnalyzerError]

    /// Creates the list.
    ///
    /// - Parameter errors: The problems.
    public init(_ errors: [AnalyzerError]) {
        self.errors = errors
    }

    /// One problem per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
