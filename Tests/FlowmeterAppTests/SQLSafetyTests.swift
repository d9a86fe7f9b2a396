import Foundation
import Testing

/// Only parameterized SQL: no SQL text in the sources is assembled from values at run time.
///
/// Every string literal that reads as SQL must be a whole statement with `$n` placeholders: no `\(...)`
/// interpolation inside it, and no `+` joining it to something else.
struct SQLSafetyTests {
    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    /// Statements and clauses that mark a literal as SQL (natural-language messages such as "cannot create a
    /// client" do not match). Immutable after initialization; only read.
    nonisolated(unsafe) static let sqlPattern = try! Regex(
        #"(?i)\b(select\s[\s\S]+?\sfrom\s|insert\s+into\s|delete\s+from\s|update\s+[\w.]+\s+set\s|create\s+(or\s+replace\s+)?(table|index|schema|view|function|aggregate|type)\s|drop\s+(table|index|view|function)\s|alter\s+table\s|where\s+[\w.]+\s*(=|<|>|in\s))"#
    )

    /// The string literals of a Swift source: single-line `"..."` and multi-line `"""..."""` (raw strings
    /// `#"..."#` included), with their line numbers.
    static func literals(in text: String) -> [(line: Int, text: String, joined: Bool)] {
        var result: [(Int, String, Bool)] = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        var line = 1
        func at(_ offset: Int) -> Character? {
            index + offset < scalars.count ? Character(scalars[index + offset]) : nil
        }
        while index < scalars.count {
            let c = Character(scalars[index])
            if c == "\n" { line += 1 }
            if c == "/" && at(1) == "/" {  // comment to the end of the line
                while index < scalars.count && scalars[index] != "\n" { index += 1 }
                continue
            }
            guard c == "\"" else {
                index += 1
                continue
            }
            let start = line
            let multiline = at(1) == "\"" && at(2) == "\""
            let close = multiline ? "\"\"\"" : "\""
            index += close.count
            var body = ""
            while index < scalars.count {
                if scalars[index] == "\\" && !multiline {
                    body.unicodeScalars.append(scalars[index])
                    if index + 1 < scalars.count { body.unicodeScalars.append(scalars[index + 1]) }
                    index += 2
                    continue
                }
                if String(String.UnicodeScalarView(scalars[index..<min(index + close.count, scalars.count)])) == close {
                    break
                }
                if scalars[index] == "\n" { line += 1 }
                body.unicodeScalars.append(scalars[index])
                index += 1
            }
            index += close.count
            // Joined with + on either side?
            var after = index
            while after < scalars.count && (scalars[after] == " " || scalars[after] == "\n") { after += 1 }
            let joined = after < scalars.count && scalars[after] == "+"
            result.append((start, body, joined))
        }
        return result
    }

    static func violations(in text: String, file: String) -> [String] {
        literals(in: text).compactMap { literal in
            guard literal.text.contains(sqlPattern) else { return nil }
            if literal.text.contains("\\(") { return "\(file):\(literal.line): SQL with string interpolation" }
            if literal.joined { return "\(file):\(literal.line): SQL joined with +" }
            return nil
        }
    }

    @Test func theDetectorFindsStringBuiltSQL() {
        let bad = #"""
            let a = "SELECT * FROM t WHERE id = \(id)"
            let b = """
                DELETE FROM \(table) WHERE x < $1
                """
            let c = "INSERT INTO t (a) VALUES ('" + value + "')"
            let ok = "SELECT a FROM t WHERE id = $1"
            let message = "cannot create a Kafka client: \(reason)"
            """#
        #expect(Self.violations(in: bad, file: "sample").count == 3)
    }

    @Test func noSourceBuildsSQLFromStrings() throws {
        let files =
            FileManager.default.enumerator(at: Self.sources, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" } ?? []
        #expect(files.count > 20, "sources not found at \(Self.sources.path)")
        var sqlLiterals = 0
        var problems: [String] = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            sqlLiterals += Self.literals(in: text).filter { $0.text.contains(Self.sqlPattern) }.count
            problems += Self.violations(in: text, file: file.lastPathComponent)
        }
        #expect(sqlLiterals > 20, "the scanner found only \(sqlLiterals) SQL literals")
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }
}
