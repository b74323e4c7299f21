import EmberTestSupport
import Foundation
import XCTest
@testable import EmberData
@testable import Ember

final class DataLoaderTests: XCTestCase {
    override func tearDown() {
        XCTAssertEqual(DataLoaderStats.liveWorkers, 0, "worker threads left alive")
    }

    func collect(_ loader: DataLoader<[Tensor], [Tensor]>) throws -> [[Float]] {
        var out: [[Float]] = []
        try loader.forEach { out.append($0[0].scalars + $0[1].to(.float32).scalars) }
        return out
    }

    func testSameBatchesForEveryWorkerCount() throws {
        var runs: [[[Float]]] = []
        for workers in [0, 1, 4] {
            let loader = DataLoader(Augmented(), batchSize: 6, shuffle: true, numWorkers: workers, seed: 42)
            runs.append(try collect(loader) + (try collect(loader)))  // two epochs
        }
        XCTAssertEqual(runs[0].count, 14)
        XCTAssertEqual(runs[0], runs[1])
        XCTAssertEqual(runs[0], runs[2])
        XCTAssertNotEqual(runs[0][0], runs[0][7], "epochs differ in order and augmentation")
        let again = DataLoader(Augmented(), batchSize: 6, shuffle: true, numWorkers: 2, seed: 42)
        XCTAssertEqual(try collect(again), Array(runs[0].prefix(7)))
        let other = DataLoader(Augmented(), batchSize: 6, shuffle: true, numWorkers: 2, seed: 43)
        XCTAssertNotEqual(try collect(other), Array(runs[0].prefix(7)))
    }

    func testWorkersHaveDistinctReproducibleSeeds() throws {
        // Batches go to whichever worker is free (a busy machine may leave one idle), so each
        // sample takes 1 ms: every worker then gets work, and each has seed + its id.
        let probe = Probe(64, delay: 1000)
        let loader = DataLoader(probe, batchSize: 4, numWorkers: 3, seed: 100)
        try loader.forEach { _ in }
        XCTAssertEqual(probe.workers, [0: 100, 1: 101, 2: 102])
        XCTAssertEqual(probe.loadedBy.count, 64)
    }

    func testErrorNamesTheSampleAndStopsWorkers() {
        for workers in [0, 1, 3] {
            let loader = DataLoader(Probe(100, failAt: 37, delay: 200), batchSize: 5, numWorkers: workers, seed: 1)
            var seen = 0
            XCTAssertThrowsError(try loader.forEach { _ in seen += 1 }) { e in
                XCTAssertEqual((e as? SampleError)?.index, 37, "\(e)")
                XCTAssertTrue("\(e)".contains("sample 37"))
            }
            XCTAssertEqual(seen, 7, "batches before the failing one arrive in order")
            XCTAssertEqual(DataLoaderStats.liveWorkers, 0)
        }
    }

    func testEarlyBreakAndDroppedLoadersReclaimWorkers() async throws {
        let loader = DataLoader(Probe(1000, delay: 100), batchSize: 4, numWorkers: 3, seed: 0)
        var n = 0
        for try await _ in loader {
            n += 1
            if n == 3 { break }
        }
        XCTAssertEqual(n, 3)
        XCTAssertEqual(DataLoaderStats.liveWorkers, 0)
        var persistent: DataLoader<[Tensor], [Tensor]>? = DataLoader(Probe(40), batchSize: 4, numWorkers: 2, persistentWorkers: true, seed: 0)
        try persistent!.forEach { _ in }
        XCTAssertEqual(DataLoaderStats.liveWorkers, 2, "persistent workers stay between epochs")
        try persistent!.forEach { _ in }
        persistent = nil
        XCTAssertEqual(DataLoaderStats.liveWorkers, 0)
    }

    func testPrefetchIsBounded() throws {
        final class Counting: Dataset, @unchecked Sendable {
            let lock = NSLock()
            var loaded = 0
            var count: Int { 400 }
            func element(at i: Int) throws -> [Tensor] {
                lock.lock(); loaded += 1; lock.unlock()
                return [Tensor(scalar: Float(i))]
            }
        }
        let d = Counting()
        let loader = DataLoader(d, batchSize: 4, numWorkers: 2, prefetchFactor: 3, seed: 0)
        var consumed = 0
        var maxAhead = 0
        try loader.forEach { _ in
            consumed += 1
            usleep(2000)  // a slow training step
            d.lock.lock(); maxAhead = max(maxAhead, d.loaded / 4 - consumed); d.lock.unlock()
        }
        XCTAssertEqual(consumed, 100)
        XCTAssertLessThanOrEqual(maxAhead, 3 * 2, "batches loaded ahead of the consumer")
        XCTAssertGreaterThan(maxAhead, 0, "workers do prefetch")
    }

    /// Many epochs over freshly allocated tensors: resident memory stays flat.
    func testNoLeakAcrossEpochs() throws {
        struct Fresh: Dataset {
            var count: Int { 256 }
            func element(at i: Int) throws -> [Tensor] { [Tensor.randn([64, 64]), Tensor(scalar: i)] }
        }
        let loader = DataLoader(Fresh(), batchSize: 32, shuffle: true, numWorkers: 2, seed: 0)
        for _ in 0..<3 { try loader.forEach { _ in } }
        let before = residentBytes()
        for _ in 0..<30 { try loader.forEach { b in XCTAssertEqual(b[0].shape, [32, 64, 64]) } }
        let after = residentBytes()
        XCTAssertLessThan(after - before, 32 << 20, "resident memory grew by \((after - before) >> 20) MiB over 30 epochs")
    }

    func testStreamingDatasets() throws {
        struct Counter: IterableDataset {
            let n: Int
            func makeStream() -> AnyIterator<Tensor> {
                var i = 0
                return AnyIterator { i < n ? { defer { i += 1 }; return Tensor(scalar: Float(i)) }() : nil }
            }
        }
        for workers in [0, 1] {
            let loader = DataLoader(iterable: Counter(n: 10), batchSize: 4, numWorkers: workers, collate: { Tensor.stack($0) }, seed: 0)
            var got: [[Float]] = []
            try loader.forEach { got.append($0.scalars) }
            XCTAssertEqual(got, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]], "workers \(workers)")
            try loader.forEach { _ in }  // a second epoch restarts the stream
            let dropping = DataLoader(iterable: Counter(n: 10), batchSize: 4, numWorkers: workers, dropLast: true,
                                      collate: { Tensor.stack($0) }, seed: 0)
            var n = 0
            try dropping.forEach { _ in n += 1 }
            XCTAssertEqual(n, 2)
        }
    }

    func testBatchFetchingLoader() throws {
        let x = Tensor.arange(0, 100, dtype: .float32)
        var orders: [[Float]] = []
        for workers in [0, 2] {
            let loader = DataLoader(count: 100, batchSize: 16, shuffle: true, numWorkers: workers, seed: 9) { idx in
                x.indexSelect(0, Tensor(idx))
            }
            var all: [Float] = []
            try loader.forEach { all += $0.scalars }
            XCTAssertEqual(all.sorted(), x.scalars)
            orders.append(all)
        }
        XCTAssertEqual(orders[0], orders[1])
    }

    func testSamplers() {
        XCTAssertEqual(SequentialSampler(count: 4).indices(epoch: 3), [0, 1, 2, 3])
        let r = RandomSampler(count: 50, seed: 7)
        XCTAssertEqual(r.indices(epoch: 0).sorted(), Array(0..<50))
        XCTAssertEqual(r.indices(epoch: 0), RandomSampler(count: 50, seed: 7).indices(epoch: 0))
        XCTAssertNotEqual(r.indices(epoch: 0), r.indices(epoch: 1))
        let rr = RandomSampler(count: 5, replacement: true, numSamples: 200, seed: 1).indices(epoch: 0)
        XCTAssertEqual(rr.count, 200)
        XCTAssertEqual(Set(rr), Set(0..<5))
        let w = WeightedRandomSampler(weights: [0, 1, 3], numSamples: 4000, seed: 2).indices(epoch: 0)
        XCTAssertFalse(w.contains(0))
        XCTAssertEqual(Double(w.filter { $0 == 2 }.count) / 4000, 0.75, accuracy: 0.03)
        XCTAssertEqual(WeightedRandomSampler(weights: [1, 1, 1], numSamples: 3, replacement: false, seed: 0).indices(epoch: 0).sorted(), [0, 1, 2])
        let b = BatchSampler(SequentialSampler(count: 10), batchSize: 4).batches(epoch: 0)
        XCTAssertEqual(b, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        XCTAssertEqual(BatchSampler(SequentialSampler(count: 10), batchSize: 4, dropLast: true).batches(epoch: 0).count, 2)
        // Distributed: equal shares that cover the data set, padded or dropped.
        let shares = (0..<3).map { DistributedSampler(count: 10, numReplicas: 3, rank: $0, seed: 5).indices(epoch: 1) }
        XCTAssertEqual(shares.map(\.count), [4, 4, 4])
        XCTAssertEqual(Set(shares.flatMap { $0 }), Set(0..<10))
        let dropped = (0..<3).map { DistributedSampler(count: 10, numReplicas: 3, rank: $0, shuffle: false, dropLast: true).indices(epoch: 0) }
        XCTAssertEqual(dropped, [[0, 3, 6], [1, 4, 7], [2, 5, 8]])
    }

    func testDatasetsAndCSV() throws {
        let x = Tensor.arange(0, 20, dtype: .float32).reshape([10, 2]), y = Tensor.arange(10)
        let ds = TensorDataset(x, y)
        XCTAssertEqual(try ds.element(at: 3)[0].scalars, [6, 7])
        let sub = Subset(ds, indices: [9, 0])
        XCTAssertEqual(try sub.element(at: 0)[1].item(), 9)
        let cat = ConcatDataset([ds, sub])
        XCTAssertEqual(cat.count, 12)
        XCTAssertEqual(try cat.element(at: 11)[1].item(), 0)
        let parts = randomSplit(ds, lengths: [7, 3], seed: 4)
        XCTAssertEqual(Set(parts[0].indices + parts[1].indices), Set(0..<10))
        XCTAssertEqual(randomSplit(ds, lengths: [7, 3], seed: 4)[1].indices, parts[1].indices)
        let mapped = ds.map { [$0[0] * 2] }
        XCTAssertEqual(try mapped.element(at: 1)[0].scalars, [4, 6])

        let (cols, v) = try CSV.parse("a, b ,c\n1,2,3\n\n4.5,-1,1e2\n", header: true)
        XCTAssertEqual(cols, ["a", "b", "c"])
        XCTAssertEqual(v.shape, [2, 3])
        XCTAssertEqual(v.scalars, [1, 2, 3, 4.5, -1, 100])
        XCTAssertThrowsError(try CSV.parse("1,2\n3,x\n")) { XCTAssertTrue("\($0)".contains("line 2, column 2"), "\($0)") }
        XCTAssertThrowsError(try CSV.parse("1,2\n3\n")) { XCTAssertTrue("\($0)".contains("1 fields, expected 2"), "\($0)") }
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("d.csv").path
        try "x1,x2,label\n0.5,1,0\n2,3,1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let csv = try CSVDataset(path: path, targetColumn: 2)
        XCTAssertEqual(csv.count, 2)
        XCTAssertEqual(try csv.element(at: 1).map(\.scalars), [[2, 3], [1]])
        XCTAssertThrowsError(try CSVDataset(path: dir.appendingPathComponent("none.csv").path))
    }
}
