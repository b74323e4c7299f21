import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// Moving models and optimizer state to the GPU, as PyTorch users do it.
final class CUDAModuleTests: XCTestCase {
    func testModuleToKeepsParameterObjectsSoAnEarlierOptimizerTrains() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
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

    /// A half-precision CNN (`model.to(.float16)`, PyTorch's `model.half()`) on the GPU gives
    /// what the same model gives on the CPU: both compute each op in float32 and round.
    func testHalfPrecisionModelsMatchTheCPU() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        for dtype in [DType.float16, .bfloat16] {
            Ember.manualSeed(8)
            let net = Sequential(Conv2d(1, 4, kernelSize: (3, 3), padding: .explicit(1, 1)), ReLU(), MaxPool2d(2), Flatten(), Linear(4 * 4 * 4, 3))
            let emb = Embedding(6, 2)
            let x = Tensor.randn([5, 1, 8, 8]), y = Tensor.randint(0, 3, [5]), ids = Tensor([0, 5, 5, 2] as [Int64])
            net.to(dtype)
            emb.to(dtype)
            func run(_ d: Device) throws -> [Tensor] {
                net.to(d)
                emb.to(d)
                for p in net.parameters() + emb.parameters() { p.grad = nil }
                let loss = crossEntropy(net(x.to(dtype).to(d)), y.to(d)) + emb(ids.to(d)).square().sum()
                try loss.backward()
                return [loss] + (net.parameters() + emb.parameters()).map { $0.grad! }
            }
            let cpu = try run(.cpu), gpu = try run(.cuda(0))
            for (i, (c, g)) in zip(cpu, gpu).enumerated() {
                XCTAssertEqual(g.dtype, dtype)
                let d = (g.to(.cpu).to(.float64) - c.to(.float64)).abs().max().item(), scale = c.to(.float64).abs().max().item()
                XCTAssertLessThanOrEqual(d, 0.02 * max(scale, 1e-3), "\(dtype) tensor \(i): GPU differs from the CPU by \(d) (scale \(scale))")
            }
        }
    }
}
