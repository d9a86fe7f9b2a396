/// Quotes a value for an error message, escaping quotes and control characters.
func quoted(_ value: String) -> String {
    String(reflecting: value)
}
