import Foundation
import OutliersJSON
import OutliersProto
import SwiftProtobuf

/// The two messages of the contract, as the bench compares them.
public enum MessageKind: String, Sendable, CaseIterable {
    case request, response
}

public enum BenchOperation: String, Sendable, CaseIterable {
    case encode, decode
}

/// A plain codec, or one of the gateway's whole conversions (one direction only).
public enum CodecRole: String, Sendable {
    case codec
    case gateway
}

/// A message the bench can check a round trip of.
public protocol BenchMessage: Sendable {
    static var kind: MessageKind { get }
    /// Metrics in a request, indices in a response.
    var itemCount: Int { get }
    /// Where `actual` differs from `expected` (first difference only), or nil when equal.
    static func firstDifference(expected: Self, actual: Self) -> String?
}

/// One way of putting a message on the wire and reading it back.
///
/// The bench times `encode` and `decode` — exactly the functions the round-trip
/// check runs first — on the codec's own in-memory form (`Native`): the pb message
/// for the protobuf-based codecs, a Codable struct for Foundation. Turning the pb
/// message into that form (`prepare`) and back (`message(from:)`) is not timed.
public protocol BenchCodec<Message> {
    associatedtype Message: BenchMessage
    associatedtype Native
    associatedtype Wire: Collection where Wire.Element == UInt8

    /// Short, stable name (`protobuf`, `json-foundation`, …) for JSON and CSV.
    var id: String { get }
    /// What a reader sees in the table.
    var title: String { get }
    var role: CodecRole { get }
    /// Operations that exist but are not timed, with the reason (shown in the notes).
    var untimed: [BenchOperation: String] { get }

    /// The codec's input form; throws `NotApplicable` when it cannot represent the message.
    func prepare(_ message: Message) throws -> Native
    func encode(_ native: Native) throws -> Wire
    func decode(_ wire: Wire) throws -> Native
    func message(from native: Native) throws -> Message
}

extension BenchCodec {
    public var role: CodecRole { .codec }
    public var untimed: [BenchOperation: String] { [:] }
}

/// A codec that cannot carry this input (said in the report; the run goes on).
public struct NotApplicable: Error, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

// MARK: - Round-trip comparison

extension Pb_OutliersRequest: BenchMessage {
    public static var kind: MessageKind { .request }
    public var itemCount: Int { metrics.count }

    /// Times (presence, seconds, nanos), names and values, compared exactly: values
    /// by bit pattern (so -0.0 differs from 0.0), except that any NaN matches any NaN
    /// (text formats carry no NaN payload).
    public static func firstDifference(expected: Self, actual: Self) -> String? {
        guard expected.metrics.count == actual.metrics.count else {
            return "has \(actual.metrics.count) metrics, expected \(expected.metrics.count)"
        }
        for (index, (want, got)) in zip(expected.metrics, actual.metrics).enumerated() {
            let path = "metrics[\(index)]"
            if want.hasTime != got.hasTime {
                return "\(path).time is \(got.hasTime ? "set" : "missing"), expected \(want.hasTime ? "set" : "missing")"
            }
            if want.time.seconds != got.time.seconds || want.time.nanos != got.time.nanos {
                return "\(path).time is \(got.time.seconds)s \(got.time.nanos)ns, expected \(want.time.seconds)s \(want.time.nanos)ns"
            }
            if want.name != got.name {
                return "\(path).name is \(String(reflecting: got.name)), expected \(String(reflecting: want.name))"
            }
            let same = want.value.bitPattern == got.value.bitPattern || (want.value.isNaN && got.value.isNaN)
            if !same {
                return "\(path).value is \(got.value) (bits 0x\(String(got.value.bitPattern, radix: 16))), "
                    + "expected \(want.value) (bits 0x\(String(want.value.bitPattern, radix: 16)))"
            }
        }
        return nil
    }
}

extension Pb_OutliersResponse: BenchMessage {
    public static var kind: MessageKind { .response }
    public var itemCount: Int { indices.count }

    public static func firstDifference(expected: Self, actual: Self) -> String? {
        expected.indices == actual.indices ? nil : "indices are \(actual.indices), expected \(expected.indices)"
    }
}

// MARK: - Type erasure

/// A codec ready to be prepared for a message: the check runs, then the timed closures.
public struct AnyBenchCodec<Message: BenchMessage> {
    public let id: String
    public let title: String
    public let role: CodecRole
    let makeCase: (Message) throws -> PreparedOutcome

    public init<Codec: BenchCodec>(_ codec: Codec) where Codec.Message == Message {
        id = codec.id
        title = codec.title
        role = codec.role
        makeCase = { message in try prepareCase(codec, message) }
    }
}

enum PreparedOutcome {
    case ready(PreparedCase)
    case skipped(String)
}

/// One codec and one message after the round-trip check: the wire bytes and the
/// closures to time.
struct PreparedCase {
    var wire: [UInt8]
    var gzip: [UInt8]
    var operations: [(BenchOperation, () throws -> Void)]
    var notes: [String]
}

/// Encodes, decodes and compares with the input before anything is timed; a codec
/// that loses anything fails the run (`BenchError.roundTrip`).
private func prepareCase<Codec: BenchCodec>(_ codec: Codec, _ message: Codec.Message) throws -> PreparedOutcome {
    let metrics = message.itemCount
    func failure(_ step: String, _ error: any Error) -> BenchError {
        .codecFailed(codec: codec.id, message: Codec.Message.kind, items: metrics, detail: "\(step): \(error)")
    }
    let native: Codec.Native
    do {
        native = try codec.prepare(message)
    } catch let error as NotApplicable {
        return .skipped(error.reason)
    } catch {
        throw failure("prepare", error)
    }
    let wire: Codec.Wire
    let decoded: Codec.Message
    do { wire = try codec.encode(native) } catch { throw failure("encode", error) }
    do { decoded = try codec.message(from: try codec.decode(wire)) } catch { throw failure("decode of its own output", error) }
    if let difference = Codec.Message.firstDifference(expected: message, actual: decoded) {
        throw BenchError.roundTrip(codec: codec.id, title: codec.title, message: Codec.Message.kind,
                                   items: metrics, detail: difference)
    }
    let bytes = Array(wire)
    let again: [UInt8]
    do { again = Array(try codec.encode(native)) } catch { throw failure("second encode", error) }
    // Foundation's JSONEncoder writes keys in a different order each time (its keyed
    // containers are dictionaries), so only the size has to be stable.
    guard again.count == bytes.count else {
        throw BenchError.roundTrip(codec: codec.id, title: codec.title, message: Codec.Message.kind, items: metrics,
                                   detail: "encoding the same message twice gave \(again.count) and \(bytes.count) bytes")
    }
    let gzip: [UInt8]
    do {
        gzip = try Gzip.compress(bytes)
        guard try Gzip.decompress(gzip) == bytes else { throw Gzip.Failure(description: "gzip did not round-trip") }
    } catch {
        throw failure("gzip", error)
    }
    var operations: [(BenchOperation, () throws -> Void)] = []
    var notes: [String] = []
    for operation in BenchOperation.allCases {
        if let reason = codec.untimed[operation] {
            notes.append(reason)
            continue
        }
        switch operation {
        case .encode: operations.append((.encode, { blackHole(try codec.encode(native)) }))
        case .decode: operations.append((.decode, { blackHole(try codec.decode(wire)) }))
        }
    }
    return .ready(PreparedCase(wire: bytes, gzip: gzip, operations: operations, notes: notes))
}

// MARK: - The codecs

/// The codecs `outliers bench` compares, in table order (protobuf first: the ratios are to it).
public enum Codecs {
    public static var request: [AnyBenchCodec<Pb_OutliersRequest>] {
        [AnyBenchCodec(ProtobufBinary<Pb_OutliersRequest>()),
         AnyBenchCodec(OutliersJSONRequest()),
         AnyBenchCodec(SwiftProtobufJSON<Pb_OutliersRequest>()),
         AnyBenchCodec(FoundationJSONRequest()),
         AnyBenchCodec(GatewayRequest())]
    }

    public static var response: [AnyBenchCodec<Pb_OutliersResponse>] {
        [AnyBenchCodec(ProtobufBinary<Pb_OutliersResponse>()),
         AnyBenchCodec(OutliersJSONResponse()),
         AnyBenchCodec(SwiftProtobufJSON<Pb_OutliersResponse>()),
         AnyBenchCodec(FoundationJSONResponse()),
         AnyBenchCodec(GatewayResponse())]
    }

    /// The codec every ratio is taken against.
    public static let baselineID = "protobuf"
    /// The JSON codec the summary line compares protobuf with: the Go encoding/json
    /// equivalent, or (when it cannot carry the input) the next one that can.
    public static let summaryJSONIDs = ["json-foundation", "json-swift-protobuf", "json-outliers"]
}

/// Protobuf binary through swift-protobuf: `serializedBytes()` / `init(serializedBytes:)`.
public struct ProtobufBinary<Message: BenchMessage & SwiftProtobuf.Message>: BenchCodec {
    public init() {}
    public var id: String { "protobuf" }
    public var title: String { "protobuf binary (swift-protobuf)" }
    public func prepare(_ message: Message) throws -> Message { message }
    public func encode(_ native: Message) throws -> [UInt8] { try native.serializedBytes() }
    public func decode(_ wire: [UInt8]) throws -> Message { try Message(serializedBytes: wire) }
    public func message(from native: Message) throws -> Message { native }
}

/// proto3 JSON through swift-protobuf: `jsonUTF8Bytes()` / `init(jsonUTF8Bytes:)`.
public struct SwiftProtobufJSON<Message: BenchMessage & SwiftProtobuf.Message>: BenchCodec {
    public init() {}
    public var id: String { "json-swift-protobuf" }
    public var title: String { "proto3 JSON (swift-protobuf)" }
    public func prepare(_ message: Message) throws -> Message { message }
    public func encode(_ native: Message) throws -> [UInt8] { try native.jsonUTF8Bytes() }
    public func decode(_ wire: [UInt8]) throws -> Message { try Message(jsonUTF8Bytes: wire) }
    public func message(from native: Message) throws -> Message { native }
}

/// proto3 JSON through the gateway's codec: `JSONCodec.encodeRequest` (a direct
/// writer) and `JSONCodec.decodeRequest` (jansson).
public struct OutliersJSONRequest: BenchCodec {
    public init() {}
    public var id: String { "json-outliers" }
    public var title: String { "proto3 JSON (OutliersJSON/jansson)" }
    public func prepare(_ message: Pb_OutliersRequest) throws -> Pb_OutliersRequest { message }
    public func encode(_ native: Pb_OutliersRequest) throws -> [UInt8] { JSONCodec.encodeRequest(native) }
    public func decode(_ wire: [UInt8]) throws -> Pb_OutliersRequest { try JSONCodec.decodeRequest(wire) }
    public func message(from native: Pb_OutliersRequest) throws -> Pb_OutliersRequest { native }
}

/// `{"indices":[…]}` through `JSONCodec.encodeResponse`. OutliersJSON has no
/// response decoder (the gateway never reads one), so decoding is not timed; the
/// output is checked by decoding it with swift-protobuf's JSON decoder.
public struct OutliersJSONResponse: BenchCodec {
    public init() {}
    public var id: String { "json-outliers" }
    public var title: String { "proto3 JSON (OutliersJSON/jansson)" }
    public var untimed: [BenchOperation: String] {
        [.decode: "OutliersJSON has no response decoder (the gateway only writes responses): its decode is not timed; its output is checked with swift-protobuf's JSON decoder."]
    }
    public func prepare(_ message: Pb_OutliersResponse) throws -> Pb_OutliersResponse { message }
    public func encode(_ native: Pb_OutliersResponse) throws -> [UInt8] { JSONCodec.encodeResponse(native) }
    public func decode(_ wire: [UInt8]) throws -> Pb_OutliersResponse { try Pb_OutliersResponse(jsonUTF8Bytes: wire) }
    public func message(from native: Pb_OutliersResponse) throws -> Pb_OutliersResponse { native }
}

/// The gateway's request path: a JSON body straight to protobuf bytes
/// (`JSONCodec.transcodeRequest`), timed as this row's decode. Its "encode"
/// (protobuf bytes → JSON body, for the check) is not something the gateway does.
public struct GatewayRequest: BenchCodec {
    public init() {}
    public var id: String { "gateway" }
    public var title: String { "gateway: JSON body → protobuf bytes" }
    public var role: CodecRole { .gateway }
    public var untimed: [BenchOperation: String] {
        [.encode: "The gateway row for requests times one conversion, JSON body → protobuf bytes (JSONCodec.transcodeRequest), shown as its decode; its bytes are the JSON body's."]
    }
    public func prepare(_ message: Pb_OutliersRequest) throws -> [UInt8] { try message.serializedBytes() }
    public func encode(_ native: [UInt8]) throws -> [UInt8] {
        JSONCodec.encodeRequest(try Pb_OutliersRequest(serializedBytes: native))
    }
    public func decode(_ wire: [UInt8]) throws -> [UInt8] {
        try wire.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw) }
    }
    public func message(from native: [UInt8]) throws -> Pb_OutliersRequest { try Pb_OutliersRequest(serializedBytes: native) }
}

/// The gateway's response path: protobuf bytes from the backend to the JSON body
/// (`Pb_OutliersResponse(serializedBytes:)` then `JSONCodec.encodeResponse`, as
/// the /detect route does), timed as this row's encode.
public struct GatewayResponse: BenchCodec {
    public init() {}
    public var id: String { "gateway" }
    public var title: String { "gateway: protobuf bytes → JSON body" }
    public var role: CodecRole { .gateway }
    public var untimed: [BenchOperation: String] {
        [.decode: "The gateway row for responses times one conversion, protobuf bytes → JSON body (swift-protobuf decode, then JSONCodec.encodeResponse), shown as its encode; its bytes are the JSON body's."]
    }
    public func prepare(_ message: Pb_OutliersResponse) throws -> [UInt8] { try message.serializedBytes() }
    public func encode(_ native: [UInt8]) throws -> [UInt8] {
        JSONCodec.encodeResponse(try Pb_OutliersResponse(serializedBytes: native))
    }
    public func decode(_ wire: [UInt8]) throws -> [UInt8] { try Pb_OutliersResponse(jsonUTF8Bytes: wire).serializedBytes() }
    public func message(from native: [UInt8]) throws -> Pb_OutliersResponse { try Pb_OutliersResponse(serializedBytes: native) }
}

// MARK: - Plain JSON with Foundation (the article's Go encoding/json)

/// What a Go program would marshal with encoding/json: `time.Time` (written as
/// RFC 3339, "2020-05-22T14:13:11Z"), a string and a float64.
public struct PlainMetric: Codable, Sendable, Equatable {
    public var time: Date?
    public var name: String
    public var value: Double
}

public struct PlainRequest: Codable, Sendable, Equatable {
    public var metrics: [PlainMetric]
}

public struct PlainResponse: Codable, Sendable, Equatable {
    public var indices: [Int32]
}

/// Foundation's JSONEncoder/JSONDecoder on Codable structs. Times are `Date` with the
/// `.iso8601` strategy, which writes the same text as Go's time.Time
/// ("2020-05-22T14:13:11Z") but keeps whole seconds only: a message with sub-second
/// times is reported as not applicable rather than silently rounded. NaN and the
/// infinities are written as proto3 JSON's strings ("NaN", "Infinity", "-Infinity").
enum FoundationJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity",
                                                                      negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity",
                                                                        negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}

public struct FoundationJSONRequest: BenchCodec {
    private let encoder = FoundationJSON.encoder()
    private let decoder = FoundationJSON.decoder()

    public init() {}
    public var id: String { "json-foundation" }
    public var title: String { "plain JSON (Foundation Codable)" }

    public func prepare(_ message: Pb_OutliersRequest) throws -> PlainRequest {
        if let index = message.metrics.firstIndex(where: { $0.hasTime && $0.time.nanos != 0 }) {
            throw NotApplicable("metrics[\(index)].time has a fraction of a second; Foundation's .iso8601 date strategy keeps whole seconds only, so this codec is skipped for this input")
        }
        return PlainRequest(metrics: message.metrics.map { metric in
            PlainMetric(time: metric.hasTime ? Date(timeIntervalSince1970: TimeInterval(metric.time.seconds)) : nil,
                        name: metric.name, value: metric.value)
        })
    }

    public func encode(_ native: PlainRequest) throws -> Data { try encoder.encode(native) }
    public func decode(_ wire: Data) throws -> PlainRequest { try decoder.decode(PlainRequest.self, from: wire) }

    public func message(from native: PlainRequest) throws -> Pb_OutliersRequest {
        var request = Pb_OutliersRequest()
        request.metrics = native.metrics.map { plain in
            var metric = Pb_Metric()
            if let time = plain.time {
                let seconds = time.timeIntervalSince1970.rounded(.down)
                metric.time = Google_Protobuf_Timestamp(
                    seconds: Int64(seconds), nanos: Int32(((time.timeIntervalSince1970 - seconds) * 1e9).rounded()))
            }
            metric.name = plain.name
            metric.value = plain.value
            return metric
        }
        return request
    }
}

public struct FoundationJSONResponse: BenchCodec {
    private let encoder = FoundationJSON.encoder()
    private let decoder = FoundationJSON.decoder()

    public init() {}
    public var id: String { "json-foundation" }
    public var title: String { "plain JSON (Foundation Codable)" }
    public func prepare(_ message: Pb_OutliersResponse) throws -> PlainResponse { PlainResponse(indices: message.indices) }
    public func encode(_ native: PlainResponse) throws -> Data { try encoder.encode(native) }
    public func decode(_ wire: Data) throws -> PlainResponse { try decoder.decode(PlainResponse.self, from: wire) }
    public func message(from native: PlainResponse) throws -> Pb_OutliersResponse {
        var response = Pb_OutliersResponse()
        response.indices = native.indices
        return response
    }
}
