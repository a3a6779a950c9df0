/// What our gRPC clients (the gateway, `outliers detect`) call themselves in `user-agent`.
public enum UserAgent {
    public static let outliersClient = "outliers-swift-grpc/0.1"
}
