import Glibc

/// A number in JSON's grammar to the double glibc's strtod gives for the same text
/// (correctly rounded, ties to even), which is what jansson stores
/// (JSON_DECODE_INT_AS_REAL) and what Swift's `Double(String)` gives.
///
/// strtod was a tenth of the gateway's profile: it copes with any text, locale and
/// rounding mode, and takes its slow exact path for most 17-digit values. Here:
/// - Clinger's fast path: a mantissa of at most 2^53 and a power of ten within
///   10^±22 are both exact doubles, so one IEEE multiplication or division rounds
///   correctly.
/// - Otherwise Eisel–Lemire (Lemire, "Number Parsing at a Gigabyte per Second",
///   2021): the mantissa times a 128-bit truncation of 5^q gives the 54 leading
///   bits of the product and tells when the truncation could have changed them.
/// - strtod itself for what those two do not decide: more than 19 significant
///   digits (the mantissa would not fit in 64 bits) and the rare products that the
///   128-bit truncation leaves ambiguous.
enum DecimalParser {
    /// What `parse` read.
    struct Number {
        /// The double strtod gives: ±infinity when the text overflows, ±0 or a
        /// subnormal when it underflows (strtod gives the same).
        var value: Double
        /// Just past the number's last byte.
        var end: UnsafePointer<UInt8>
    }

    /// Reads `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `start`, ending at
    /// the first byte that cannot continue it (which the caller judges), or nil when
    /// the bytes there do not start a number of that grammar (also for a leading
    /// zero followed by a digit, which JSON refuses).
    @inline(__always)
    static func parse(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Number? {
        var p = start
        let negative = p < end && p.pointee == UInt8(ascii: "-")
        if negative { p += 1 }
        guard p < end else { return nil }
        // The significant digits, read as an integer (wrapping past 19 digits, when
        // strtod decides instead), and how many there are from the first nonzero one.
        var mantissa: UInt64 = 0
        var significantDigits = 0
        if p.pointee == UInt8(ascii: "0") {
            p += 1
            if p < end && isDigit(p.pointee) { return nil }
        } else {
            guard isDigit(p.pointee) else { return nil }
            let integerStart = p
            readDigits(&p, end, into: &mantissa)
            significantDigits = p - integerStart
        }
        // The power of ten the mantissa is to be scaled by.
        var exponent = 0
        if p < end && p.pointee == UInt8(ascii: ".") {
            p += 1
            let fractionStart = p
            // 0.000123: the zeros scale, they are not significant.
            if significantDigits == 0 {
                while p < end && p.pointee == UInt8(ascii: "0") { p += 1 }
            }
            let significantStart = p
            readDigits(&p, end, into: &mantissa)
            guard p > fractionStart else { return nil }
            significantDigits += p - significantStart
            exponent = fractionStart - p
        }
        if p < end && p.pointee | 0x20 == UInt8(ascii: "e") {
            p += 1
            var exponentNegative = false
            if p < end && (p.pointee == UInt8(ascii: "+") || p.pointee == UInt8(ascii: "-")) {
                exponentNegative = p.pointee == UInt8(ascii: "-")
                p += 1
            }
            let exponentStart = p
            var written = 0
            while p < end && isDigit(p.pointee) {
                // Saturates far beyond any double and any body's length of zeros
                // (1e-400 and 0.(10^6 zeros)1e999999 both stay exact), never overflowing.
                if written < 1 << 40 { written = written * 10 + Int(p.pointee &- 0x30) }
                p += 1
            }
            guard p > exponentStart else { return nil }
            exponent += exponentNegative ? -written : written
        }

        let magnitude: Double
        if significantDigits > 19 {
            return Number(value: strtodOfCopy(start, p), end: p)
        } else if mantissa == 0 {
            magnitude = 0
        } else if mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22 {
            // Clinger: both operands exact, one rounding.
            let scale = exactPowerOfTen(exponent < 0 ? -exponent : exponent)
            magnitude = exponent < 0 ? Double(mantissa) / scale : Double(mantissa) * scale
        } else if let rounded = eiselLemire(mantissa: mantissa, exponent: exponent) {
            magnitude = rounded
        } else {
            return Number(value: strtodOfCopy(start, p), end: p)
        }
        return Number(value: negative ? -magnitude : magnitude, end: p)
    }

    /// The whole of `text` as a number (nil when any byte is left over), for tests
    /// and the fuzz target.
    static func parse(_ text: UnsafeRawBufferPointer) -> Double? {
        guard let base = text.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        guard let number = parse(base, base + text.count), number.end == base + text.count else { return nil }
        return number.value
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    /// Appends the digits at `p` to `mantissa` (wrapping on overflow: the caller
    /// counts the digits), eight bytes at a time while eight are there: a word of
    /// eight digits at once, and the digits that start a word ended by another byte
    /// also at once, shifted up so that '0's stand in front of them (a number's last
    /// digits are never a whole word but for one in eight).
    @inline(__always)
    static func readDigits(_ p: inout UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, into mantissa: inout UInt64) {
        while end - p >= 8 {
            let word = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
            let nonDigits = nonDigitBytes(word)
            if nonDigits == 0 {
                mantissa = mantissa &* 100_000_000 &+ eightDigitsValue(word)
                p += 8
                continue
            }
            // The lowest marked byte is the first that is not a digit.
            let digits = nonDigits.trailingZeroBitCount >> 3
            if digits > 0 {
                let shift = UInt64(8 * (8 - digits))
                let padded = (word << shift) | (0x3030_3030_3030_3030 >> (64 - shift))
                mantissa = mantissa &* exactPowerOfTenInteger(digits) &+ eightDigitsValue(padded)
                p += digits
            }
            return
        }
        while p < end && isDigit(p.pointee) {
            mantissa = mantissa &* 10 &+ UInt64(p.pointee &- 0x30)
            p += 1
        }
    }

    /// The top bit of each byte of `word` that is not an ASCII digit, exact up to and
    /// including the lowest such byte (above it a borrow can mark digits too): a byte
    /// below '0' borrows into its top bit when '0' is subtracted, one above '9'
    /// carries into it when 0x46 (0x80 − '9' − 1) is added.
    @inline(__always)
    static func nonDigitBytes(_ word: UInt64) -> UInt64 {
        ((word &+ 0x4646_4646_4646_4646) | (word &- 0x3030_3030_3030_3030)) & 0x8080_8080_8080_8080
    }

    /// 10^n for n in 1...7.
    @inline(__always)
    static func exactPowerOfTenInteger(_ n: Int) -> UInt64 {
        assert(n >= 1 && n <= 7)
        return switch n {
        case 1: 10
        case 2: 100
        case 3: 1_000
        case 4: 10_000
        case 5: 100_000
        case 6: 1_000_000
        default: 10_000_000
        }
    }

    /// The value of eight ASCII digits, the first in the lowest byte: pairs, then
    /// quadruples, then the whole, each step one multiply-and-shift over the lanes.
    @inline(__always)
    static func eightDigitsValue(_ word: UInt64) -> UInt64 {
        var lanes = word &- 0x3030_3030_3030_3030
        // Each 16-bit lane: 10 × its first digit + its second (in its low byte).
        lanes = (lanes &* 10) &+ (lanes >> 8)
        let pairs = lanes & 0x0000_00FF_0000_00FF  // pairs 0 and 2
        let nextPairs = (lanes >> 16) & 0x0000_00FF_0000_00FF  // pairs 1 and 3
        // pair0 × 10^6 + pair1 × 10^4 + pair2 × 100 + pair3, gathered in the top half.
        return (pairs &* (100 + (1_000_000 << 32)) &+ nextPairs &* (1 + (10_000 << 32))) >> 32
    }

    /// 10^n for n in 0...22, each exact in a double (5^22 < 2^53). A switch of
    /// literals compiles to a table in read-only data: no lazy global to check.
    @inline(__always)
    static func exactPowerOfTen(_ n: Int) -> Double {
        assert(n >= 0 && n <= 22, "10^\(n) is not exact")
        return switch n {
        case 0: 1e0
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        case 7: 1e7
        case 8: 1e8
        case 9: 1e9
        case 10: 1e10
        case 11: 1e11
        case 12: 1e12
        case 13: 1e13
        case 14: 1e14
        case 15: 1e15
        case 16: 1e16
        case 17: 1e17
        case 18: 1e18
        case 19: 1e19
        case 20: 1e20
        case 21: 1e21
        default: 1e22
        }
    }

    /// strtod of [start, end), which needs a NUL after the number.
    @inline(never)
    static func strtodOfCopy(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double {
        let count = end - start
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buffer in
            UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: start, byteCount: count)
            buffer[count] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }

    // MARK: Eisel–Lemire

    /// The smallest and largest q of the 5^q table: below, any 19-digit mantissa
    /// times 10^q is under half the smallest subnormal (rounds to 0); above, at
    /// least 10^309 (rounds to infinity).
    @inline(__always) static var smallestPowerOfFive: Int { -342 }
    @inline(__always) static var largestPowerOfFive: Int { 308 }

    /// mantissa × 10^exponent rounded to nearest, ties to even, for a mantissa of at
    /// most 19 digits (nonzero); nil when the truncated 5^q leaves it ambiguous.
    @inline(__always)
    static func eiselLemire(mantissa: UInt64, exponent q: Int) -> Double? {
        assert(mantissa != 0)
        if q < smallestPowerOfFive { return 0 }
        if q > largestPowerOfFive { return .infinity }
        // w normalized: its top bit set. Then 10^q = 5^q × 2^q, and the table holds
        // 5^q normalized to 128 bits, so the product's top bits are the result's.
        let leadingZeros = mantissa.leadingZeroBitCount
        let w = mantissa << leadingZeros
        let entry = powersOfFive + 2 * (q - smallestPowerOfFive)
        var (high, low) = w.multipliedFullWidth(by: entry[0])
        // The 55 bits kept are exact unless the 9 below them are all ones (a carry
        // from the lower half of 5^q could still reach them): add that half in.
        if high & 0x1FF == 0x1FF {
            let (lowerHigh, _) = w.multipliedFullWidth(by: entry[1])
            let (sum, carry) = low.addingReportingOverflow(lowerHigh)
            low = sum
            if carry { high &+= 1 }
        }
        // Still all ones below: the truncation of 5^q may have decided the rounding.
        // Only for q outside [-27, 55], where 5^q is not exact in the table's 128 bits.
        if low == .max && (q < -27 || q > 55) { return nil }

        let upperBit = Int(high >> 63)
        // 54 bits: the 53 of the significand and one to round with.
        var significand = high >> (upperBit + 9)
        // floor(q × log2(10)) + 63 is the product's binary exponent (217706 / 2^16
        // is log2(10) closely enough over the table's range), then the IEEE bias.
        var biasedExponent = ((217_706 * q) >> 16) + 63 + upperBit - leadingZeros + 1023
        if biasedExponent <= 0 {
            // Subnormal (or zero): shift down to the fixed exponent, then round.
            let shift = 1 - biasedExponent
            if shift >= 64 { return 0 }
            significand >>= UInt64(shift)
            significand += significand & 1
            significand >>= 1
            // Rounding up may have reached the smallest normal, which the bits say.
            return Double(bitPattern: significand)
        }
        // A product exactly halfway between two doubles (nothing below the kept
        // bits, the round bit set, the last kept bit even) rounds down, to even; only
        // possible for these q (5^q small enough to make an exact product).
        if low <= 1 && q >= -4 && q <= 23 && significand & 3 == 1 && significand << (upperBit + 9) == high {
            significand &= ~1
        }
        significand += significand & 1
        significand >>= 1
        if significand >= 1 << 53 {
            // Rounded up to the next power of two.
            significand = 1 << 52
            biasedExponent += 1
        }
        if biasedExponent >= 0x7FF { return .infinity }
        return Double(bitPattern: UInt64(biasedExponent) << 52 | (significand & ((1 << 52) - 1)))
    }

    /// For each q in smallestPowerOfFive...largestPowerOfFive, 5^q to 128 bits as
    /// two words (high, low), the high word's top bit set. For q ≥ 0 the leading 128
    /// bits of 5^q (exact up to q = 55); for q < 0, 2^b / 5^−q plus one, to 128 bits.
    /// Computed once, with exact integer arithmetic (`BigNatural`): no table to trust.
    /// nonisolated(unsafe): written only inside this lazy initializer, which Swift
    /// runs once before any reader sees the pointer; read-only after.
    nonisolated(unsafe) static let powersOfFive: UnsafePointer<UInt64> = {
        let count = largestPowerOfFive - smallestPowerOfFive + 1
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * count)
        let deepest = -smallestPowerOfFive
        // floor(2^B / 5^n) for n = 0, 1, …, by dividing by 5 each step (floor of a
        // floor is the floor of the whole quotient). B is past the largest b below.
        let bits = 1728
        var reciprocal = BigNatural.powerOfTwo(bits)
        var power = BigNatural.one  // 5^n
        for n in 0...max(deepest, largestPowerOfFive) {
            if n > 0 {
                power.multiply(by: 5)
                reciprocal.divide(by: 5)
            }
            if n <= largestPowerOfFive {
                table.storeEntry(at: n - smallestPowerOfFive, power.leading128Bits)
            }
            if n >= 1 && n <= deepest {
                // 2^z ≥ 5^n > 2^(z−1). For 5^n below 2^64 (n ≤ 27) a quotient of 128
                // bits is exact enough; beyond, twice the bits, then truncated.
                let z = power.bitWidth
                let b = n <= 27 ? z + 127 : 2 * z + 128
                precondition(b <= bits, "the reciprocal needs more bits")
                var quotient = reciprocal.shiftedRight(by: bits - b)  // floor(2^b / 5^n)
                quotient.add(1)
                table.storeEntry(at: -n - smallestPowerOfFive, quotient.leading128Bits)
            }
        }
        return UnsafePointer(table)
    }()
}

private extension UnsafeMutablePointer<UInt64> {
    func storeEntry(at index: Int, _ value: (high: UInt64, low: UInt64)) {
        self[2 * index] = value.high
        self[2 * index + 1] = value.low
    }
}

/// A natural number of any size, little-endian 64-bit words: only what the power
/// table needs (×5, ÷5, shifts, +1), run once at startup.
struct BigNatural {
    var words: [UInt64]

    static let one = BigNatural(words: [1])

    static func powerOfTwo(_ exponent: Int) -> BigNatural {
        var words = [UInt64](repeating: 0, count: exponent / 64 + 1)
        words[exponent / 64] = 1 << UInt64(exponent % 64)
        return BigNatural(words: words)
    }

    /// Bits up to the highest set one (0 for zero).
    var bitWidth: Int {
        guard let top = words.lastIndex(where: { $0 != 0 }) else { return 0 }
        return top * 64 + 64 - words[top].leadingZeroBitCount
    }

    mutating func multiply(by factor: UInt64) {
        var carry: UInt64 = 0
        for i in words.indices {
            let (high, low) = words[i].multipliedFullWidth(by: factor)
            let (sum, overflow) = low.addingReportingOverflow(carry)
            words[i] = sum
            carry = high + (overflow ? 1 : 0)
        }
        if carry != 0 { words.append(carry) }
    }

    /// Floor division.
    mutating func divide(by divisor: UInt64) {
        var remainder: UInt64 = 0
        for i in words.indices.reversed() {
            let (quotient, rest) = divisor.dividingFullWidth((remainder, words[i]))
            words[i] = quotient
            remainder = rest
        }
    }

    mutating func add(_ addend: UInt64) {
        var carry = addend
        for i in words.indices where carry != 0 {
            let (sum, overflow) = words[i].addingReportingOverflow(carry)
            words[i] = sum
            carry = overflow ? 1 : 0
        }
        if carry != 0 { words.append(carry) }
    }

    /// Floor division by 2^count.
    func shiftedRight(by count: Int) -> BigNatural {
        let wordShift = count / 64
        let bitShift = UInt64(count % 64)
        guard wordShift < words.count else { return BigNatural(words: [0]) }
        var result = [UInt64](repeating: 0, count: words.count - wordShift)
        for i in result.indices {
            let low = words[i + wordShift] >> bitShift
            let high = bitShift == 0 || i + wordShift + 1 >= words.count ? 0 : words[i + wordShift + 1] << (64 - bitShift)
            result[i] = low | high
        }
        return BigNatural(words: result)
    }

    /// The number scaled by a power of two to exactly 128 bits (the top one set):
    /// shifted up when narrower, truncated when wider.
    var leading128Bits: (high: UInt64, low: UInt64) {
        let width = bitWidth
        precondition(width > 0)
        if width > 128 {
            let top = shiftedRight(by: width - 128).words
            return (top[1], top[0])
        }
        let low = words[0]
        let high = words.count > 1 ? words[1] : 0
        let shift = 128 - width
        if shift >= 64 { return (low << UInt64(shift - 64), 0) }
        if shift == 0 { return (high, low) }
        return (high << UInt64(shift) | low >> UInt64(64 - shift), low << UInt64(shift))
    }
}
