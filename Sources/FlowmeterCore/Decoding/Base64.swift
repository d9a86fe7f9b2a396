/// Validation and measurement of base64 text without decoding it into a copy (WIRE-FORMAT.md §10 step 8).
enum Base64 {
    struct Measurement: Sendable, Hashable {
        /// The number of bytes the text decodes to.
        var decodedCount: Int
        /// Whether URL-safe characters (`-`, `_`) were accepted leniently.
        var urlSafe: Bool
    }

    /// Validates standard base64 (RFC 4648 §4) with optional padding, accepting the URL-safe alphabet leniently.
    ///
    /// - Returns: The decoded length, or `nil` if the text is not base64.
    static func measure(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Measurement? {
        var dataEnd = end
        var padding = 0
        while dataEnd > start && p[dataEnd - 1] == 0x3D && padding < 2 {
            dataEnd -= 1
            padding += 1
        }
        var urlSafe = false
        for i in start..<dataEnd {
            switch p[i] {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, ASCII.plus, ASCII.slash: continue
            case ASCII.minus, 0x5F: urlSafe = true
            default: return nil
            }
        }
        let n = dataEnd - start
        if n % 4 == 1 { return nil }
        if padding > 0 && (n + padding) % 4 != 0 { return nil }
        // The unused low bits of the last character must be zero in canonical base64; Go's StdEncoding
        // is not strict about that, so neither are we.
        return Measurement(decodedCount: n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1), urlSafe: urlSafe)
    }
}
