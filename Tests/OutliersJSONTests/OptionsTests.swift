import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

// The request's "options" and the answer's details, in proto3 JSON.

@Test func optionsAreReadInEveryFormProto3JSONAllows() throws {
    let cases: [(String, Pb_DetectOptions)] = [
        (#"{"metrics":[{"value":1}],"options":{"method":"MAD","threshold":3,"groupByName":true,"details":true}}"#,
         .with { $0.method = .mad; $0.threshold = 3; $0.groupByName = true; $0.details = true }),
        (#"{"options":{"method":"iqr","group_by_name":false},"metrics":[]}"#, .with { $0.method = .iqr }),
        (#"{"options":{"method":2,"threshold":"1.5"}}"#, .with { $0.method = .iqr; $0.threshold = 1.5 }),
        (#"{"options":{"method":null,"threshold":null,"details":null}}"#, Pb_DetectOptions()),
        (#"{"options":{}}"#, Pb_DetectOptions()),
        (#"{"options":{"threshold":"2.5e0"}}"#, .with { $0.threshold = 2.5 }),
    ]
    for (body, options) in cases {
        let request = try decode(body)
        #expect(request.hasOptions, "\(body)")
        #expect(try request.options.serializedBytes() as [UInt8] == (try options.serializedBytes() as [UInt8]), "\(body)")
        // The plain scanner declines on "options"; jansson writes what swift-protobuf would.
        try expectTranscodingAgrees(Array(body.utf8))
        #expect(try transcode(Array(body.utf8)) == (try request.serializedBytes() as [UInt8]))
    }
    // null options: no options field at all, so the article's path answers.
    #expect(try !decode(#"{"metrics":[],"options":null}"#).hasOptions)
    let plain = Array(#"{"metrics":[{"value":1}],"options":{"details":true}}"#.utf8)
    #expect(plain.withUnsafeBytes { PlainBodyScanner.transcode($0) } == nil)
}

@Test func badOptionsNameTheirPath() {
    let cases: [(String, String)] = [
        (#"{"options":[]}"#, #"options: expected an options object, got an array"#),
        (#"{"options":{"method":"median"}}"#, #"options.method: unknown method "median" (ZSCORE, MAD or IQR)"#),
        (#"{"options":{"method":7}}"#, #"options.method: unknown method number 7.0 (ZSCORE, MAD or IQR)"#),
        (#"{"options":{"method":true}}"#, #"options.method: expected a method name (ZSCORE, MAD or IQR), got a boolean"#),
        (#"{"options":{"threshold":"three"}}"#, #"options.threshold: invalid number string "three": expected a number, "NaN", "Infinity" or "-Infinity""#),
        (#"{"options":{"threshold":-1}}"#, #"options.threshold: -1.0 is not a finite number >= 0 (0 means the method's default)"#),
        (#"{"options":{"threshold":"NaN"}}"#, #"options.threshold: nan is not a finite number >= 0 (0 means the method's default)"#),
        (#"{"options":{"details":"yes"}}"#, #"options.details: expected true or false, got a string"#),
        (#"{"options":{"groupByName":1}}"#, #"options.groupByName: expected true or false, got a number"#),
        (#"{"options":{"group_by_name":true,"groupByName":true}}"#, #"options.groupByName: given twice, as "group_by_name" and as "groupByName""#),
        (#"{"options":{"window":3}}"#, #"options.window: unknown field "window" (options have method, threshold, groupByName and details)"#),
    ]
    for (body, message) in cases {
        #expect(decodeError(body)?.description == message, "\(body)")
    }
}

@Test func overridesReplaceTheBodysOptionsFieldByField() throws {
    func transcoded(_ body: String, _ overrides: DetectOptionsOverrides) throws -> Pb_OutliersRequest {
        let bytes = try Array(body.utf8).withUnsafeBytes { raw in
            try JSONCodec.transcodeRequest(raw, overrides: overrides)
        }
        return try Pb_OutliersRequest(serializedBytes: bytes)
    }
    // A plain body (the scanner's path) gains the options.
    let plain = try transcoded("[1,2,3]", DetectOptionsOverrides(method: .mad, details: true))
    #expect(plain.metrics.map(\.value) == [1, 2, 3])
    #expect(plain.options == .with { $0.method = .mad; $0.details = true })
    // The body's options keep what the overrides do not set, even a false they set.
    let merged = try transcoded(#"{"metrics":[{"value":1}],"options":{"method":"IQR","threshold":2,"details":true}}"#,
                                DetectOptionsOverrides(threshold: 4, details: false))
    #expect(merged.options == .with { $0.method = .iqr; $0.threshold = 4 })
    // None: the bytes are the body's alone.
    #expect(try transcoded("[1]", DetectOptionsOverrides()).hasOptions == false)
}

@Test func detailsAreEncodedWithEveryField() throws {
    let response = Pb_OutliersResponse.with {
        $0.indices = [0, 5]
        $0.outliers = [.with { $0.index = 0; $0.name = "a\"b"; $0.value = -3; $0.score = -.infinity },
                       .with { $0.index = 5; $0.name = ""; $0.value = 200; $0.score = 2.5 }]
        $0.series = [.with { $0.name = ""; $0.count = 7; $0.center = 2; $0.spread = 0; $0.lower = 2; $0.upper = 2 }]
    }
    let json = text(JSONCodec.encodeResponse(response))
    #expect(json == #"{"indices":[0,5],"outliers":[{"index":0,"name":"a\"b","value":-3.0,"score":"-Infinity"},{"index":5,"name":"","value":200.0,"score":2.5}],"series":[{"name":"","count":7,"center":2.0,"spread":0.0,"lower":2.0,"upper":2.0}]}"#)
    #expect(try Pb_OutliersResponse(jsonString: json) == response)
    // Without details, the article's answer exactly.
    #expect(text(JSONCodec.encodeResponse(Pb_OutliersResponse.with { $0.indices = [7, 113, 835] })) == #"{"indices":[7,113,835]}"#)
}
