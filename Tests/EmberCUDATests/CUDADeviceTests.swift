import EmberCore
import EmberCUDA
import XCTest

/// On a machine with a GPU: a few ops on cuda:0 against the CPU (the full check is the
/// `ember-gpu-check` executable). Without one: skipped, with the reason printed.
final class CUDADeviceTests: XCTestCase {
    func gpu() throws -> Device {
        guard Ember.CUDA.isAvailable else {
            throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")")
        }
        return .cuda(0)
    }

    func testOpsMatchTheCPU() throws {
        let g = try gpu()
        Ember.manualSeed(1)
        let a = Tensor.randn([33, 17]), b = Tensor.randn([17, 9]), c = Tensor.randn([33, 9])
        let cpu = ((a.matmul(b) + c).relu().softmax(dim: 1) * 3).sum(dim: 0)
        let dev = ((a.to(g).matmul(b.to(g)) + c.to(g)).relu().softmax(dim: 1) * 3).sum(dim: 0)
        XCTAssertEqual(dev.device, g)
        XCTAssertLessThan((dev.to(.cpu) - cpu).abs().max().item(), 1e-5)
    }

    func testMemoryAccounting() throws {
        let g = try gpu()
        let before = Ember.CUDA.memoryAllocated()
        var t: Tensor? = Tensor.zeros([1 << 20], device: g)
        XCTAssertGreaterThanOrEqual(Ember.CUDA.memoryAllocated() - before, 4 << 20)
        t = nil
        _ = t
        XCTAssertEqual(Ember.CUDA.memoryAllocated(), before)
        XCTAssertGreaterThanOrEqual(Ember.CUDA.memoryReserved(), Ember.CUDA.memoryAllocated())
    }

    func testUnavailableReasonNamesTheLibrary() throws {
        if Ember.CUDA.isAvailable { throw XCTSkip("a GPU is present") }
        let r = Ember.CUDA.unavailableReason ?? ""
        XCTAssertTrue(r.contains("libcuda") || r.contains("NVRTC") || r.contains("cuInit") || r.contains("nvcuda"), r)
        XCTAssertEqual(Ember.CUDA.deviceCount, 0)
    }
}
