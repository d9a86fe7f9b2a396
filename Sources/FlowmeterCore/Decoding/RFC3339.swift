/// The precision of a timestamp, from the number of fraction digits it was written with.
public enum TimePrecision: String, Sendable, Hashable, CaseIterable {
    /// No fraction (Dapr's own `time`).
    case seconds = "s"
    /// 1 to 3 fraction digits.
    case milliseconds = "ms"
    /// 4 to 6 fraction digits.
    case microseconds = "us"
    /// 7 or more fraction digits (truncated to 9).
    case nanoseconds = "ns"
}

/// An instant parsed from an RFC 3339 timestamp.
public struct ParsedTimestamp: Sendable, Hashable {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    public var epochNanoseconds: Int64
    /// How precisely the text gave the instant.
    public var precision: TimePrecision
    /// Whether a lenient extra was needed: a space instead of `T`, or a `+hhmm` offset.
    public var lenient: Bool
    /// Whether the text named second 60 (a leap second), clamped to `59.999999999`.
    public var leapSecond: Bool

    /// The instant in whole milliseconds since the epoch (rounded down).
    public var epochMilliseconds: Int64 {
        epochNanoseconds >= 0
            ? epochNanoseconds / 1_000_000 : -((-epochNanoseconds + 999_999) / 1_000_000)
    }
}

/// A hand-written RFC 3339 (§5.6) parser following WIRE-FORMAT.md §11.
public enum RFC3339 {
    /// Parses `text`.
    ///
    /// Accepts `YYYY-MM-DD`, `T` or `t`, `hh:mm:ss`, an optional `.` and 1 or more digits (beyond 9 truncated),
    /// then `Z`, `z` or `±hh:mm`. Leniently also a space instead of `T` and `±hhmm` (marked `lenient`).
    /// - Returns: The instant, or `nil` if `text` is not a timestamp in that form or is out of the `Int64`
    ///   nanosecond range (years 1678 to 2261).
    public static func parse(_ text: String) -> ParsedTimestamp? {
        var copy = text
        return copy.withUTF8 { parse(bytes: $0) }
    }

    /// Parses UTF-8 bytes; see ``parse(_:)``.
    public static func parse(bytes: UnsafeBufferPointer<UInt8>) -> ParsedTimestamp? {
        guard let p = bytes.baseAddress else { return nil }
        let n = bytes.count
        if n == 20, let instant = parseWholeSecondsUTC(p) { return instant }
        var i = 0
        var lenient = false

        func digits(_ count: Int) -> Int? {
            guard i + count <= n else { return nil }
            var v = 0
            for k in 0..<count {
                let c = p[i + k]
                guard ASCII.isDigit(c) else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            i += count
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < n, p[i] == c else { return false }
            i += 1
            return true
        }

        guard let year = digits(4), expect(ASCII.minus), let month = digits(2), expect(ASCII.minus),
            let day = digits(2)
        else { return nil }
        guard i < n else { return nil }
        switch p[i] {
        case 0x54, 0x74: i += 1
        case 0x20:
            lenient = true
            i += 1
        default: return nil
        }
        guard let hour = digits(2), expect(ASCII.colon), let minute = digits(2), expect(ASCII.colon),
            let second = digits(2)
        else { return nil }
        var fraction: Int64 = 0
        var fractionDigits = 0
        if i < n && p[i] == ASCII.dot {
            i += 1
            while i < n && ASCII.isDigit(p[i]) {
                if fractionDigits < 9 { fraction = fraction * 10 + Int64(p[i] - 0x30) }
                fractionDigits += 1
                i += 1
            }
            guard fractionDigits > 0 else { return nil }
            for _ in min(fractionDigits, 9)..<9 { fraction *= 10 }
        }
        guard i < n else { return nil }
        var offsetSeconds = 0
        switch p[i] {
        case 0x5A, 0x7A: i += 1
        case ASCII.plus, ASCII.minus:
            let sign = p[i] == ASCII.minus ? -1 : 1
            i += 1
            guard let oh = digits(2) else { return nil }
            let om: Int
            if expect(ASCII.colon) {
                guard let m = digits(2) else { return nil }
                om = m
            } else {
                guard let m = digits(2) else { return nil }
                om = m
                lenient = true
            }
            guard oh <= 23 && om <= 59 else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        default: return nil
        }
        guard i == n else { return nil }
        return instant(
            year: year,
            month: month,
            day: day,
            hour: hour,
            minute: minute,
            second: second,
            fraction: fraction,
            fractionDigits: fractionDigits,
            offsetSeconds: offsetSeconds,
            lenient: lenient
        )
    }

    /// The fast path for the layout Dapr writes, `YYYY-MM-DDThh:mm:ssZ` (exactly 20 bytes).
    /// - Returns: `nil` if the text is not in that layout or not a valid instant; ``parse(bytes:)`` then decides.
    @inline(__always) private static func parseWholeSecondsUTC(_ p: UnsafePointer<UInt8>) -> ParsedTimestamp? {
        // Three little-endian words: bytes 0-7 `YYYY-MM-`, 8-15 `DDThh:mm`, 12-19 `h:mm:ssZ`.
        let raw = UnsafeRawPointer(p)
        let a = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        let b = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let c = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
        // The separators: `-` at 4 and 7, `T` at 10, `:` at 13 and 16, `Z` at 19.
        guard a & 0xFF00_00FF_0000_0000 == 0x2D00_002D_0000_0000, b & 0x0000_FF00_00FF_0000 == 0x0000_3A00_0054_0000,
            c & 0xFF00_00FF_0000_0000 == 0x5A00_003A_0000_0000
        else { return nil }
        // The digits, XORed with `0`: a digit becomes 0-9 and any other byte 10 or more (or a byte with its high bit
        // set). Adding 0x76 to a byte below 0x80 sets its high bit exactly when it is 10 or more, without a carry
        // into the next byte; the other positions are masked to 0.
        let ones: UInt64 = 0x0101_0101_0101_0101
        let da = (a ^ ones &* 0x30) & 0x00FF_FF00_FFFF_FFFF
        let db = (b ^ ones &* 0x30) & 0xFFFF_00FF_FF00_FFFF
        let dc = (c ^ ones &* 0x30) & 0x00FF_FF00_0000_0000
        let flagged = da | (da &+ ones &* 0x76) | db | (db &+ ones &* 0x76) | dc | (dc &+ ones &* 0x76)
        guard flagged & (ones &* 0x80) == 0 else { return nil }
        @inline(__always) func digit(_ word: UInt64, _ k: Int) -> Int {
            Int(truncatingIfNeeded: word &>> (8 &* k)) & 0xFF
        }
        let year = digit(da, 0) * 1000 + digit(da, 1) * 100 + digit(da, 2) * 10 + digit(da, 3)
        let month = digit(da, 5) * 10 + digit(da, 6)
        let day = digit(db, 0) * 10 + digit(db, 1)
        let hour = digit(db, 3) * 10 + digit(db, 4)
        let minute = digit(db, 6) * 10 + digit(db, 7)
        let second = digit(dc, 5) * 10 + digit(dc, 6)
        return instant(
            year: year,
            month: month,
            day: day,
            hour: hour,
            minute: minute,
            second: second,
            fraction: 0,
            fractionDigits: 0,
            offsetSeconds: 0,
            lenient: false
        )
    }

    /// Validates the fields of a timestamp and converts them to an instant.
    @inline(__always) private static func instant(
        year: Int,
        month: Int,
        day: Int,
        hour: Int,
        minute: Int,
        second: Int,
        fraction: Int64,
        fractionDigits: Int,
        offsetSeconds: Int,
        lenient: Bool
    ) -> ParsedTimestamp? {
        var second = second
        var fraction = fraction
        // Every month has 28 days (the month length is computed only past them).
        guard month >= 1 && month <= 12, day >= 1, day <= 28 || day <= daysInMonth(year: year, month: month) else {
            return nil
        }
        guard hour <= 23, minute <= 59, second <= 60 else { return nil }
        var leap = false
        if second == 60 {
            leap = true
            second = 59
            fraction = 999_999_999
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        // Int64 nanoseconds cover about ±292 years around 1970.
        guard seconds > -9_223_372_035, seconds < 9_223_372_035 else { return nil }
        let precision: TimePrecision =
            switch fractionDigits {
            case 0: .seconds
            case 1...3: .milliseconds
            case 4...6: .microseconds
            default: .nanoseconds
            }
        return ParsedTimestamp(
            epochNanoseconds: seconds * 1_000_000_000 + fraction,
            precision: precision,
            lenient: lenient,
            leapSecond: leap
        )
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        if y >= 0 && month >= 1 && month <= 12 && day >= 1 {
            // The same on unsigned values (cheaper divisions), for valid dates from the year 0 on.
            let uy = UInt(y)
            let era = uy / 400
            let yoe = uy - era * 400
            let mp = UInt(month > 2 ? month - 3 : month + 9)
            let doy = (153 * mp + 2) / 5 + UInt(day) - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            return Int(era * 146_097 + doe) - 719_468
        }
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
