import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// On a machine with a GPU: a few ops on cuda:0 against the CPU (the full check is the
/// `ember-gpu-check` executable). Without one: skipped, with the reason printed.
final class CUDADeviceTests: XCTestCase {
    func gpu() throws -> Device {
        guard gpuAvailable else {
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
        // Peak tracking: the 4 MiB tensor counted until the reset, then only what is live.
        XCTAssertGreaterThanOrEqual(Ember.CUDA.maxMemoryAllocated() - before, 4 << 20)
        Ember.CUDA.resetPeakMemoryStats()
        XCTAssertEqual(Ember.CUDA.maxMemoryAllocated(), Ember.CUDA.memoryAllocated())
        let small = Tensor.zeros([1024], device: g)
        XCTAssertEqual(Ember.CUDA.maxMemoryAllocated(), Ember.CUDA.memoryAllocated())
        _ = small
    }

    /// A driver that cannot load NVRTC's output (older than the compiler) makes CUDA
    /// unavailable with the reason, found when CUDA starts (a child process on the emulator,
    /// which then refuses every module), not a crash at the first operation.
    func testADriverThatCannotLoadTheKernelsIsReportedAtStart() throws {
        if ProcessInfo.processInfo.environment["EMBER_EMULATOR_REFUSE_MODULES"] == "1" {
            print("EMBER-AVAILABLE \(Ember.CUDA.isAvailable) \(Ember.CUDA.deviceCount): \(Ember.CUDA.unavailableReason ?? "-")")
            return
        }
        guard gpuAvailable, Ember.CUDA.name(0).contains("emulator") else { throw XCTSkip("needs the CUDA emulator") }
        #if os(Linux)
        guard let (status, text) = try runTestInChild("EmberCUDATests.CUDADeviceTests/testADriverThatCannotLoadTheKernelsIsReportedAtStart",
                                                      environment: ["EMBER_EMULATOR_REFUSE_MODULES": "1"]) else {
            throw XCTSkip("not running from an .xctest binary")
        }
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("EMBER-AVAILABLE false 0: CUDA: cuda:0 (Ember CUDA emulator (host CPU)) cannot run Ember's kernels: "
                                    + "CUDA: loading module probe"), String(text.suffix(1500)))
        XCTAssertTrue(text.contains("unsupported toolchain"), String(text.suffix(1500)))
        #endif
    }

    func testUnavailableReasonNamesTheLibrary() throws {
        if gpuAvailable { throw XCTSkip("a GPU is present") }
        let r = Ember.CUDA.unavailableReason ?? ""
        XCTAssertTrue(r.contains("libcuda") || r.contains("NVRTC") || r.contains("cuInit") || r.contains("nvcuda"), r)
        XCTAssertEqual(Ember.CUDA.deviceCount, 0)
    }
}
