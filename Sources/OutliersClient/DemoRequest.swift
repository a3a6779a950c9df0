import Detection
import OutliersProto
import SwiftProtobuf

/// The article's demo request: its Go client's `dummyData` — 1000 "CPU" metrics
/// with values in [0, 40) and spikes at 7, 113 and 835, all stamped
/// 2020-05-22T14:13:11Z (the article's loop discards the result of `t.Add`, so
/// every metric carries the same time).
public enum DemoRequest {
    public static let timestamp = Google_Protobuf_Timestamp(seconds: 1_590_156_791)

    public static func make(count: Int = 1000, seed: UInt64 = DemoData.defaultSeed,
                            distinctTimestamps: Bool = false) -> Pb_OutliersRequest {
        var request = Pb_OutliersRequest()
        request.metrics = DemoData.values(count: count, seed: seed).enumerated().map { index, value in
            var metric = Pb_Metric()
            metric.time = distinctTimestamps
                ? Google_Protobuf_Timestamp(seconds: timestamp.seconds + Int64(index)) : timestamp
            metric.name = "CPU"
            metric.value = value
            return metric
        }
        return request
    }
}
