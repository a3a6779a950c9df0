import OutliersJSON
import Testing
@testable import RESTGateway

// /detect's query parameters: grpc-gateway's field paths, short forms, and refusals
// that name the parameter.

private func overrides(_ parameters: [(String, String?)]) -> Result<DetectOptionsOverrides, DetectQuery.Refusal> {
    DetectQuery.overrides(parameters.map { (name: $0.0, value: $0.1) })
}

@Test func queryParametersSetTheOptions() {
    #expect(overrides([]) == .success(DetectOptionsOverrides()))
    #expect(overrides([("options.method", "MAD"), ("options.threshold", "3"), ("options.group_by_name", "true"),
                       ("options.details", "1")])
            == .success(DetectOptionsOverrides(method: .mad, threshold: 3, groupByName: true, details: true)))
    #expect(overrides([("method", "iqr"), ("threshold", "+1.5"), ("groupByName", "F"), ("details", nil)])
            == .success(DetectOptionsOverrides(method: .iqr, threshold: 1.5, groupByName: false, details: true)))
    #expect(overrides([("method", "0"), ("threshold", ".5")]) == .success(DetectOptionsOverrides(method: .zscore, threshold: 0.5)))
    #expect(overrides([("options.groupByName", "True")]) == .success(DetectOptionsOverrides(groupByName: true)))
    // Empty pieces (`?&&method=mad&`) are skipped; an empty name with a value is not.
    #expect(overrides([("", nil), ("method", "mad"), ("", nil)]) == .success(DetectOptionsOverrides(method: .mad)))
    #expect(overrides([("", "x")]) == .failure(DetectQuery.Refusal(message:
        #"unknown query parameter "": /detect takes method, threshold, group_by_name and details (each also as options.NAME)"#)))
}

@Test func badQueryParametersAreRefusedByName() {
    let cases: [([(String, String?)], String)] = [
        ([("metod", "mad")], #"unknown query parameter "metod": /detect takes method, threshold, group_by_name and details (each also as options.NAME)"#),
        ([("method", "median")], "query parameter method=median: unknown method (ZSCORE, MAD or IQR)"),
        ([("method", "3")], "query parameter method=3: unknown method (ZSCORE, MAD or IQR)"),
        ([("method", nil)], "query parameter method=: give a method: ZSCORE, MAD or IQR"),
        ([("threshold", "three")], "query parameter threshold=three: expected a number"),
        ([("threshold", "0x10")], "query parameter threshold=0x10: expected a number"),
        ([("threshold", "-1")], "query parameter threshold=-1: the threshold must be a finite number >= 0 (0 means the method's default)"),
        ([("threshold", "1e999")], "query parameter threshold=1e999: the threshold must be a finite number >= 0 (0 means the method's default)"),
        ([("details", "yes")], "query parameter details=yes: expected true or false"),
        ([("details", "")], "query parameter details=: expected true or false"),
        ([("method", "mad"), ("options.method", "iqr")], "query parameter options.method is given twice, as method and as options.method"),
        ([("details", "true"), ("details", "true")], "query parameter details is given twice"),
    ]
    for (parameters, message) in cases {
        #expect(overrides(parameters) == .failure(DetectQuery.Refusal(message: message)), "\(parameters)")
    }
}
