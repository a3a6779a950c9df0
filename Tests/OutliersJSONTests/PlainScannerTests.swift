import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

/// The plain-body scanner agrees with jansson on `body`; false when it declines it.
private func scannerAgrees(_ body: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    body.withUnsafeBytes { raw in
        guard let fast = PlainBodyScanner.transcode(raw) else { return false }
        let slow = Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeWithJansson(raw) }
        #expect((try? slow.get()) == fast, "\(String(decoding: body, as: UTF8.self))", sourceLocation: sourceLocation)
        return true
    }
}

@Suite struct PlainScanner {
    @Test func plainScannerTakesTheCommonShapes() throws {
        let article = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples/metrics.json"))
        for body in [Array(article), Array("[1, 2, 100, 1, 3, 200, 1]".utf8), Array("{}".utf8), Array(#"{"metrics":null}"#.utf8),
                     Array(#" { "metrics" : [ { "value" : "NaN" , "name" : null } , { } ] } "#.utf8),
                     Array(" [ 5e-3, -0 ,1E+2]\n".utf8),
                     Array(#"[{"time":"2020-05-22T19:43:11.25+05:30","name":"CPU","value":-1.5E+2}]"#.utf8),
                     // Numbers in strings, as proto3 JSON allows for doubles, and NaN and the infinities.
                     Array(#"[{"value":"1.5"},{"value":"-0"},{"value":"1e-400"},{"value":"33.76105022382199"}]"#.utf8),
                     Array(#"["1", "2.5", -3, "NaN", "Infinity", "-Infinity", 1e2, "4.9406564584124654e-324"]"#.utf8),
                     Array(#"["NaN"]"#.utf8), Array(#"{"metrics":[{"value":"-2E+3","time":"2020-05-22T14:13:11.123456789-08:00"}]}"#.utf8),
                     Array("[0.000000000000000000000000000001, 123456789012345678901234567890, 1.7976931348623157e308, 2.2250738585072011e-308]".utf8)] {
            #expect(scannerAgrees(body), "the scanner declined \(String(decoding: body.prefix(80), as: UTF8.self))")
        }
    }

    @Test func plainScannerDeclinesWhatItDoesNotKnow() {
        for body in [#"[{"name":"\u0041"}]"#, #"[{"name":"é"}]"#, #"[{"value":"1.5 "}]"#,
                     #"[{"value":"1e400"}]"#, #"["-1e400"]"#, #"["01"]"#, #"["1."]"#, #"[" 1"]"#, #"["nan"]"#, #"["\u0031"]"#,
                     "[null]", #"["1",null]"#, #"[1,"x"]"#, "[-]", "[1e]", "[-01]", "[1.5e+]", #"[{"valu":1}]"#,
                     #"[{"value":1,"value":2}]"#, #"{"metrics":[],"metrics":[]}"#, "[1,]", "[01]", "[1.]", "[1e400]",
                     "[1] x", "5", #"{"metrics":[1]"#, "[[1]]", #"{"metrics":[1]}"#, #"[1,{"value":1}]"#, #"[{},1]"#, #"[{"time":"2020-02-30T00:00:00Z"}]"#, ""] {
            #expect(Array(body.utf8).withUnsafeBytes { PlainBodyScanner.transcode($0) } == nil, "\(body)")
        }
    }

    @Test func plainScannerNeverDisagreesWithJanssonOnRandomAndMutatedBodies() {
        var generator = SystemRandomNumberGenerator()
        var taken = 0
        for round in 0..<3000 {
            var request = randomRequestWithAnyValueBits(&generator)
            // Mostly ASCII names, so most bodies are plain.
            for i in request.metrics.indices where Int.random(in: 0..<4, using: &generator) > 0 {
                request.metrics[i].name = ["CPU", "", "mem"].randomElement(using: &generator)!
            }
            var body = JSONCodec.encodeRequest(request)
            if round % 2 == 1 {
                for _ in 0..<Int.random(in: 1...3, using: &generator) where !body.isEmpty {
                    let position = Int.random(in: 0..<body.count, using: &generator)
                    switch Int.random(in: 0...3, using: &generator) {
                    case 0: body[position] = Array(#"{}[],:" 0123456789.eE+-nul\"#.utf8).randomElement(using: &generator)!
                    case 1: body.remove(at: position)
                    case 2: body.insert(Array(" \n,:{}[]\"1".utf8).randomElement(using: &generator)!, at: position)
                    default: body[position] = UInt8.random(in: 0...255, using: &generator)
                    }
                }
            }
            if scannerAgrees(body) { taken += 1 }
        }
        // Half the bodies are mutated and some names need escapes: a few hundred plain ones remain.
        #expect(taken > 400, "the scanner took only \(taken) of 3000 bodies")
    }

    /// Bodies of metrics drawn from a few texts that share their starts in every way
    /// the scanner's template (the bytes up to a metric's value) and the writer's copy
    /// of its last entry (same time and name) can hit or miss: keys before and after
    /// the value, repeated keys after a matching start, null, zero and -0 values,
    /// whitespace, names that differ only in length or one byte, a time that changes.
    @Test func repeatedMetricStartsParseAsJanssonParsesThem() {
        let texts = [
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":1.5}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":0}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":-0}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":null}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value": 2.25 }"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":3,"name":"x"}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":4,"value":5}"#,
            #"{"time":"2020-05-22T14:13:12Z","name":"CPU","value":6}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPUs","value":7}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPV","value":8}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"","value":9}"#,
            #"{"time":"2020-05-22T14:13:11Z","value":10}"#,
            #"{"value":11,"time":"2020-05-22T14:13:11Z","name":"CPU"}"#,
            #"{"value":12,"time":"2020-05-22T14:13:11Z","time":"2020-05-22T14:13:11Z"}"#,
            #"{"value":"13","name":"CPU"}"#,
            #"{"value":"NaN"}"#,
            #"{"name":"CPU","time":"2020-05-22T14:13:11Z","value":14}"#,
            #"{"time":null,"name":"CPU","value":15}"#,
            #"{ "time":"2020-05-22T14:13:11Z","name":"CPU","value":16}"#,
            #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":1e400}"#,
            #"{}"#,
        ]
        var generator = SystemRandomNumberGenerator()
        var taken = 0
        for _ in 0..<2000 {
            let metrics = (0..<Int.random(in: 1...12, using: &generator)).map { _ in texts.randomElement(using: &generator)! }
            let body = Array(("[" + metrics.joined(separator: ",") + "]").utf8)
            let fast = body.withUnsafeBytes { PlainBodyScanner.transcode($0) }
            let slow = body.withUnsafeBytes { raw in try? JSONCodec.transcodeWithJansson(raw) }
            // Repeated keys and 1e400 are jansson's to refuse; the rest the scanner takes.
            let plain = metrics.allSatisfy { !$0.contains("1e400") && !$0.contains(#","name":"x""#)
                && !$0.contains(#"4,"value""#) && !$0.contains(#"12,"time""#) }
            #expect(plain == (fast != nil), "\(text(body))")
            if let fast {
                taken += 1
                #expect(fast == slow, "\(text(body))")
                // And what swift-protobuf serializes from the message jansson's path decodes.
                let serialized: [UInt8]? = try? decode(text(body)).serializedBytes()
                #expect(serialized == fast, "\(text(body))")
            }
        }
        #expect(taken > 100, "only \(taken) plain bodies of 2000")
    }
}
