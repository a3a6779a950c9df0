/// The `grpc-timeout` header (PROTOCOL-HTTP2.md): 1 to 8 ASCII digits and a unit,
/// H (hours), M (minutes), S (seconds), m (milli), u (micro) or n (nanoseconds).
public struct GRPCTimeout: Sendable, Hashable, CustomStringConvertible {
    /// The timeout in nanoseconds, saturated at Int64.max (99,999,999 hours overflows it).
    public let nanoseconds: Int64

    init(nanoseconds: Int64) {
        self.nanoseconds = max(0, nanoseconds)
    }

    init(_ duration: Duration) {
        self.init(nanoseconds: duration.saturatingNanoseconds)
    }

    public var duration: Duration { .nanoseconds(nanoseconds) }

    /// Parses a header value; nil when it breaks the grammar (the caller decides
    /// whether that is an error: servers answer INTERNAL, grpc-gateway 400).
    public init?(header: some StringProtocol) {
        let utf8 = Array(header.utf8)
        guard utf8.count >= 2, utf8.count <= 9 else { return nil }
        var value: Int64 = 0
        for byte in utf8.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        let unitNanoseconds: Int64
        switch utf8.last! {
        case UInt8(ascii: "H"): unitNanoseconds = 3_600_000_000_000
        case UInt8(ascii: "M"): unitNanoseconds = 60_000_000_000
        case UInt8(ascii: "S"): unitNanoseconds = 1_000_000_000
        case UInt8(ascii: "m"): unitNanoseconds = 1_000_000
        case UInt8(ascii: "u"): unitNanoseconds = 1_000
        case UInt8(ascii: "n"): unitNanoseconds = 1
        default: return nil
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: unitNanoseconds)
        nanoseconds = overflow ? .max : product
    }

    /// The shortest exact encoding with at most 8 digits, rounding up when the value
    /// needs a coarser unit (a deadline must never be shortened by encoding it).
    var headerValue: String {
        let units: [(Int64, Character)] = [(1, "n"), (1_000, "u"), (1_000_000, "m"),
                                           (1_000_000_000, "S"), (60_000_000_000, "M"),
                                           (3_600_000_000_000, "H")]
        for (size, unit) in units {
            let (quotient, remainder) = nanoseconds.quotientAndRemainder(dividingBy: size)
            let count = quotient + (remainder == 0 ? 0 : 1)
            if count <= 99_999_999 { return "\(count)\(unit)" }
        }
        return "99999999H"
    }

    public var description: String { headerValue }
}
