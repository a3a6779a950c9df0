/// The field numbers of `pb.OutliersRequest`, `pb.Metric` (Protos/outliers.proto) and
/// `google.protobuf.Timestamp`, and the wire types they travel as: written once here
/// for the hand-written wire code, the reader `OutliersRequestValues` and OutliersJSON's
/// writer `ProtobufMetricWriter`. Hand-written (scripts/generate-protos does not make
/// it). Inlinable computed properties, so that the hot loops see constants.
public enum OutliersWire {
    /// The protobuf wire types these fields use (and 5, which a reader must skip).
    public enum WireType {
        @inlinable public static var varint: Int { 0 }
        @inlinable public static var fixed64: Int { 1 }
        @inlinable public static var lengthDelimited: Int { 2 }
        @inlinable public static var fixed32: Int { 5 }
    }

    /// `repeated Metric metrics = 1; DetectOptions options = 2;`
    public enum OutliersRequest {
        @inlinable public static var metrics: Int { 1 }
        @inlinable public static var options: Int { 2 }
    }

    /// `Timestamp time = 1; string name = 2; double value = 3;`
    public enum Metric {
        @inlinable public static var time: Int { 1 }
        @inlinable public static var name: Int { 2 }
        @inlinable public static var value: Int { 3 }
    }

    /// `int64 seconds = 1; int32 nanos = 2;`
    public enum Timestamp {
        @inlinable public static var seconds: Int { 1 }
        @inlinable public static var nanos: Int { 2 }
    }

    /// A field's key as one byte (field number << 3 | wire type): every field above
    /// has a number below 16, so its key is one byte.
    @inlinable public static func key(_ field: Int, _ wireType: Int) -> UInt8 {
        UInt8(field << 3 | wireType)
    }
}
