import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// Streams and events (`torch.cuda.Stream`, `torch.cuda.Event`) and the allocator's
/// per-stream pools.
final class CUDAStreamTests: XCTestCase {
    typealias Stream = Ember.CUDA.Stream
    typealias Event = Ember.CUDA.Event

    func gpu() throws -> Device {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        return .cuda(0)
    }

    func address(_ t: Tensor) -> UInt { UInt(bitPattern: t.storage.data) }

    func testWorkOnAUserStreamWithEvents() throws {
        let g = try gpu()
        let s = Stream(device: 0)
        XCTAssertEqual(Stream.current(), Stream.defaultStream())
        XCTAssertNotEqual(s, Stream.defaultStream())
        Ember.manualSeed(4)
        let x = Tensor.randn([48, 48]), xg = x.to(g)
        let start = Event(timing: true), end = Event(timing: true)
        s.wait(for: Stream.current())  // xg's copy is queued on the default stream
        let y: Tensor = Ember.CUDA.withStream(s) {
            XCTAssertEqual(Stream.current(), s)
            start.record()
            let y = (xg.matmul(xg) + 1).relu().sum(dim: 1)
            end.record()
            return y
        }
        XCTAssertEqual(Stream.current(), Stream.defaultStream(), "withStream restores the previous stream")
        Stream.current().wait(for: s)
        let want = (x.matmul(x) + 1).relu().sum(dim: 1)
        XCTAssertLessThan((y.to(.cpu) - want).abs().max().item(), 1e-3)
        XCTAssertGreaterThanOrEqual(start.elapsedMilliseconds(to: end), 0)
        XCTAssertTrue(end.isComplete)
        s.synchronize()
        XCTAssertTrue(s.isIdle)
        let e = s.recordEvent()
        e.synchronize()
        XCTAssertTrue(e.isComplete)
        // withNewStream: a stream of its own that first waits for the current one (the copy
        // of `fresh` is still queued there), waited for at the end.
        let fresh = (x + 3).to(g)
        let z = Ember.CUDA.withNewStream { fresh * 2 }
        XCTAssertEqual((z.to(.cpu) - (x + 3) * 2).abs().max().item(), 0, "withNewStream ran before the current stream's copy")
    }

    func testMemoryIsPooledPerStream() throws {
        let g = try gpu()
        let s = Stream(device: 0)
        // Sizes used by nothing else in the tests, so the cached blocks are these.
        let n = 123_457, m = 98_767, k = 87_653
        var onS: UInt = 0
        Ember.CUDA.withStream(s) { onS = address(Tensor.empty([n], device: g)) }  // freed into s's pool
        let other = Tensor.empty([n], device: g)
        XCTAssertNotEqual(address(other), onS, "a block freed on a user stream was handed to the default stream")
        Ember.CUDA.withStream(s) { XCTAssertEqual(address(Tensor.empty([n], device: g)), onS, "the stream reuses its own block") }
        // A default-stream tensor also used on s: reusable once s's work has completed.
        var used: UInt = 0
        do {
            let t = Tensor.empty([m], device: g)
            Ember.CUDA.withStream(s) { _ = t + 1 }
            t.recordStream(s)
            used = address(t)
        }
        s.synchronize()
        XCTAssertEqual(address(Tensor.empty([m], device: g)), used, "a recorded block came back after its stream's work")
        // The blocks of a stream that is gone return to the default stream's pool.
        let reserved = Ember.CUDA.memoryReserved()
        var gone: UInt = 0
        do {
            let s2 = Stream(device: 0)
            Ember.CUDA.withStream(s2) { gone = address(Tensor.empty([k], device: g)) }
        }
        XCTAssertEqual(address(Tensor.empty([k], device: g)), gone, "a destroyed stream's block was not reused")
        XCTAssertEqual(Ember.CUDA.memoryReserved(), reserved + CUDAStreamTests.rounded(k * 4))
    }

    static func rounded(_ bytes: Int) -> Int { bytes <= 1 << 20 ? (bytes + 511) / 512 * 512 : ((bytes + (1 << 20) - 1) >> 20) << 20 }
}
