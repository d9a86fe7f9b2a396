/// Where the analyzer definitions come from (DESIGN.md 3.2).
public enum AnalyzerSource: Sendable, Hashable, CustomStringConvertible {
    /// One YAML file.
    case file(path: String)
    /// A folder: all `*.yaml` in it.
    case directory(path: String)
    /// The LearnFlow set built into the binary.
    case builtIn

    /// `file <path>`, `folder <path>` or `built-in LearnFlow set`.
    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .directory(let path): "folder \(path)"
        case .builtIn: "built-in LearnFlow set"
        }
    }
}
