import Testing
import ZlibCompression
@testable import RESTGateway

@Suite struct HTTPCompressionRules {
    @Test func acceptEncodingIsReadWithItsQValues() {
        for accepted in ["gzip", "GZIP", "deflate, gzip", "gzip;q=0.5", "*", "br, *;q=0.1", "x-gzip", "gzip ; q=1"] {
            #expect(Gateway.acceptsGzip(accepted), "\(accepted)")
        }
        for refused in [nil, "", "identity", "br", "deflate", "gzip;q=0", "*;q=0", "*, gzip;q=0", "gzip;q=0.0"] {
            #expect(!Gateway.acceptsGzip(refused), "\(refused ?? "nil")")
        }
    }

    @Test func contentEncodingNamesOneCodingAtMost() throws {
        #expect(try Gateway.requestCoding(contentEncoding: nil).get() == nil)
        #expect(try Gateway.requestCoding(contentEncoding: "identity").get() == nil)
        #expect(try Gateway.requestCoding(contentEncoding: "").get() == nil)
        #expect(try Gateway.requestCoding(contentEncoding: "Gzip").get() == .gzip)
        #expect(try Gateway.requestCoding(contentEncoding: "identity, deflate").get() == .deflate)
        for refused in ["br", "gzip, deflate", "zstd", "compress", "x-gzip2"] {
            guard case .failure(let refusal) = Gateway.requestCoding(contentEncoding: refused) else {
                Issue.record("\(refused) accepted")
                continue
            }
            #expect(refusal.reason.contains(refused), "\(refusal.reason)")
        }
    }
}
