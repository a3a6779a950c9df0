import Glibc

/// A failed system call, with errno's text.
public enum SystemError: Error, CustomStringConvertible {
    case call(String, Int32)
    case address(String)

    public var description: String {
        switch self {
        case .call(let name, let code): return "\(name): \(String(cString: strerror(code)))"
        case .address(let text): return text
        }
    }
}
