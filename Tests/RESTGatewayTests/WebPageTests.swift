import Foundation
import Testing
@testable import RESTGateway

// The page at `/`: the embedded files are web/'s, byte for byte, and the routes.

@Test(arguments: [("index.html", WebPageAssets.indexHTML), ("app.js", WebPageAssets.appJS),
                  ("app.css", WebPageAssets.appCSS), ("icon.svg", WebPageAssets.iconSVG)])
func servedPageFilesAreTheRepositorys(_ name: String, _ embedded: String) throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("web").appendingPathComponent(name)
    // A missing file fails here. Run scripts/embed-web after editing web/.
    let file = try Data(contentsOf: url)
    #expect(Array(embedded.utf8) == Array(file), "web/\(name) differs from WebPageAssets: run scripts/embed-web")
}

@Test func pageRoutesAreReadOnlyAndTurnedOffTogether() {
    let page: [Route] = [.page, .pageScript, .pageStyle, .pageIcon, .pageDemo, .pageLimits]
    for route in page {
        #expect(route.isWebPage)
        #expect(route.allowedMethods == ["GET", "HEAD"])
    }
    for route in [Route.detect, .grpcDetect, .healthz, .metrics, .openAPI] { #expect(!route.isWebPage) }
    #expect(Route(rawValue: "/") == .page)
}

@Test func thePagesPolicyAllowsThisOriginOnly() {
    let policy = Gateway.webPagePolicy
    #expect(policy.hasPrefix("default-src 'none'"))
    for directive in ["script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        #expect(policy.contains(directive))
    }
    #expect(!policy.contains("unsafe"))
}

@Test func theDemoDataIsExamplesMetricsJSON() throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/metrics.json")
    #expect(Gateway.demoBody == Array(try Data(contentsOf: url)))
}
