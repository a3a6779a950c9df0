import Glibc
import Testing
@testable import OutliersJSON

/// DecimalParser against glibc's strtod, bit for bit.
@Suite struct DecimalParserAgainstStrtod {
    /// The text at `buffer` (count bytes, NUL after) parses to strtod's double, or both
    /// refuse it (DecimalParser refuses what is not JSON's number grammar, which strtod
    /// may still read: the callers here write only JSON numbers).
    private static func agrees(_ buffer: UnsafeMutablePointer<CChar>, _ count: Int) -> Bool {
        let bytes = UnsafeRawBufferPointer(start: buffer, count: count)
        guard let parsed = DecimalParser.parse(bytes) else { return false }
        return parsed.bitPattern == strtod(buffer, nil).bitPattern
    }

    private static func check(_ text: String) -> Bool {
        var bytes = Array(text.utf8CString)
        return bytes.withUnsafeMutableBufferPointer { agrees($0.baseAddress!, $0.count - 1) }
    }

    /// xorshift64*: fast in a debug build, and a seed to repeat a failure with.
    private struct FastRandom {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    }

    @Test func adversarialNumbers() {
        let cases = [
            "0", "-0", "0.0", "0e0", "-0.0e-999", "0e999999999999999999999", "1", "-1", "97.3", "33.76105022382199",
            // 2^-1074, just above and at half of it, below, and the largest subnormal and smallest normals.
            "4.9406564584124654e-324", "5e-324", "2.4703282292062328e-324", "2.4703282292062327e-324", "2.47032822920623272e-324",
            "1e-324", "3e-324", "2.2250738585072009e-308", "2.2250738585072011e-308", "2.2250738585072012e-308",
            "2.2250738585072014e-308", "1e-310",
            // DBL_MAX, the halfway point above it (rounds to infinity), overflow and underflow.
            "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "179769313486231580793728971405301e276",
            "1e308", "1e309", "1e400", "-1e400", "1e-400", "-1e-400", "1e99999999999999999999", "1e-99999999999999999999",
            // Halfway between doubles: ties to even.
            "9007199254740993", "9007199254740995", "9007199254740992.5", "4503599627370496.5", "4503599627370497.5",
            "18014398509481993", "18014398509481994", "18014398509481995", "1e23", "8.98846567431158e307",
            "7.2057594037927933e16", "9223372036854775807", "9223372036854775808", "18446744073709551615",
            "18446744073709551616", "1844674407370955161", "9999999999999999999", "10000000000000000000",
            "99999999999999999999", "0.1", "0.2", "0.3", "0.30000000000000004", "123456789012345678e-5",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124",
            "1.00000000000000011102230246251565404236316680908203126",
            "2.2250738585072011360574097967091319759348195463516456480234261097248222220210769455165295239081350879141491589130396211068700864386945946455276572074078206217433799881410632673292535522868813721490129811224514518898490572223072852551331557550159143974763979834118019993239625482890171070818506906306666559949382757725720157630626906633326475653000092458883164330377797918696120494973903778297049050510806099407302629371289589500035837999672072543043602840788957717961509455167482434710307026091446215722898802581825451803257070188608721131280795122334262883686223215037756666225039825343359745688844239002654981983854879482922068947216898310996983658468140228542433306603398508864458040010349339704275671864433837704860378616227717385456230658746790140867233276367187499e-308",
            "0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
            "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000e-90",
            "0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                + "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                + "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000049406564584124654",
            "1" + String(repeating: "0", count: 400) + "e-400", "0." + String(repeating: "0", count: 1000) + "1e1001",
        ]
        var failures: [String] = []
        for text in cases where !Self.check(text) { failures.append(text) }
        for text in cases where !Self.check("-" + text) && !text.hasPrefix("-") { failures.append("-" + text) }
        #expect(failures.isEmpty, "differ from strtod: \(failures)")
    }

    @Test func refusesWhatIsNotJSONsNumberGrammar() {
        for text in ["", "-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1.5x", "0x10", "inf", "NaN", "1 ", " 1", "--1", "1..2", "1e1.5"] {
            #expect(Array(text.utf8).withUnsafeBytes { DecimalParser.parse($0) } == nil, "\(text)")
        }
    }

    @Test func thePowerTableHoldsFiveToTheQ() {
        // 5^0 … 5^27 exactly, normalized to 128 bits; 5^-1 as 2^130 / 5 + 1 to 128 bits.
        var power: UInt64 = 1
        for q in 0...27 {
            let entry = DecimalParser.powersOfFive + 2 * (q - DecimalParser.smallestPowerOfFive)
            #expect(entry[0] == power << power.leadingZeroBitCount && entry[1] == 0, "5^\(q)")
            if q < 27 { power *= 5 }
        }
        let minusOne = DecimalParser.powersOfFive + 2 * (-1 - DecimalParser.smallestPowerOfFive)
        #expect(minusOne[0] == 0xCCCC_CCCC_CCCC_CCCC && minusOne[1] == 0xCCCC_CCCC_CCCC_CCCD)
    }

    /// Ten million numbers, each parsed by both and compared bit for bit: doubles of
    /// random bits as %.17g (shortest round trip and more) and %.15g, random digit
    /// strings of 1 to 25 digits with a point anywhere and exponents across the range,
    /// exact ties between doubles, subnormals, and mantissas of 19 and 20 digits.
    @Test func tenMillionNumbersAgreeWithStrtod() {
        var random = FastRandom(state: UInt64.random(in: 1...UInt64.max))
        let seed = random.state
        var failures: [String] = []
        var checked = 0
        let total = 10_000_000
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: 128)
        defer { buffer.deallocate() }
        while checked < total {
            var count = 0
            switch checked % 8 {
            case 0, 1:
                // Any finite double, by its bits.
                var value = Double(bitPattern: random.next())
                if !value.isFinite { value = Double(bitPattern: random.next() >> 2) }
                count = Int(withVaList([value]) { vsnprintf(buffer, 128, checked % 8 == 0 ? "%.17g" : "%.15g", $0) })
            case 2:
                // Subnormals and the smallest normals.
                let value = Double(bitPattern: random.next() >> (11 + UInt64(random.below(3))))
                count = Int(withVaList([value]) { vsnprintf(buffer, 128, "%.17g", $0) })
            case 3:
                // An odd integer of 54 bits: exactly halfway between two doubles; or one
                // of 53 bits plus .5, halfway between two neighbours spaced by 1.
                if random.below(2) == 0 {
                    let tie = (1 << 53) | random.next() & ((1 << 53) - 1) | 1
                    count = Int(withVaList([tie]) { vsnprintf(buffer, 128, "%llu", $0) })
                } else {
                    let tie = (1 << 52) | random.next() & ((1 << 52) - 1)
                    count = Int(withVaList([tie]) { vsnprintf(buffer, 128, "%llu.5", $0) })
                }
            default:
                // Digits: 1 to 25 of them (some of 19 and 20, the 64-bit edge), a point
                // anywhere in them, an exponent within ±350.
                let digits = checked % 8 == 4 ? 19 + random.below(2) : 1 + random.below(25)
                let point = random.below(digits + 1)
                if random.below(4) == 0 { buffer[count] = 0x2D; count += 1 }
                // No leading zero before other digits (JSON): a point right after a 0.
                let first = random.below(10)
                let pointAt = first == 0 ? 1 : point
                for i in 0..<digits {
                    if i == pointAt && i > 0 { buffer[count] = 0x2E; count += 1 }
                    let digit = i == 0 ? first : random.below(10)
                    buffer[count] = CChar(0x30 + digit)
                    count += 1
                }
                if random.below(3) > 0 {
                    let exponent = random.below(701) - 350
                    count += Int(withVaList([exponent]) { vsnprintf(buffer + count, 128 - count, "e%d", $0) })
                }
                buffer[count] = 0
            }
            if !Self.agrees(buffer, count) && failures.count < 20 {
                failures.append(String(cString: buffer))
            }
            checked += 1
        }
        #expect(checked == total)
        #expect(failures.isEmpty, "differ from strtod (seed \(seed)): \(failures)")
    }
}
