import EmberTestSupport
import Foundation
import XCTest
@testable import Ember

/// llm.c-style end-to-end check: PyTorch trained the MLP and the CNN for 10 steps from the
/// same initial weights and batches (SGD-momentum + StepLR, Adam + cosine); Ember must
/// reproduce the loss of every step, per-parameter checksums after every step, and all
/// parameters after steps 1 and 10.
final class TrainingTests: XCTestCase {
    /// In steady state a training step (forward, backward, Adam) takes no tensor memory from
    /// the OS: every buffer, the GEMM's packing panels and the convolution's workspaces
    /// included, comes back from the caching allocator.
    func testTrainingStepAllocatesNothingFromTheOSInSteadyState() throws {
        for model in ["mlp", "cnn"] {
            let net = model == "mlp" ? FashionModels.mlp() : FashionModels.cnn()
            let opt = Adam(net.parameters(), lr: 1e-3)
            let x = model == "mlp" ? Tensor.randn([32, 784]) : Tensor.randn([32, 1, 28, 28])
            let y = Tensor.randint(0, 10, [32])
            func step() throws {
                opt.zeroGrad()
                try crossEntropy(net(x), y).backward()
                opt.step()
            }
            for _ in 0..<3 { try step() }
            let before = Ember.cpuMemoryStats
            for _ in 0..<5 { try step() }
            let after = Ember.cpuMemoryStats
            XCTAssertEqual(after.osAllocations, before.osAllocations, "\(model): a steady-state step asked the OS for memory")
            XCTAssertGreaterThan(after.cacheHits, before.cacheHits, "\(model): the steps allocated through the cache")
        }
    }

    func testTenStepsMatchPyTorch() throws {
        let url = URL(fileURLWithPath: fixturePath("training.safetensors"))
        let (ref, _) = try SafeTensors.load(url.path)
        let xs = ref["batches.x"]!, ys = ref["batches.y"]!
        for model in ["mlp", "cnn"] {
            for optName in ["sgd", "adam"] {
                let net = model == "mlp" ? FashionModels.mlp() : FashionModels.cnn()
                var initial = StateDict()
                for k in net.stateDict().keys { initial[k] = ref["\(model).init.\(k)"]! }
                try net.loadStateDict(initial)
                let opt: Optimizer, sched: LRScheduler
                if optName == "sgd" {
                    opt = SGD(net.parameters(), lr: 0.05, momentum: 0.9)
                    sched = StepLR(opt, stepSize: 3, gamma: 0.5)
                } else {
                    opt = Adam(net.parameters(), lr: 1e-3)
                    sched = CosineAnnealingLR(opt, tMax: 10)
                }
                let losses = ref["\(model).\(optName).losses"]!.toArray(Double.self)
                let sums = ref["\(model).\(optName).sums"]!
                for step in 0..<10 {
                    let x = model == "cnn" ? xs[step] : xs[step].squeeze(1)
                    let loss = crossEntropy(net(x), ys[step])
                    XCTAssertEqual(loss.item(), losses[step], accuracy: 2e-5 * Swift.max(1, losses[step]), "\(model)/\(optName) loss at step \(step + 1)")
                    opt.zeroGrad()
                    try loss.backward()
                    opt.step()
                    sched.step()
                    // Checksums of float32 parameters: tolerance grows with the number of elements summed.
                    let want = sums[step].toArray(Double.self)
                    for (i, p) in net.parameters().enumerated() {
                        XCTAssertEqual(p.to(.float64).sum().item(), want[i], accuracy: 1e-8 * Double(p.count) + 1e-5 * Swift.abs(want[i]),
                                       "\(model)/\(optName) checksum of parameter \(i) after step \(step + 1)")
                    }
                    if step == 0 || step == 9 {
                        for (k, t) in net.stateDict() {
                            let want = ref["\(model).\(optName).step\(step + 1).\(k)"]!.toArray(Double.self)
                            if optName == "adam" && step == 9 {
                                // Adam moves every weight by up to lr per step whatever its gradient's size, so
                                // where a gradient vanishes, rounding (FMA or not, BLAS or not) can change that
                                // step. Allow at most 0.01 % of a tensor's elements to differ, by at most 5·lr.
                                let got = t.toArray(Double.self)
                                var off = 0
                                for (g, w) in zip(got, want) where Swift.abs(g - w) > 1e-4 + 1e-3 * Swift.abs(w) {
                                    off += 1
                                    XCTAssertLessThanOrEqual(Swift.abs(g - w), 5e-3, "\(model)/adam \(k) after step 10")
                                }
                                XCTAssertLessThanOrEqual(off, Swift.max(1, got.count / 10_000), "\(model)/adam \(k): \(off) elements differ")
                            } else {
                                assertClose(t, want, scale: 5, "\(model)/\(optName) \(k) after step \(step + 1)")
                            }
                        }
                    }
                }
            }
        }
    }
}
