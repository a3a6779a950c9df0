import Testing
@testable import RESTGateway

@Suite struct MetadataMappingRules {
    private func mapped(_ headers: [(String, String)], client: String? = "192.0.2.1") -> [(name: String, value: String)]? {
        try? MetadataMapping.requestMetadata(headers.map { (name: $0.0, value: $0.1) }, clientAddress: client).get()
    }

    @Test func headersMapAsGRPCGatewayMapsThem() throws {
        let metadata = try #require(mapped([
            ("authorization", "Bearer x"), ("grpc-metadata-tenant", "acme"), ("accept", "*/*"),
            ("host", "api.example:8080"), ("x-forwarded-for", "203.0.113.9"), ("grpc-metadata-t-bin", "AAH+/w"),
        ]))
        let pairs = metadata.map { "\($0.name)=\($0.value)" }
        #expect(pairs == ["authorization=Bearer x", "tenant=acme", "grpcgateway-accept=*/*", "grpcgateway-host=api.example:8080",
                          "t-bin=AAH+/w", "x-forwarded-for=203.0.113.9, 192.0.2.1", "x-forwarded-host=api.example:8080"])
    }

    @Test func forwardedHostWinsOverHostAndAddressStandsAlone() throws {
        let metadata = try #require(mapped([("host", "h"), ("x-forwarded-host", "front.example")]))
        #expect(metadata.map { "\($0.name)=\($0.value)" } == ["grpcgateway-host=h", "x-forwarded-for=192.0.2.1",
                                                           "x-forwarded-host=front.example"])
        #expect(mapped([], client: nil)?.isEmpty == true)
    }

    @Test func headersThatCannotBeMetadataAreRefusedByName() {
        let cases: [((String, String), String)] = [
            (("grpc-metadata-k", "caf\u{E9}"), "Grpc-Metadata-K"),
            (("grpc-metadata-k-bin", "!!"), "Grpc-Metadata-K-Bin"),
            (("grpc-metadata-grpc-timeout", "1S"), "Grpc-Metadata-Grpc-Timeout"),
            (("grpc-metadata-te", "trailers"), "Grpc-Metadata-Te"),
            (("grpc-metadata-a b", "x"), "Grpc-Metadata-A b"),
            (("grpc-metadata-", "x"), "Grpc-Metadata-"),
            (("user-agent", "a\u{1}b"), "User-Agent"),
            (("x-forwarded-for", "a\u{7F}"), "X-Forwarded-For"),
        ]
        for (header, name) in cases {
            let result = MetadataMapping.requestMetadata([(name: header.0, value: header.1)], clientAddress: nil)
            guard case .failure(let refusal) = result else {
                Issue.record("\(header) was accepted")
                continue
            }
            #expect(refusal.header == name)
        }
    }

    @Test func base64IsCheckedAsGRPCReceiversReadIt() {
        for good in ["", "AA", "AAA", "AAAA", "AA==", "AAA=", "-_-_", "YWJj"] { #expect(MetadataMapping.isBase64(good), "\(good)") }
        for bad in ["A", "AAAAA", "A===", "AA=", "AA=A", "a b", "AA\n"] { #expect(!MetadataMapping.isBase64(bad), "\(bad)") }
    }

    @Test func responseMetadataComesBackUnderGRPCGatewaysNames() {
        let headers = MetadataMapping.responseHeaders(headers: [("x-a", "1"), ("bad", "a\nb")], trailers: [("x-b", "2")])
        #expect(headers.map { "\($0.0)=\($0.1)" } == ["Grpc-Metadata-x-a=1", "Grpc-Trailer-x-b=2"])
    }
}
