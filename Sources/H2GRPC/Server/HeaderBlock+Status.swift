extension HeaderBlock {
    /// `grpc-status` and, when there is one, the percent-encoded `grpc-message`.
    mutating func addStatus(_ status: Status) {
        add("grpc-status", String(status.code.rawValue))
        if !status.message.isEmpty { add("grpc-message", GRPCMessageEncoding.encode(status.message)) }
    }
}
