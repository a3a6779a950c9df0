/// The contract's gRPC method paths, as they travel in `:path`: written once here
/// and used by the services that serve them and the clients that call them.
public enum MethodPath {

    /// pb.Outliers/Detect (Protos/outliers.proto).
    public static let detect = "/pb.Outliers/Detect"
    /// grpc.health.v1.Health (Protos/grpc/health/v1/health.proto).
    public static let healthCheck = "/grpc.health.v1.Health/Check"
    public static let healthWatch = "/grpc.health.v1.Health/Watch"
    /// grpc.reflection, both versions (identical on the wire).
    public static let reflectionV1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    public static let reflectionV1Alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
}
