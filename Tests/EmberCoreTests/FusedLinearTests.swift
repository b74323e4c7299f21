import EmberCore
import XCTest

/// The fused `Tensor.linear` (bias + optional ReLU in the product's buffer) against the
/// composed ops it replaces (which the PyTorch fixtures check), forward and backward, and
/// against float64 finite differences.
final class FusedLinearTests: XCTestCase {
    func testMatchesComposedOps() {
        for dtype in [DType.float32, .float64] {
            for useBias in [true, false] {
                for relu in [true, false] {
                    Ember.manualSeed(3)
                    let x = Tensor.randn([7, 5], dtype: dtype, requiresGrad: true)
                    let w = Tensor.randn([4, 5], dtype: dtype, requiresGrad: true)
                    let b = useBias ? Tensor.randn([4], dtype: dtype, requiresGrad: true) : nil
                    let up = Tensor.randn([7, 4], dtype: dtype)
                    let fused = Tensor.linear(x, w, b, relu: relu)
                    var composed = x.matmul(w.t())
                    if let b { composed = composed + b }
                    if relu { composed = composed.relu() }
                    let tol = dtype == .float32 ? 1e-5 : 1e-12
                    XCTAssertLessThan((fused - composed).abs().max().item(), tol, "forward \(dtype) bias \(useBias) relu \(relu)")
                    let g1 = try! Autograd.grad(of: [(fused * up).sum()], wrt: [x, w] + (b.map { [$0] } ?? []))
                    let g2 = try! Autograd.grad(of: [(composed * up).sum()], wrt: [x, w] + (b.map { [$0] } ?? []))
                    for (a, c) in zip(g1, g2) {
                        XCTAssertLessThan((a! - c!).abs().max().item(), tol * 10, "backward \(dtype) bias \(useBias) relu \(relu)")
                    }
                }
            }
        }
    }

    func testFiniteDifferences() {
        Ember.manualSeed(4)
        let x = Tensor.randn([3, 4], dtype: .float64), w = Tensor.randn([2, 4], dtype: .float64), b = Tensor.randn([2], dtype: .float64)
        let up = Tensor.randn([3, 2], dtype: .float64)
        for (k, t) in [x, w, b].enumerated() {
            t.requiresGrad = true
            let analytic = try! Autograd.grad(of: [(Tensor.linear(x, w, b, relu: true) * up).sum()], wrt: [t])[0]!
            t.requiresGrad = false
            let eps = 1e-6
            for i in 0..<t.count {
                let flat = t.view([-1])
                let old = flat[i].item()
                flat[i] = Tensor(scalar: old + eps, dtype: .float64)
                let plus = (Tensor.linear(x, w, b, relu: true) * up).sum().item()
                flat[i] = Tensor(scalar: old - eps, dtype: .float64)
                let minus = (Tensor.linear(x, w, b, relu: true) * up).sum().item()
                flat[i] = Tensor(scalar: old, dtype: .float64)
                XCTAssertEqual(analytic.view([-1])[i].item(), (plus - minus) / (2 * eps), accuracy: 1e-6, "input \(k) element \(i)")
            }
        }
    }

    func testReluKeepsNaN() {
        let y = Tensor.linear(Tensor.zeros([1, 3]), Tensor.eye(3), Tensor([Float.nan, 1, -1]), relu: true)
        let v = y.toArray(Float.self)
        XCTAssertTrue(v[0].isNaN)
        XCTAssertEqual(Array(v[1...]), [1, 0])
    }
}
