import OutliersProto

/// Options given outside the body (the gateway's query parameters): each field set
/// here replaces the body's, the others keep it, as grpc-gateway lays query
/// parameters over the body's message.
public struct DetectOptionsOverrides: Sendable, Equatable {
    public var method: Pb_DetectOptions.Method?
    public var threshold: Double?
    public var groupByName: Bool?
    public var details: Bool?

    public init(method: Pb_DetectOptions.Method? = nil, threshold: Double? = nil,
                groupByName: Bool? = nil, details: Bool? = nil) {
        self.method = method
        self.threshold = threshold
        self.groupByName = groupByName
        self.details = details
    }

    public var isEmpty: Bool { method == nil && threshold == nil && groupByName == nil && details == nil }

    /// `options` with these fields laid over it.
    public func applied(to options: Pb_DetectOptions) -> Pb_DetectOptions {
        var options = options
        if let method { options.method = method }
        if let threshold { options.threshold = threshold }
        if let groupByName { options.groupByName = groupByName }
        if let details { options.details = details }
        return options
    }
}
