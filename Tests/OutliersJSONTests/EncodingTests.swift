import Detection
import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

@Suite struct Encoding {
    @Test func responses() {
        #expect(text(JSONCodec.encodeResponse(indices: [7, 113, 835])) == #"{"indices":[7,113,835]}"#)
        #expect(text(JSONCodec.encodeResponse(indices: [5])) == #"{"indices":[5]}"#)
        #expect(text(JSONCodec.encodeResponse(indices: [])) == #"{"indices":[]}"#)
        #expect(text(JSONCodec.encodeResponse(indices: [0, 9, 10, 99, 100, .max, .min, -1]))
                == #"{"indices":[0,9,10,99,100,2147483647,-2147483648,-1]}"#)
        var response = Pb_OutliersResponse()
        #expect(text(JSONCodec.encodeResponse(response)) == #"{"indices":[]}"#)
        response.indices = [2, 5]
        #expect(text(JSONCodec.encodeResponse(response)) == #"{"indices":[2,5]}"#)
    }

    @Test func responsesReadBackWithSwiftProtobuf() throws {
        var generator = SplitMix64(seed: 3)
        for _ in 0..<200 {
            let indices = (0..<Int.random(in: 0...20, using: &generator)).map { _ in Int32.random(in: .min ... .max, using: &generator) }
            #expect(try Pb_OutliersResponse(jsonUTF8Bytes: JSONCodec.encodeResponse(indices: indices)).indices == indices)
        }
    }

    @Test func errors() throws {
        #expect(text(JSONCodec.encodeError(code: 3, message: "bad")) == #"{"code":3,"message":"bad","details":[]}"#)
        #expect(text(JSONCodec.encodeError(code: 14, message: "")) == #"{"code":14,"message":"","details":[]}"#)
        #expect(text(JSONCodec.encodeError(code: 3, message: "a\"b\\c\nd\u{1}\u{1f}\u{7f}é"))
                == #"{"code":3,"message":"a\"b\\c\nd\u0001\u001f"# + "\u{7f}é\",\"details\":[]}")
        let messages = [
            "line\n\"quoted\" \\ tab\t \u{1} é 值 🙂 \u{20000}",
            String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }),
            "/ \u{2028} \u{2029} \u{feff} <script>",
            #"metrics[3].value: expected a number or one of "NaN", "Infinity", "-Infinity", got an object"#,
            "",
        ]
        for (code, message) in zip([3, 13, 0, -1, 16], messages) {
            let body = JSONCodec.encodeError(code: code, message: message)
            #expect(!body.contains(where: { $0 < 0x20 }))
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            #expect(parsed["code"] as? Int == code)
            #expect(parsed["message"] as? String == message)
            #expect((parsed["details"] as? [Any])?.isEmpty == true)
            #expect(parsed.count == 3)
        }
    }

    @Test func requestsInTheirExactForm() {
        #expect(text(JSONCodec.encodeRequest(AcceptedShapes.expected))
                == #"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3}]}"#)
        #expect(text(JSONCodec.encodeRequest(Pb_OutliersRequest())) == #"{"metrics":[]}"#)
        // Fields at their default are left out, as proto3 JSON writes them; -0.0 is not a default.
        #expect(text(JSONCodec.encodeRequest(request([metric(), metric(value: -0.0), metric(value: 2)])))
                == #"{"metrics":[{},{"value":-0.0},{"value":2.0}]}"#)
        #expect(text(JSONCodec.encodeRequest(request([metric(value: .nan), metric(value: .infinity), metric(value: -.infinity)])))
                == #"{"metrics":[{"value":"NaN"},{"value":"Infinity"},{"value":"-Infinity"}]}"#)
        #expect(text(JSONCodec.encodeRequest(request([metric(time: (0, 0)), metric(time: (-1, 500_000_000)), metric(time: (1, 1000)),
                                                           metric(time: (2, 7))])))
                == #"{"metrics":[{"time":"1970-01-01T00:00:00Z"},{"time":"1969-12-31T23:59:59.500Z"},"#
                + #"{"time":"1970-01-01T00:00:01.000001Z"},{"time":"1970-01-01T00:00:02.000000007Z"}]}"#)
        #expect(text(JSONCodec.encodeRequest(request([metric(name: "a\"b\u{0}", value: 1e20), metric(value: 1e-7), metric(value: .leastNonzeroMagnitude)])))
                == #"{"metrics":[{"name":"a\"b\u0000","value":1e+20},{"value":1e-07},{"value":5e-324}]}"#)
    }

    @Test func doublesAreShortestRoundTripJSONNumbers() throws {
        var generator = SplitMix64(seed: 11)
        var values: [Double] = [0, -0.0, 1, -1, 0.1, 97.3, 1e20, 1e21, 1e-7, 1.2345678901234568e17, .greatestFiniteMagnitude,
                                -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude, .ulpOfOne, 1 / 3]
        values += (0..<3000).map { _ in
            var bits: UInt64
            repeat { bits = UInt64.random(in: 0 ... .max, using: &generator) } while !Double(bitPattern: bits).isFinite
            return Double(bitPattern: bits)
        }
        for value in values {
            var bytes: [UInt8] = []
            JSONCodec.appendDouble(value, to: &bytes)
            let written = text(bytes)
            #expect(JSONCodec.isJSONNumber(written), "\(written)")
            #expect(written == value.description)
            // jansson reads it back to the same bits.
            let back = try decode("[\(written)]").metrics[0].value
            #expect(back.bitPattern == value.bitPattern, "\(written)")
        }
    }

    @Test func timestampsOutsideTheRangeAreWrittenAsTheNearestOneThatReadsBack() throws {
        let odd = request([metric(time: (RFC3339.maximumSeconds + 100, 0)), metric(time: (.min, 0)), metric(time: (5, -1)),
                           metric(time: (5, 2_000_000_000))])
        let body = JSONCodec.encodeRequest(odd)
        let back = try JSONCodec.decodeRequest(body)
        #expect(back.metrics.map(\.time.seconds) == [RFC3339.maximumSeconds, RFC3339.minimumSeconds, 4, 7])
        #expect(back.metrics.map(\.time.nanos) == [999_999_999, 0, 999_999_999, 0])
        #expect(try Pb_OutliersRequest(jsonUTF8Bytes: body).metrics.map(\.time) == back.metrics.map(\.time))
    }

    @Test func responsesAndErrors() throws {
        #expect(String(decoding: JSONCodec.encodeResponse(indices: [7, 113, 835]), as: UTF8.self) == #"{"indices":[7,113,835]}"#)
        #expect(String(decoding: JSONCodec.encodeResponse(indices: []), as: UTF8.self) == #"{"indices":[]}"#)
        let message = "line\n\"quoted\" \\ tab\t \u{1} é 值"
        let body = JSONCodec.encodeError(code: 3, message: message)
        let parsed = try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any]
        #expect(parsed["code"] as? Int == 3)
        #expect(parsed["message"] as? String == message)
        #expect((parsed["details"] as? [Any])?.isEmpty == true)
    }
}
