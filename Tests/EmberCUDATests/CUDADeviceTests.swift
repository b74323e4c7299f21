import EmberCore
import EmberCUDA
import EmberNN
import EmberOptim
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

/// Moving models and optimizer state to the GPU, as PyTorch users do it.
final class CUDAModuleTests: XCTestCase {
    func testModuleToKeepsParameterObjectsSoAnEarlierOptimizerTrains() throws {
        guard Ember.CUDA.isAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        Ember.manualSeed(3)
        let net = Sequential(Linear(4, 8), Activation("relu") { $0.relu() }, Linear(8, 3))
        let before = net.parameters()
        let opt = Adam(net.parameters(), lr: 0.1)   // made before the move, as in many scripts
        net.to(.cuda(0))
        XCTAssertTrue(zip(before, net.parameters()).allSatisfy { $0 === $1 }, "parameters must stay the same objects")
        XCTAssertTrue(net.parameters().allSatisfy { $0.device == .cuda(0) })
        let w0 = net.parameters()[0].to(.cpu).clone()
        let x = Tensor.randn([16, 4]).to(.cuda(0)), y = Tensor.randint(0, 3, [16]).to(.cuda(0))
        for _ in 0..<3 {
            opt.zeroGrad()
            try crossEntropy(net(x), y).backward()
            opt.step()
        }
        XCTAssertGreaterThan((net.parameters()[0].to(.cpu) - w0).abs().max().item(), 1e-3, "the optimizer did not update the moved parameters")
        // Optimizer state saved from the GPU and loaded into a fresh optimizer lands on the GPU.
        let saved = opt.stateDict()
        let opt2 = Adam(net.parameters(), lr: 0.1)
        try opt2.loadStateDict(saved)
        opt2.zeroGrad()
        try crossEntropy(net(x), y).backward()
        opt2.step()
        XCTAssertTrue(net.parameters().allSatisfy { $0.device == .cuda(0) })
    }
}
