import XCTest
@testable import EmberCore
import EmberTestSupport

/// Float64 central finite differences against Ember's analytic gradients on PyTorch's OpInfo
/// samples: every differentiable OpInfo op, up to 12 elements per input per sample.
final class OpInfoGradCheckTests: XCTestCase {
    /// Ops a float64 difference cannot check: casts to a narrower dtype (the rounding is the
    /// function), and sorts of PyTorch's 8000-element sample, whose closest values are nearer
    /// than the step, so a step reorders them. PyTorch's own gradients check these.
    static let excluded: Set<String> = ["float", "half", "bfloat16", "sort", "msort"]

    func testFiniteDifferencesOnOpInfoSamples() throws {
        let cases = TestFixtures.opInfo.cases.filter { c in
            c.grads != nil && c.name.contains("@float64") && !OpInfoGradCheckTests.excluded.contains(c.op)
        }
        var checkedOps = Set<String>()
        var failedOps: [String: String] = [:]
        for c in cases where failedOps[c.op] == nil {
            let fn = opInfoTable[c.op]!
            func loss(_ datas: [[Double]]) -> (Tensor?, [Tensor]) {
                let built = c.inputs.enumerated().map { $0.element.build(datas[$0.offset]) }
                let outs = fn(OpCall(built.map(\.view), c.params))
                var l: Tensor? = nil
                for (o, u) in zip(outs, c.upstream!) {
                    guard let u, o.dtype.isFloatingPoint else { continue }
                    let term = (o.to(.float64) * Tensor(u, shape: o.shape, dtype: .float64)).sum()
                    l = l.map { $0 + term } ?? term
                }
                return (l, built.compactMap(\.leaf))
            }
            let base = c.inputs.map(\.data)
            let (l0, leaves) = loss(base)
            guard let l0, l0.requiresGrad else { continue }
            let analytic = try Autograd.grad(of: [l0], wrt: leaves)
            var leafIndex = 0
            inputs: for (k, input) in c.inputs.enumerated() where input.dtype.isFloatingPoint && !input.raw {
                defer { leafIndex += 1 }
                let a = analytic[leafIndex]?.toArray(Double.self) ?? [Double](repeating: 0, count: input.data.count)
                let stride = Swift.max(1, input.data.count / 12)
                for i in Swift.stride(from: 0, to: input.data.count, by: stride) {
                    // Five-point central difference (fourth order: steep functions such as
                    // pow with large exponents stay accurate).
                    let h = 1e-5 * Swift.max(1, Swift.abs(base[k][i]))
                    func f(_ step: Double) -> Double {
                        var d = base
                        d[k][i] += step
                        return withNoGrad { loss(d).0!.item() }
                    }
                    let d1 = (f(h) - f(-h)) / (2 * h), d2 = (f(2 * h) - f(-2 * h)) / (4 * h)
                    // A jump or kink within the step (round, fmod at a multiple): no derivative to check.
                    if Swift.abs(d1 - d2) > 1e-3 * (1 + Swift.abs(d1)) { continue }
                    let numeric = (4 * d1 - d2) / 3
                    // Rounding of a large loss over a small step bounds the difference's accuracy.
                    let noise = 1e-13 * Swift.abs(l0.item()) / h
                    if Swift.abs(numeric - a[i]) > 1e-5 + 1e-4 * Swift.abs(numeric) + noise {
                        failedOps[c.op] = "\(c.name): input \(k) element \(i): analytic \(a[i]) vs numeric \(numeric)"
                        break inputs
                    }
                }
            }
            checkedOps.insert(c.op)
        }
        for (_, f) in failedOps.sorted(by: { $0.key < $1.key }) { XCTFail(f) }
        XCTAssertGreaterThan(checkedOps.count, 200)
    }
}
