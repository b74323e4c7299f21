import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// Optimizer steps on the GPU run as one fused kernel per parameter and match the CPU.
final class CUDAOptimizerTests: XCTestCase {
    func testFusedStepsMatchTheCPU() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        typealias Make = ([Tensor]) -> Optimizer
        let configs: [(String, Make)] = [
            ("Adam", { Adam($0, lr: 1e-2) }),
            ("Adam wd amsgrad", { Adam($0, lr: 1e-2, weightDecay: 0.1, amsgrad: true) }),
            ("AdamW", { AdamW($0, lr: 1e-2, weightDecay: 0.05) }),
            ("SGD", { SGD($0, lr: 0.1) }),
            ("SGD momentum dampening wd", { SGD($0, lr: 0.1, momentum: 0.9, dampening: 0.2, weightDecay: 0.01) }),
            ("SGD nesterov", { SGD($0, lr: 0.1, momentum: 0.9, nesterov: true) }),
        ]
        for dtype in [DType.float32, .float64] {
            for (name, make) in configs {
                Ember.manualSeed(5)
                let p0 = Tensor.randn([1000], dtype: dtype), grads = (0..<4).map { _ in Tensor.randn([1000], dtype: dtype) }
                let pc = p0.clone(), pg = p0.to(g)
                let oc = make([pc]), og = make([pg])
                for s in 0..<4 {
                    pc.grad = grads[s]
                    pg.grad = grads[s].to(g)
                    oc.step()
                    og.step()
                }
                let diff = (pg.to(.cpu) - pc).abs().max().item()
                XCTAssertLessThan(diff, dtype == .float32 ? 2e-6 : 1e-12, "\(name) \(dtype): GPU and CPU differ by \(diff)")
                XCTAssertGreaterThan((pc - p0).abs().max().item(), 1e-3, "\(name) did not move the parameter")
            }
        }
        // Gradient clipping on the device (no per-gradient read back) matches the CPU.
        for normType in [2.0, 1.0, .infinity] {
            Ember.manualSeed(8)
            let grads = [Tensor.randn([30, 4]), Tensor.randn([7]) * 3, Tensor.randn([2, 2, 2])]
            let pc = grads.map { Tensor.zerosLike($0).requiringGrad() }, pg = grads.map { Tensor.zeros($0.shape, device: g).requiringGrad() }
            for k in 0..<3 { pc[k].grad = grads[k].clone(); pg[k].grad = grads[k].to(g) }
            let tc = clipGradNorm(pc, maxNorm: 1.5, normType: normType)
            let tg = clipGradNormTensor(pg, maxNorm: 1.5, normType: normType)!
            XCTAssertEqual(tg.device, g)
            XCTAssertEqual(tg.item(), tc, accuracy: 1e-4 * tc, "clipGradNorm p=\(normType) total")
            for k in 0..<3 {
                XCTAssertLessThan((pg[k].grad!.to(.cpu) - pc[k].grad!).abs().max().item(), 1e-5, "clipGradNorm p=\(normType) gradient \(k)")
            }
        }
        // The fused kernels are what ran (the composed ops would give the same numbers).
        let p = Tensor.randn([10], device: g), grad = Tensor.randn([10], device: g)
        let m = Tensor.zeros([10], device: g), v = Tensor.zeros([10], device: g)
        XCTAssertTrue(FusedUpdate.adam(param: p, grad: grad, expAvg: m, expAvgSq: v, maxExpAvgSq: nil, lr: 0.1, beta1: 0.9,
                                       beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, bc1: 0.1, bc2: 0.001))
        XCTAssertTrue(FusedUpdate.sgd(param: p, grad: grad, momentumBuffer: m, lr: 0.1, momentum: 0.9, dampening: 0,
                                      nesterov: false, weightDecay: 0, firstStep: true))
        XCTAssertEqual(m.to(.cpu).toArray(Float.self), grad.to(.cpu).toArray(Float.self), "the first SGD step sets the buffer to the gradient")
        // A non-contiguous gradient takes the composed ops.
        XCTAssertFalse(FusedUpdate.sgd(param: p, grad: Tensor.randn([10, 2], device: g)[0..., 0], momentumBuffer: nil, lr: 0.1,
                                       momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, firstStep: false))
    }
}
