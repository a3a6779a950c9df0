import Testing
@testable import RESTGateway

@Suite struct CORSPolicyRules {
    @Test func originsAreMatchedExactlyOrByStar() {
        let listed = CORSPolicy(origins: ["https://app.example", "http://localhost:3000"])
        #expect(listed.allowOrigin(for: "https://app.example") == "https://app.example")
        #expect(listed.allowOrigin(for: "HTTPS://APP.example") == "HTTPS://APP.example")
        #expect(listed.allowOrigin(for: "https://app.example:443") == nil)
        #expect(listed.allowOrigin(for: "http://app.example") == nil)
        #expect(listed.allowOrigin(for: nil) == nil)
        #expect(CORSPolicy(origins: ["*"]).allowOrigin(for: "null") == "*")
    }

    @Test func flagValuesAreOriginsOnly() {
        for good in ["*", "https://app.example", "http://localhost:3000", "http://[::1]:8080"] {
            #expect(CORSPolicy.problem(with: good) == nil, "\(good)")
        }
        for bad in ["app.example", "https://", "https://a.example/", "https://a.example/x", "://a", "https://a b", ""] {
            #expect(CORSPolicy.problem(with: bad) != nil, "\(bad)")
        }
        #expect(CORSPolicy.origins(fromList: " https://a.example ,http://b") == ["https://a.example", "http://b"])
    }

    @Test func onlyHeadersTheGatewayReadsAreAllowed() {
        #expect(CORSPolicy.allowedHeaders(requested: "Content-Type, authorization ,Grpc-Metadata-Tenant,X-Other")
                == ["Content-Type", "authorization", "Grpc-Metadata-Tenant"])
        #expect(CORSPolicy.allowedHeaders(requested: nil).isEmpty)
        #expect(CORSPolicy.exposedHeaders([("Grpc-Metadata-a", "1"), ("Content-Encoding", "gzip"), ("Grpc-Trailer-b", "2")])
                == "X-Request-Id, Grpc-Metadata-a, Grpc-Trailer-b")
    }
}
