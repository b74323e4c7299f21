import EmberCore
@testable import EmberCUDA
import EmberNN
import Foundation
import XCTest


/// cuDNN's heuristics are asked once per convolution shape: later passes reuse the plan.
final class CUDAConvolutionPlanTests: XCTestCase {
    func testPlansAreBuiltOncePerShape() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        guard let dnn = Ember.CUDA.state.cudnn else { throw XCTSkip("cuDNN not loaded: \(Ember.CUDA.state.cudnnStatus)") }
        let g = Device.cuda(0)
        Ember.manualSeed(2)
        let x = Tensor.randn([3, 2, 9, 9]), w = Tensor.randn([4, 2, 3, 3])
        let want = conv2d(x, w, padding: .explicit(1, 1))
        func pass() -> Tensor {
            let xg = x.to(g).requiringGrad(), wg = w.to(g).requiringGrad()
            let y = conv2d(xg, wg, padding: .explicit(1, 1))
            try! (y * y).sum().backward()
            XCTAssertNotNil(xg.grad)
            XCTAssertNotNil(wg.grad)
            return y
        }
        let before = dnn.plansBuilt
        let y1 = pass()
        XCTAssertEqual(dnn.plansBuilt - before, 3, "forward, backward data and backward filter each build a plan")
        for _ in 0..<3 { _ = pass() }
        XCTAssertEqual(dnn.plansBuilt - before, 3, "the same shapes asked cuDNN's heuristics again")
        XCTAssertLessThan((y1.to(.cpu) - want).abs().max().item(), 1e-4)
    }
}

