import EmberCore
@testable import EmberCUDA
import EmberNN
import Foundation
import XCTest


/// The allocator's pools are keyed by stream number, not by handle: a handle the driver
/// hands out again to a new stream does not inherit blocks of the stream it belonged to.
final class CUDAStreamPoolTests: XCTestCase {
    func testAReusedStreamHandleGetsNoBlocksOfTheOldStream() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0), n = 76_543
        func address(_ t: Tensor) -> UInt { UInt(bitPattern: t.storage.data) }
        var kept: Tensor?
        var oldHandle: OpaquePointer?
        do {
            let s1 = Ember.CUDA.Stream(device: 0)
            oldHandle = s1.handle
            Ember.CUDA.withStream(s1) { kept = Tensor.zeros([n], device: g) }
        }
        // s1 is gone; make streams until the driver gives its handle out again (the emulator
        // and the CUDA driver both reuse freed handles), then free the tensor s1 allocated.
        var streams: [Ember.CUDA.Stream] = []
        for _ in 0..<16 where streams.last?.handle != oldHandle { streams.append(Ember.CUDA.Stream(device: 0)) }
        let s2 = streams.last!
        let block = address(kept!)
        kept = nil
        if s2.handle == oldHandle {
            Ember.CUDA.withStream(s2) {
                XCTAssertNotEqual(address(Tensor.empty([n], device: g)), block, "the new stream took the old stream's block")
            }
        }
        XCTAssertEqual(address(Tensor.empty([n], device: g)), block, "the destroyed stream's block went back to the default pool")
    }
}
