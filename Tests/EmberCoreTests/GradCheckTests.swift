import XCTest
@testable import EmberCore
import EmberTestSupport

/// Float64 central finite differences against Ember's analytic gradients, for every
/// differentiable op in the fixture table (the same op closures PyTorch is compared with).
final class GradCheckTests: XCTestCase {
    func testFiniteDifferencesForEveryDifferentiableOp() throws {
        let cases = TestFixtures.ops.cases.filter { c in
            c.grads != nil && c.inputs.contains { $0.dtype == .float64 && !$0.raw }
                && !c.name.contains("ties")  // a kink shared by three or more ties has no derivative
                && !c.name.contains("on_bounds")  // inputs exactly on clamp's bounds: kinks too
                && !c.name.hasPrefix("embedding_pad")  // the padding row's gradient is zero by definition
                && !(c.op == "toDType" && c.params.string("dtype") == "float32")  // rounds to float32
        }
        var checkedOps = Set<String>()
        var failures = 0
        for c in cases {
            let fn = opTable[c.op]!
            func loss(_ datas: [[Double]]) -> (Tensor, [Tensor]) {
                let built = c.inputs.enumerated().map { $0.element.build(datas[$0.offset]) }
                let outs = fn(built.map(\.view), c.params)
                var l: Tensor? = nil
                for (o, u) in zip(outs, c.upstream!) {
                    guard let u else { continue }
                    let term = (o * Tensor(u, shape: o.shape, dtype: o.dtype)).sum()
                    l = l.map { $0 + term } ?? term
                }
                return (l!, built.compactMap(\.leaf))
            }
            let base = c.inputs.map(\.data)
            let (l0, leaves) = loss(base)
            let analytic = try Autograd.grad(of: [l0], wrt: leaves)
            var leafIndex = 0
            for (k, input) in c.inputs.enumerated() where input.dtype.isFloatingPoint && !input.raw {
                defer { leafIndex += 1 }
                let a = analytic[leafIndex]?.toArray(Double.self) ?? [Double](repeating: 0, count: input.data.count)
                // At most 48 elements per input, spread over the tensor.
                let stride = Swift.max(1, input.data.count / 48)
                for i in Swift.stride(from: 0, to: input.data.count, by: stride) {
                    let eps = 1e-6
                    var plus = base, minus = base
                    plus[k][i] += eps
                    minus[k][i] -= eps
                    let fp = withNoGrad { loss(plus).0.item() }, fm = withNoGrad { loss(minus).0.item() }
                    let numeric = (fp - fm) / (2 * eps)
                    if Swift.abs(numeric - a[i]) > 1e-5 + 1e-4 * Swift.abs(numeric) {
                        failures += 1
                        XCTFail("\(c.name): input \(k) element \(i): analytic \(a[i]) vs numeric \(numeric)")
                        break
                    }
                }
            }
            checkedOps.insert(c.op)
        }
        XCTAssertEqual(failures, 0)
        let differentiable = Set(TestFixtures.ops.cases.filter { $0.grads != nil }.map(\.op))
        // A dtype cast's derivative is a cast back; float64 cannot finite-difference a rounding to
        // float32, so casts are covered by the PyTorch fixtures alone.
        // amax/amin/cummax/clampTensor cases here exist for their ties (kinks); their finite
        // differences run on PyTorch's OpInfo samples (OpInfoGradCheckTests).
        XCTAssertEqual(differentiable.subtracting(checkedOps), ["toDType", "amax", "amin", "cummax", "clampTensor"],
                       "ops without a float64 finite-difference check")
        XCTAssertGreaterThan(checkedOps.count, 80)
    }

    /// Second derivatives by finite differences of first derivatives (double backward).
    func testSecondDerivativesByFiniteDifferences() throws {
        let fns: [(String, (Tensor) -> Tensor)] = [
            ("exp", { $0.exp() }), ("tanh", { $0.tanh() }), ("sigmoid", { $0.sigmoid() }),
            ("x*sin(x)", { $0 * $0.sin() }), ("x^3/(1+x^2)", { $0.pow(3) / (1 + $0 * $0) }),
            ("gelu", { $0.gelu() }), ("silu", { $0.silu() }), ("softplus", { $0.softplus() }),
            ("log1p(x^2)", { ($0 * $0).log1p() }), ("sqrt(1+x^2)", { (1 + $0 * $0).sqrt() }),
        ]
        let x0: [Double] = [-1.3, -0.4, 0.2, 0.9, 1.7]
        for (name, f) in fns {
            let x = Tensor(x0, dtype: .float64, requiresGrad: true)
            let g = try Autograd.grad(of: [f(x).sum()], wrt: [x], createGraph: true)[0]!
            let gg = try Autograd.grad(of: [g.sum()], wrt: [x])[0]!.toArray(Double.self)
            for i in 0..<x0.count {
                func d1(_ v: Double) throws -> Double {
                    var xs = x0
                    xs[i] = v
                    let t = Tensor(xs, dtype: .float64, requiresGrad: true)
                    return try Autograd.grad(of: [f(t).sum()], wrt: [t])[0]!.toArray(Double.self)[i]
                }
                let numeric = (try d1(x0[i] + 1e-6) - d1(x0[i] - 1e-6)) / 2e-6
                XCTAssertEqual(gg[i], numeric, accuracy: 1e-5 + 1e-4 * Swift.abs(numeric), "\(name) at \(x0[i])")
            }
        }
        // Matmul: d/dA of sum((A·B)∘(A·B)) twice.
        let a = Tensor.randn([3, 4], dtype: .float64, requiresGrad: true)
        let b = Tensor.randn([4, 2], dtype: .float64)
        let ga = try Autograd.grad(of: [(a.matmul(b) * a.matmul(b)).sum()], wrt: [a], createGraph: true)[0]!
        let v = Tensor.randn([3, 4], dtype: .float64)
        let h = try Autograd.grad(of: [(ga * v).sum()], wrt: [a])[0]!
        // Analytic: d/dA <2(AB)Bᵀ, V> = 2 V B Bᵀ.
        assertClose(h, (v.matmul(b).matmul(b.t()) * 2).toArray(Double.self))
    }
}
