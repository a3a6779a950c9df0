import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

private func limitFailure(_ body: [UInt8], _ limit: Int) -> JSONCodecError? {
    let result = body.withUnsafeBytes { raw in
        Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeRequest(raw, maximumMessageBytes: limit) }
    }
    if case .failure(let error) = result { return error }
    return nil
}

@Suite struct MessageLimit {
    /// Both paths stop at the limit: the exact size passes, one byte less is refused.
    @Test func transcodingStopsAtTheMessageLimit() throws {
        let plain = Array(("[" + (1...1000).map(String.init).joined(separator: ",") + "]").utf8)
        // Escapes send the body down jansson's path.
        let escaped = Array(#"[{"name":"\u0041","value":1}"#.utf8) + Array((2...1000).map { ",{\"value\":\($0)}" }.joined().utf8) + [UInt8(ascii: "]")]
        for body in [plain, escaped] {
            let full = try transcode(body)
            for limit in [full.count, full.count + 1, Int.max] {
                let bytes = try body.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw, maximumMessageBytes: limit) }
                #expect(bytes == full)
            }
            for limit in [0, 1, full.count / 2, full.count - 1] {
                #expect(throws: JSONCodecError.self) {
                    try body.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw, maximumMessageBytes: limit) }
                }
                let error = limitFailure(body, limit)
                #expect(error?.isMessageTooLarge == true, "limit \(limit)")
            }
        }
        // The plain scanner says so itself, without jansson deciding.
        plain.withUnsafeBytes { raw in
            guard case .messageTooLarge = PlainBodyScanner.transcode(raw, limit: 100) else {
                Issue.record("the scanner did not stop at the limit")
                return
            }
        }
    }

    /// A syntax error in a body under the limit is still a syntax error, not a 413.
    @Test func errorsUnderTheLimitAreNotTooLarge() {
        let error = limitFailure(Array("[1,2,".utf8), 1000)
        #expect(error != nil && error?.isMessageTooLarge == false)
    }
}
