import Testing
@testable import ZlibCompression

@Suite struct ZlibStreams {
    private let text = Array((0..<5000).map { "metric \($0 % 97) value \($0 * 7919 % 1000)\n" }.joined().utf8)

    @Test(arguments: ZlibCoding.allCases)
    func roundTripsWholeAndInEveryPieceSize(_ coding: ZlibCoding) throws {
        let compressed = Zlib.compress(text, as: coding)
        #expect(compressed.count < text.count / 3)
        #expect(try Zlib.decompress(compressed, from: coding, limit: text.count) == text)
        for piece in [1, 2, 3, 7, 100, 4096] {
            let inflater = Inflater(coding, limit: text.count)
            var output: [UInt8] = []
            var offset = 0
            while offset < compressed.count {
                let end = min(offset + piece, compressed.count)
                try compressed[offset..<end].withUnsafeBytes { try inflater.append($0, to: &output) }
                offset = end
            }
            try inflater.finish()
            #expect(output == text, "pieces of \(piece)")
        }
    }

    @Test func theLimitStopsAZipBombAtOnce() throws {
        let zeros = [UInt8](repeating: 0, count: 50_000_000)
        let bomb = Zlib.compress(zeros, as: .gzip, level: 9)
        #expect(bomb.count < 100_000)
        let inflater = Inflater(.gzip, limit: 1_000_000)
        var output: [UInt8] = []
        #expect(throws: DecompressionError.tooLarge(limit: 1_000_000)) {
            try bomb.withUnsafeBytes { try inflater.append($0, to: &output) }
        }
        // Never much more than the limit was kept.
        #expect(output.count <= 1_000_000 + 64 * 1024)
        #expect(throws: DecompressionError.tooLarge(limit: 9)) { try Zlib.decompress(Zlib.compress(Array("0123456789".utf8), as: .deflate), from: .deflate, limit: 9) }
        #expect(try Zlib.decompress(Zlib.compress(Array("0123456789".utf8), as: .deflate), from: .deflate, limit: 10).count == 10)
    }

    @Test func gzipMembersFollowEachOther() throws {
        let both = Zlib.compress(Array("ab".utf8), as: .gzip) + Zlib.compress(Array("cd".utf8), as: .gzip)
        #expect(try Zlib.decompress(both, from: .gzip, limit: 100) == Array("abcd".utf8))
    }

    @Test func rawDeflateIsReadAsDeflateToo() throws {
        // zlib's stream without its 2-byte header and 4-byte Adler-32 trailer is raw deflate.
        let wrapped = Zlib.compress(text, as: .deflate)
        let raw = Array(wrapped[2..<(wrapped.count - 4)])
        #expect(try Zlib.decompress(raw, from: .deflate, limit: text.count) == text)
    }

    @Test func brokenDataIsAnErrorInWords() {
        let compressed = Zlib.compress(text, as: .gzip)
        #expect(throws: DecompressionError.truncated(coding: .gzip)) {
            try Zlib.decompress(Array(compressed.dropLast(10)), from: .gzip, limit: text.count)
        }
        do {
            _ = try Zlib.decompress(Array("not gzip at all".utf8), from: .gzip, limit: 100)
            Issue.record("accepted")
        } catch {
            guard case .corrupt(.gzip, let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason == "incorrect header check")
            #expect(error.description.contains("not valid gzip"))
        }
        #expect(throws: DecompressionError.self) { try Zlib.decompress(Zlib.compress([1, 2], as: .deflate) + [0], from: .deflate, limit: 100) }
        #expect(throws: DecompressionError.truncated(coding: .deflate)) { try Zlib.decompress([], from: .deflate, limit: 100) }
        #expect(ZlibCoding(name: "GZip") == .gzip && ZlibCoding(name: "br") == nil)
    }
}
