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
                     Array(#"[{"time":"2020-05-22T19:43:11.25+05:30","name":"CPU","value":-1.5E+2}]"#.utf8)] {
            #expect(scannerAgrees(body), "the scanner declined \(String(decoding: body.prefix(80), as: UTF8.self))")
        }
    }

    @Test func plainScannerDeclinesWhatItDoesNotKnow() {
        for body in [#"[{"name":"\u0041"}]"#, #"[{"name":"é"}]"#, #"[{"value":"1.5"}]"#, #"[{"valu":1}]"#,
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

    @Test func exactFastPathEqualsStrtod() {
        var generator = SystemRandomNumberGenerator()
        func check(_ text: String) {
            Array(text.utf8).withUnsafeBytes { raw in
                if let fast = PlainBodyScanner.Cursor.exactDouble(raw) {
                    #expect(fast.bitPattern == strtod(text, nil).bitPattern, "\(text)")
                }
            }
        }
        for text in ["0", "-0", "0.0", "1", "97.3", "33.76105022382199", "0.1", "123456789012345", "-0.000000000000000000001",
                     "9007199254740993", "1.7976931348623157", "0.30000000000000004"] { check(text) }
        for _ in 0..<200_000 {
            let value = Double.random(in: -1e6...1e6, using: &generator)
            check(value.description)
            check(String(format: "%.\(Int.random(in: 0...17, using: &generator))f", value))
        }
        // Digits beyond 2^53, or an exponent: left to strtod.
        #expect(Array("9007199254740993".utf8).withUnsafeBytes { PlainBodyScanner.Cursor.exactDouble($0) } == nil)
        #expect(Array("33.76105022382199".utf8).withUnsafeBytes { PlainBodyScanner.Cursor.exactDouble($0) } == 33.76105022382199)
        #expect(Array("1e5".utf8).withUnsafeBytes { PlainBodyScanner.Cursor.exactDouble($0) } == nil)
    }
}
