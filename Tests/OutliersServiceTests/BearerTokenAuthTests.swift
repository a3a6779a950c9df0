import H2GRPC
import Testing
@testable import OutliersService

@Suite struct BearerTokens {
    private let auth = BearerTokenAuth(token: "t0ken")!

    @Test func onlyTheTokenPasses() {
        #expect(auth.refusal([("authorization", "Bearer t0ken")]) == nil)
        #expect(auth.refusal([("authorization", "BEARER t0ken")]) == nil)
        for metadata: [(String, String)] in [[], [("authorization", "Bearer t0ke")], [("authorization", "Bearer t0kenn")],
                                             [("authorization", "Bearer ")], [("authorization", "t0ken")],
                                             [("authorization", "Basic dDBrZW4=")],
                                             [("authorization", "Bearer t0ken"), ("authorization", "Bearer t0ken")],
                                             [("x-authorization", "Bearer t0ken")]] {
            let refusal = auth.refusal(metadata.map { (name: $0.0, value: $0.1) })
            #expect(refusal?.code == .unauthenticated, "\(metadata)")
            #expect(refusal?.message.contains("t0ken") == false)
        }
    }

    @Test func tokensAHeaderCannotCarryAreRefused() {
        for bad in ["", "a b", "caf\u{E9}", "a\tb"] { #expect(BearerTokenAuth(token: bad) == nil, "\(bad)") }
    }

    @Test func comparisonIsEqualityAtEveryLength() {
        #expect(BearerTokenAuth.constantTimeEqual(Array("abc".utf8)[...], Array("abc".utf8)))
        #expect(!BearerTokenAuth.constantTimeEqual(Array("abd".utf8)[...], Array("abc".utf8)))
        #expect(!BearerTokenAuth.constantTimeEqual(Array("ab".utf8)[...], Array("abc".utf8)))
        #expect(!BearerTokenAuth.constantTimeEqual(Array("abc\u{0}".utf8)[...], Array("abc".utf8)))
        #expect(!BearerTokenAuth.constantTimeEqual(Array("".utf8)[...], Array("a".utf8)))
        // A slice that does not start at 0 (the token after "Bearer ").
        #expect(BearerTokenAuth.constantTimeEqual(Array("xxabc".utf8)[2...], Array("abc".utf8)))
    }

    @Test func onlyTheNamedServicesAreGuarded() throws {
        let handlers: [String: RPCHandler] = [
            "/pb.Outliers/Detect": .unary { request, _ throws(RPCError) in request },
            "/grpc.health.v1.Health/Check": .unary { request, _ throws(RPCError) in request },
        ]
        let guarded = auth.guarding(handlers, services: ["pb.Outliers"])
        guard case .unary(let detect)? = guarded["/pb.Outliers/Detect"],
              case .unary(let health)? = guarded["/grpc.health.v1.Health/Check"] else {
            Issue.record("handlers lost")
            return
        }
        #expect(throws: RPCError.self) { try detect([1], ServerCallContext(path: "/pb.Outliers/Detect")) }
        #expect(try detect([1], ServerCallContext(path: "/pb.Outliers/Detect", metadata: [("authorization", "Bearer t0ken")])) == [1])
        #expect(try health([2], ServerCallContext(path: "/grpc.health.v1.Health/Check")) == [2])
    }
}
