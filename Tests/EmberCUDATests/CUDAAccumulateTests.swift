import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// Accumulating index ops (index_add, scatter_add, max-pool backward with overlapping
/// windows) add many values into one element: on a GPU those adds run at once, so each
/// must be atomic in every dtype, and half-precision ones must add values, not bit patterns.
final class CUDAAccumulateTests: XCTestCase {
    func testAccumulatingOpsMatchTheCPUInEveryDType() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        Ember.manualSeed(4)
        // 300 slices added into 3: every destination receives about 100 values.
        let index = Tensor((0..<300).map { Int64($0 % 3) })
        for dtype in DType.allCases {
            let base = dtype == .bool ? Tensor.zeros([3, 4], dtype: .bool) : (Tensor.rand([3, 4]) * 4).floor().to(dtype)
            let src = dtype == .bool ? Tensor.rand([300, 4]).gt(0.5) : (Tensor.rand([300, 4]) * 4).floor().to(dtype)
            let tol = dtype == .float16 || dtype == .bfloat16 ? 1.0 : 0  // exact small integers up to 2^8 in bf16
            let cpu = base.indexAdd(0, index, src), gpu = base.to(g).indexAdd(0, index.to(g), src.to(g)).to(.cpu)
            XCTAssertLessThanOrEqual((gpu.to(.float64) - cpu.to(.float64)).abs().max().item(), tol, "indexAdd \(dtype)")
            let sIndex = Tensor((0..<1200).map { Int64($0 % 3) }).reshape([300, 4])
            let sc = base.scatterAdd(0, sIndex, src), sg = base.to(g).scatterAdd(0, sIndex.to(g), src.to(g)).to(.cpu)
            XCTAssertLessThanOrEqual((sg.to(.float64) - sc.to(.float64)).abs().max().item(), tol, "scatterAdd \(dtype)")
        }
        // Max-pool backward, 3×3 windows with stride 1: up to 9 windows pick one input.
        for dtype in [DType.float16, .bfloat16, .float32, .float64] {
            // One peak per plane at (4, 4): the 9 windows around it all pick it.
            let x = Tensor((0..<384).map { $0 % 64 == 36 ? Float(1) : 0 }).reshape([2, 3, 8, 8]).to(dtype)
            let xc = x.clone(), xg = x.to(g)
            xc.requiresGrad = true
            xg.requiresGrad = true
            try xc.maxPool2d(kernel: (3, 3), stride: (1, 1)).sum().backward()
            try xg.maxPool2d(kernel: (3, 3), stride: (1, 1)).sum().backward()
            XCTAssertEqual(xg.grad!.to(.cpu).to(.float64).toArray(Double.self), xc.grad!.to(.float64).toArray(Double.self), "maxPool2d backward \(dtype)")
            XCTAssertEqual(xc.grad!.to(.float64).max().item(), 9)
        }
    }
}
