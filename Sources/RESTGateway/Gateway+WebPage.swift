import Detection
import Foundation
import OutliersJSON
import OutliersProto
import SwiftProtobuf

/// The page at `/` (web/, embedded by scripts/embed-web): its HTML, script, style and
/// icon, the demo data it offers, and the limits it checks before sending. Served
/// unless `--no-ui`.
extension Gateway {
    /// Everything from this origin, nothing from any other; no inline script or style
    /// (the page has none), no frames, no form posts elsewhere.
    static let webPagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        + "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// The answer to GET (or HEAD) of a page route.
    func webPageResponse(_ route: Route) -> HTTPResponse {
        let body: [UInt8]
        let contentType: String
        switch route {
        case .page: (body, contentType) = (Array(WebPageAssets.indexHTML.utf8), "text/html; charset=utf-8")
        case .pageScript: (body, contentType) = (Array(WebPageAssets.appJS.utf8), "text/javascript; charset=utf-8")
        case .pageStyle: (body, contentType) = (Array(WebPageAssets.appCSS.utf8), "text/css; charset=utf-8")
        case .pageIcon: (body, contentType) = (Array(WebPageAssets.iconSVG.utf8), "image/svg+xml")
        case .pageDemo: (body, contentType) = (Self.demoBody, "application/json")
        case .pageLimits: (body, contentType) = (Array(#"{"maxBodyBytes":\#(configuration.maximumBodyBytes),"maxMessageBytes":\#(configuration.maximumMessageBytes)}"#.utf8), "application/json")
        case .detect, .grpcDetect, .healthz, .metrics, .openAPI: preconditionFailure("\(route) is not a page route")
        }
        return HTTPResponse(status: 200, body: body, contentType: contentType, headers: [
            ("Content-Security-Policy", Self.webPagePolicy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-cache"),
        ])
    }

    /// The article's demo request (Detection.DemoData: 1000 CPU metrics stamped
    /// 2020-05-22T14:13:11Z, outliers planted at 7, 113 and 835), as proto3 JSON with
    /// a metric per line, as examples/metrics.json holds it (a test compares the two).
    static let demoBody: [UInt8] = {
        var request = Pb_OutliersRequest()
        request.metrics = DemoData.values().map { value in
            Pb_Metric.with {
                $0.time = Google_Protobuf_Timestamp(seconds: 1_590_156_791)
                $0.name = "CPU"
                $0.value = value
            }
        }
        // `{"metrics":[{…},{…}]}` with a line break after the `[`, after each `},` and
        // before the `]}`: no value or name here holds a brace.
        let oneLine = String(decoding: JSONCodec.encodeRequest(request), as: UTF8.self)
        let lines = oneLine.replacingOccurrences(of: #"{"metrics":["#, with: "{\"metrics\":[\n")
            .replacingOccurrences(of: "},{", with: "},\n{")
            .replacingOccurrences(of: "}]}", with: "}\n]}\n")
        return Array(lines.utf8)
    }()
}
