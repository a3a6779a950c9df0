import Detection
import H2GRPC
import OutliersProto

/// `DetectOptions`: the method, its threshold, a series per name, and the details.
extension DetectService {
    /// The answer under `options`. `names` are the metrics' names (nil when neither
    /// grouping nor details need them: every value is then one series named "").
    static func answer(values: [Double], names: [String]?, options: Pb_DetectOptions) throws(RPCError) -> Pb_OutliersResponse {
        let method = try detectionMethod(options.method)
        let detector = try detector(method: method, threshold: options.threshold)
        // Checked here, over the whole request, so the error names the request's index
        // whatever series the value falls in.
        for (index, value) in values.enumerated() where !value.isFinite {
            throw RPCError(code: .invalidArgument,
                           message: "metrics[\(index)].value: \(NonFiniteValue(index: index, value: value).description)")
        }
        precondition(names == nil || names!.count == values.count, "one name per value")
        precondition(names != nil || !(options.groupByName || options.details), "grouping and details need the names")

        var response = Pb_OutliersResponse()
        for series in partition(values: values, names: names, byName: options.groupByName) {
            let analysis: SeriesAnalysis
            do {
                analysis = try detector.analyze(series.values, method: method)
            } catch {
                // Unreachable: every value was checked above.
                preconditionFailure("a non-finite value passed the check: \(error)")
            }
            for outlier in analysis.outliers {
                let index = series.indices.map { $0[Int(outlier.index)] } ?? outlier.index
                response.indices.append(index)
                if options.details {
                    response.outliers.append(Pb_Outlier.with {
                        $0.index = index
                        $0.name = names![Int(index)]
                        $0.value = outlier.value
                        $0.score = outlier.score
                    })
                }
            }
            if options.details {
                response.series.append(Pb_Series.with {
                    $0.name = series.name
                    $0.count = Int32(analysis.summary.count)
                    $0.center = analysis.summary.center
                    $0.spread = analysis.summary.spread
                    $0.lower = analysis.summary.lower
                    $0.upper = analysis.summary.upper
                })
            }
        }
        if options.groupByName {
            // Each series gave its outliers in order; the request's order interleaves them.
            response.indices.sort()
            response.outliers.sort { $0.index < $1.index }
        }
        return response
    }

    static func detectionMethod(_ method: Pb_DetectOptions.Method) throws(RPCError) -> DetectionMethod {
        switch method {
        case .zscore: return .zScore
        case .mad: return .medianAbsoluteDeviation
        case .iqr: return .interquartileRange
        case .UNRECOGNIZED(let number):
            throw RPCError(code: .invalidArgument,
                           message: "options.method: unknown method \(number) (ZSCORE = 0, MAD = 1, IQR = 2)")
        }
    }

    /// The method's detector: a threshold of 0 is the method's default.
    static func detector(method: DetectionMethod, threshold: Double) throws(RPCError) -> OutlierDetector {
        guard threshold.isFinite, threshold >= 0 else {
            throw RPCError(code: .invalidArgument,
                           message: "options.threshold: \(threshold) is not a finite number >= 0 (0 means the method's default)")
        }
        return OutlierDetector(threshold: threshold == 0 ? method.defaultThreshold : threshold)
    }

    /// One series of the request: its values, and where each came from (nil: the
    /// whole request, in order).
    struct Series {
        var name: String
        var values: [Double]
        var indices: [Int32]?
    }

    /// The whole request as one series named "", or one series per distinct name in
    /// the order each name first appears.
    static func partition(values: [Double], names: [String]?, byName: Bool) -> [Series] {
        guard byName, let names else { return [Series(name: "", values: values, indices: nil)] }
        var position: [String: Int] = [:]
        var series: [Series] = []
        for (index, name) in names.enumerated() {
            let slot: Int
            if let known = position[name] {
                slot = known
            } else {
                slot = series.count
                position[name] = slot
                series.append(Series(name: name, values: [], indices: []))
            }
            series[slot].values.append(values[index])
            series[slot].indices!.append(Int32(truncatingIfNeeded: index))
        }
        return series
    }
}
