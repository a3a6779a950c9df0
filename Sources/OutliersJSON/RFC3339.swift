/// RFC 3339 timestamps as proto3 JSON writes `google.protobuf.Timestamp`:
/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`.
///
/// Accepted as swift-protobuf 1.39.0 and Go's protojson (time.Parse with RFC3339Nano)
/// both accept: 'T' and 'Z' uppercase, no leap second (60), a '.' followed by 1 to 9
/// digits, and an instant within 0001-01-01T00:00:00Z … 9999-12-31T23:59:59.999999999Z.
/// Where the two differ: offsets up to ±23:59 are accepted, as RFC 3339 and Go do
/// (swift-protobuf refuses offset hours above 13, which would refuse real zones such
/// as +14:00); a year 0000 is refused whatever the offset, as swift-protobuf does (Go
/// takes `0000-12-31T23:30:00-01:00` as 0001-01-01T00:30:00Z).
enum RFC3339 {
    static let minimumSeconds: Int64 = -62_135_596_800  // 0001-01-01T00:00:00Z
    static let maximumSeconds: Int64 = 253_402_300_799  // 9999-12-31T23:59:59Z

    enum Failure: Error {
        /// Not of the form; the text says which part is wrong.
        case malformed(String)
        /// Well formed, but the instant is outside 0001 … 9999.
        case outOfRange(before: Bool)
    }

    /// Seconds since 1970 (UTC) and nanoseconds, or nil; `check` says why not.
    @inline(__always)
    static func parse(_ text: UnsafeRawBufferPointer) -> (seconds: Int64, nanos: Int32)? {
        if case .success(let time) = check(text) { return time }
        return nil
    }

    /// Seconds since 1970 (UTC) and nanoseconds, or why not.
    static func check(_ text: UnsafeRawBufferPointer) -> Result<(seconds: Int64, nanos: Int32), Failure> {
        let n = text.count
        guard n >= 20 else {
            return .failure(.malformed("expected the form YYYY-MM-DDTHH:MM:SSZ, with an optional fraction of 1 to 9 digits and Z or an offset ±HH:MM"))
        }
        @inline(__always) func digit(_ i: Int) -> Int? {
            let c = text[i]
            return c >= 0x30 && c <= 0x39 ? Int(c &- 0x30) : nil
        }
        @inline(__always) func two(_ i: Int) -> Int? {
            guard let a = digit(i), let b = digit(i + 1) else { return nil }
            return a * 10 + b
        }
        func separator(_ i: Int, _ expected: UInt8, _ what: String) -> Failure? {
            if text[i] == expected { return nil }
            if expected == 0x54 && text[i] == 0x74 { return .malformed("'t' must be an uppercase 'T'") }
            return .malformed("expected \(what) at offset \(i)")
        }
        guard let y0 = digit(0), let y1 = digit(1), let y2 = digit(2), let y3 = digit(3) else {
            return .failure(.malformed("the year must be 4 digits"))
        }
        let year = y0 * 1000 + y1 * 100 + y2 * 10 + y3
        if let f = separator(4, 0x2D, "'-' after the year") { return .failure(f) }
        guard let month = two(5) else { return .failure(.malformed("the month must be 2 digits")) }
        if let f = separator(7, 0x2D, "'-' after the month") { return .failure(f) }
        guard let day = two(8) else { return .failure(.malformed("the day must be 2 digits")) }
        if let f = separator(10, 0x54, "'T' between the date and the time") { return .failure(f) }
        guard let hour = two(11) else { return .failure(.malformed("the hour must be 2 digits")) }
        if let f = separator(13, 0x3A, "':' after the hour") { return .failure(f) }
        guard let minute = two(14) else { return .failure(.malformed("the minute must be 2 digits")) }
        if let f = separator(16, 0x3A, "':' after the minute") { return .failure(f) }
        guard let second = two(17) else { return .failure(.malformed("the second must be 2 digits")) }

        guard month >= 1 && month <= 12 else {
            return .failure(.malformed("month \(pad2(month)) is not 01–12"))
        }
        let maxDay = daysIn(month: month, year: year)
        guard day >= 1 && day <= maxDay else {
            return .failure(.malformed("day \(pad2(day)) is not 01–\(maxDay) for \(pad4(year))-\(pad2(month))"))
        }
        guard hour <= 23 else { return .failure(.malformed("hour \(pad2(hour)) is not 00–23")) }
        guard minute <= 59 else { return .failure(.malformed("minute \(pad2(minute)) is not 00–59")) }
        guard second <= 59 else { return .failure(.malformed("second \(pad2(second)) is not 00–59 (leap seconds are not representable)")) }
        if year == 0 { return .failure(.outOfRange(before: true)) }

        var pos = 19
        var nanos = 0
        if text[pos] == 0x2E {  // '.'
            pos += 1
            var digits = 0
            var scale = 100_000_000
            while pos < n, let d = digit(pos) {
                digits += 1
                if digits > 9 { return .failure(.malformed("more than 9 fractional digits")) }
                nanos += d * scale
                scale /= 10
                pos += 1
            }
            if digits == 0 { return .failure(.malformed("'.' must be followed by 1 to 9 digits")) }
        }

        var offsetSeconds = 0
        guard pos < n else { return .failure(.malformed("missing 'Z' or an offset ±HH:MM at the end")) }
        switch text[pos] {
        case 0x5A:  // 'Z'
            pos += 1
        case 0x2B, 0x2D:  // '+', '-'
            guard n - pos == 6, let oh = two(pos + 1), text[pos + 3] == 0x3A, let om = two(pos + 4) else {
                return .failure(.malformed("the offset must be ±HH:MM"))
            }
            guard oh <= 23 && om <= 59 else { return .failure(.malformed("offset \(pad2(oh)):\(pad2(om)) is not within ±23:59")) }
            offsetSeconds = (oh * 3600 + om * 60) * (text[pos] == 0x2B ? 1 : -1)
            pos += 6
        case 0x7A:
            return .failure(.malformed("'z' must be an uppercase 'Z'"))
        default:
            return .failure(.malformed("expected 'Z' or an offset ±HH:MM at offset \(pos)"))
        }
        guard pos == n else { return .failure(.malformed("unexpected characters after the time zone")) }

        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offsetSeconds)
        if seconds < minimumSeconds { return .failure(.outOfRange(before: true)) }
        if seconds > maximumSeconds { return .failure(.outOfRange(before: false)) }
        return .success((seconds, Int32(nanos)))
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`, UTC, as protojson writes it, of
    /// the `representable` instant.
    static func format(seconds: Int64, nanos: Int32) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(30)
        append(seconds: seconds, nanos: nanos, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The nearest instant proto3 JSON can write: nanos carried into seconds (the same
    /// instant), then seconds clamped to 0001-01-01T00:00:00Z … 9999-12-31T23:59:59Z.
    static func representable(seconds: Int64, nanos: Int32) -> (seconds: Int64, nanos: Int32) {
        if seconds >= minimumSeconds && seconds <= maximumSeconds && nanos >= 0 && nanos <= 999_999_999 {
            return (seconds, nanos)
        }
        var carry = Int64(nanos) / 1_000_000_000
        var rest = Int64(nanos) % 1_000_000_000
        if rest < 0 {
            rest += 1_000_000_000
            carry -= 1
        }
        let (sum, overflow) = seconds.addingReportingOverflow(carry)
        if overflow { return carry < 0 ? (minimumSeconds, 0) : (maximumSeconds, 999_999_999) }
        if sum > maximumSeconds { return (maximumSeconds, 999_999_999) }
        if sum < minimumSeconds { return (minimumSeconds, 0) }
        return (sum, Int32(rest))
    }

    /// Appends the text of `format` (without quotes), of the `representable` instant.
    static func append(seconds: Int64, nanos: Int32, to out: inout [UInt8]) {
        let (seconds, nanos) = representable(seconds: seconds, nanos: nanos)
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civilFromDays(Int(days))
        appendDigits(year, count: 4, into: &out)
        out.append(0x2D)
        appendDigits(month, count: 2, into: &out)
        out.append(0x2D)
        appendDigits(day, count: 2, into: &out)
        out.append(0x54)
        appendDigits(Int(secondOfDay / 3600), count: 2, into: &out)
        out.append(0x3A)
        appendDigits(Int(secondOfDay / 60 % 60), count: 2, into: &out)
        out.append(0x3A)
        appendDigits(Int(secondOfDay % 60), count: 2, into: &out)
        if nanos != 0 {
            out.append(0x2E)
            if nanos % 1_000_000 == 0 {
                appendDigits(Int(nanos / 1_000_000), count: 3, into: &out)
            } else if nanos % 1000 == 0 {
                appendDigits(Int(nanos / 1000), count: 6, into: &out)
            } else {
                appendDigits(Int(nanos), count: 9, into: &out)
            }
        }
        out.append(0x5A)
    }

    static func isLeap(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    @inline(__always)
    static func appendDigits(_ value: Int, count: Int, into out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        var v = value
        while divisor > 0 {
            out.append(UInt8(truncatingIfNeeded: 0x30 + v / divisor))
            v %= divisor
            divisor /= 10
        }
    }

    private static func pad2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    private static func pad4(_ v: Int) -> String {
        var out: [UInt8] = []
        appendDigits(v, count: 4, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
