import Testing
@testable import SerializationBench

@Test func gzipRoundTripsAndWritesAGzipHeader() throws {
    let text = Array(String(repeating: #"{"time":"2020-05-22T14:13:11Z","name":"CPU","value":12.5},"#, count: 200).utf8)
    let compressed = try Gzip.compress(text)
    #expect(compressed.starts(with: [0x1F, 0x8B, 0x08]))   // gzip magic, deflate
    #expect(compressed.count < text.count / 10)
    #expect(try Gzip.decompress(compressed) == text)
}

@Test func gzipOfEmptyAndTinyInputs() throws {
    for input: [UInt8] in [[], [1], [0, 1, 2, 3]] {
        let compressed = try Gzip.compress(input)
        #expect(compressed.count >= 20)   // header 10 + trailer 8 + a block
        #expect(try Gzip.decompress(compressed) == input)
    }
}

@Test func gzipLevelsDiffer() throws {
    var generator = 7 as UInt64
    let input = (0..<50_000).map { _ -> UInt8 in
        generator = generator &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(ascii: "a") + UInt8((generator >> 60) & 7)
    }
    let fast = try Gzip.compress(input, level: 1)
    let standard = try Gzip.compress(input)
    #expect(standard.count <= fast.count)
    #expect(try Gzip.decompress(standard) == input)
}

@Test func truncatedGzipIsAnError() throws {
    let compressed = try Gzip.compress(Array("hello, hello, hello".utf8))
    #expect(throws: Gzip.Failure.self) { try Gzip.decompress(Array(compressed.dropLast(9))) }
}

// Where the allocator cannot be interposed the test is reported as skipped, not passed.
@Test(.enabled(if: AllocationCounter.isAvailable, "the allocator cannot be interposed here"))
func allocationCounterCountsThisThreadOnly() throws {
    let nothing = try #require(AllocationCounter.count({}))
    #expect(nothing == 0)
    let one = AllocationCounter.count { blackHole([Int](repeating: 3, count: 1000)) }
    #expect(one == 1)
    let growth = AllocationCounter.count {
        var array: [Int] = []
        for value in 0..<1024 { array.append(value) }
        blackHole(array)
    }
    #expect((growth ?? 0) >= 5)
    #expect(AllocationCounter.isAvailable)
}
