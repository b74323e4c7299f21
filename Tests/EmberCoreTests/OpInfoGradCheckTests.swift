import XCTest
@testable import EmberCore
import EmberReference
import EmberTestSupport

/// Float64 central finite differences against Ember's analytic gradients on PyTorch's OpInfo
/// samples: every differentiable OpInfo op, up to 48 samples per op and 12 elements per input
/// per sample.
final class OpInfoGradCheckTests: XCTestCase {
    /// Ops a float64 difference cannot check: casts to a narrower dtype (the rounding is the
    /// function), and sorts of PyTorch's 8000-element sample, whose closest values are nearer
    /// than the step, so a step reorders them. PyTorch's own gradients check these.
    static let excluded: Set<String> = ["float", "half", "bfloat16", "sort", "msort"]

    /// How an input is read, as PyTorch's gradcheck wrappers say: ops that read one triangle
    /// of a symmetric matrix are differentiated along symmetric perturbations (PyTorch's
    /// gradient is the symmetric one); ops on a triangular factor along its read triangle.
    enum Structure { case plain, symmetric, lower, upper }
    static func structure(_ c: OpCase, input k: Int) -> Structure {
        let symmetric: Set<String> = ["linalg.cholesky", "linalg.cholesky_ex", "linalg.eigh", "linalg.eigvalsh"]
        if k == 0 && symmetric.contains(c.op) { return .symmetric }
        let call = OpCall([], c.params)
        if c.op == "cholesky_solve" && k == 1 { return (call.bool(2, "upper") ?? false) ? .upper : .lower }
        if c.op == "cholesky_inverse" && k == 0 { return (call.bool(1, "upper") ?? false) ? .upper : .lower }
        return .plain
    }

    func testFiniteDifferencesOnOpInfoSamples() throws {
        let cases = TestFixtures.opInfo.cases.filter { c in
            // The subgradients PyTorch picks at a norm's kink are conventions, not derivatives;
            // pinv's hermitian samples are not symmetric (PyTorch's gradcheck symmetrises them
            // first), so its gradient there is a formula's value, checked by the fixtures.
            c.grads != nil && c.name.contains("@float64") && !OpInfoGradCheckTests.excluded.contains(c.op)
                && !c.name.hasPrefix("linalg.norm.subgradients_at_zero") && !c.name.hasPrefix("linalg.pinv.hermitian")
                // max_unpool's plain samples repeat indices (a later value overwrites an earlier
                // one, whose gradient PyTorch still defines as the gathered one); its "grad"
                // variants have distinct indices.
                && !(c.op.hasPrefix("nn.functional.max_unpool") && !c.name.contains(".grad@"))
        }
        var checkedOps = Set<String>()
        var failedOps: [String: String] = [:]
        // Up to 48 samples per op (the pooling ops have hundreds of one formula's samples).
        var perOp: [String: Int] = [:]
        for c in cases where failedOps[c.op] == nil {
            perOp[c.op, default: 0] += 1
            if perOp[c.op]! > 48 { continue }
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
                // A float32 leaf of a float64 case (cov's aweights) cannot take a 1e-5 step.
                if input.dtype != .float64 { continue }
                let a = analytic[leafIndex]?.toArray(Double.self) ?? [Double](repeating: 0, count: input.data.count)
                let stride = Swift.max(1, input.data.count / 12)
                let structure = OpInfoGradCheckTests.structure(c, input: k)
                let n = input.shape.last ?? 1
                for i in Swift.stride(from: 0, to: input.data.count, by: stride) {
                    let (row, col) = ((i / n) % n, i % n)
                    // The mirrored element of a symmetric input moves with it.
                    let mirror = i - col + row - row * n + col * n
                    switch structure {
                    case .lower where col > row, .upper where col < row: continue
                    default: break
                    }
                    let expected = structure == .symmetric && row != col ? a[i] + a[mirror] : a[i]
                    // Five-point central difference (fourth order: steep functions such as
                    // pow with large exponents stay accurate).
                    let h = 1e-5 * Swift.max(1, Swift.abs(base[k][i]))
                    func f(_ step: Double) -> Double {
                        var d = base
                        d[k][i] += step
                        if structure == .symmetric && row != col { d[k][mirror] += step }
                        return withNoGrad { loss(d).0!.item() }
                    }
                    let d1 = (f(h) - f(-h)) / (2 * h), d2 = (f(2 * h) - f(-2 * h)) / (4 * h)
                    // A jump or kink within the step (round, fmod at a multiple): no derivative to check.
                    if Swift.abs(d1 - d2) > 1e-3 * (1 + Swift.abs(d1)) { continue }
                    let numeric = (4 * d1 - d2) / 3
                    // Rounding of a large loss over a small step bounds the difference's accuracy.
                    let noise = 1e-13 * Swift.abs(l0.item()) / h
                    if Swift.abs(numeric - expected) > 1e-5 + 1e-4 * Swift.abs(numeric) + noise {
                        failedOps[c.op] = "\(c.name): input \(k) element \(i): analytic \(expected) vs numeric \(numeric)"
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
