import XCTest
@testable import EmberCore

/// The factorizations on matrices larger than their block size (64), where the blocked paths
/// (GEMM trailing updates, blocked triangular solves, parallel Jacobi rounds) run: PyTorch's
/// OpInfo samples are at most 5 × 5. Each result is checked by what it must reconstruct.
final class DecompositionTests: XCTestCase {
    func maxError(_ a: Tensor, _ b: Tensor) -> Double { (a - b).abs().max().item() }

    func testCholeskyReconstructsLargeMatrices() {
        Ember.manualSeed(11)
        for n in [65, 150] {
            let x = Tensor.randn([n, n], dtype: .float64)
            let a = x.matmul(x.mT) + Tensor.eye(n, dtype: .float64) * Double(n)
            let l = Linalg.cholesky(a)
            XCTAssertLessThan(maxError(l.matmul(l.mT), a), 1e-10 * Double(n), "n = \(n)")
            XCTAssertEqual(maxError(l.triu(diagonal: 1), Tensor.zerosLike(l)), 0)
            let u = Linalg.cholesky(a, upper: true)
            XCTAssertLessThan(maxError(u.mT.matmul(u), a), 1e-10 * Double(n))
        }
    }

    func testLUAndSolveReconstructLargeMatrices() {
        Ember.manualSeed(12)
        for (m, n) in [(150, 150), (150, 130), (100, 170)] {
            let a = Tensor.randn([m, n], dtype: .float64)
            let (p, l, u) = Linalg.lu(a)
            XCTAssertLessThan(maxError(p.matmul(l).matmul(u), a), 1e-11 * Double(max(m, n)), "\(m) x \(n)")
        }
        let a = Tensor.randn([2, 150, 150], dtype: .float64) + Tensor.eye(150, dtype: .float64) * 10
        let b = Tensor.randn([2, 150, 70], dtype: .float64)
        XCTAssertLessThan(maxError(a.matmul(Linalg.solve(a, b)), b), 1e-10)
        XCTAssertLessThan(maxError(Linalg.solve(a, b.mT, left: false).matmul(a), b.mT), 1e-10)
        XCTAssertLessThan(maxError(Linalg.inv(a).matmul(a), Tensor.eye(150, dtype: .float64).expand([2, 150, 150])), 1e-10)
    }

    func testTriangularSolvesOnBothSidesOfLargeSystems() {
        Ember.manualSeed(13)
        let n = 140
        let t = Tensor.randn([n, n], dtype: .float64) * 0.1 + Tensor.eye(n, dtype: .float64) * 2
        let b = Tensor.randn([n, 90], dtype: .float64)
        for upper in [false, true] {
            let tri = upper ? t.triu() : t.tril()
            for unit in [false, true] {
                let a = unit ? tri - tri.diagonal(offset: 0, dim1: 0, dim2: 1).diagEmbed() + Tensor.eye(n, dtype: .float64) : tri
                let x = Linalg.solveTriangular(t, b, upper: upper, unitriangular: unit)
                XCTAssertLessThan(maxError(a.matmul(x), b), 1e-10, "left upper \(upper) unit \(unit)")
                let y = Linalg.solveTriangular(t, b.mT, upper: upper, left: false, unitriangular: unit)
                XCTAssertLessThan(maxError(y.matmul(a), b.mT), 1e-10, "right upper \(upper) unit \(unit)")
            }
        }
    }

    func testSVDAndEighReconstructLargerMatrices() {
        Ember.manualSeed(14)
        for (m, n) in [(90, 70), (70, 90), (65, 65)] {
            let a = Tensor.randn([m, n], dtype: .float64)
            let (u, s, vh) = Linalg.svd(a, fullMatrices: true)
            let k = min(m, n)
            let recon = (u.narrow(-1, start: 0, length: k) * s.unsqueeze(0)).matmul(vh.narrow(0, start: 0, length: k))
            XCTAssertLessThan(maxError(recon, a), 1e-11 * Double(max(m, n)), "\(m) x \(n)")
            XCTAssertLessThan(maxError(u.mT.matmul(u), Tensor.eye(m, dtype: .float64)), 1e-12 * Double(m))
            XCTAssertLessThan(maxError(vh.matmul(vh.mT), Tensor.eye(n, dtype: .float64)), 1e-12 * Double(n))
            let sv = s.toArray(Double.self)
            XCTAssertEqual(sv, sv.sorted(by: >))
        }
        let x = Tensor.randn([80, 80], dtype: .float64)
        let a = x + x.mT
        let (w, v) = Linalg.eigh(a)
        XCTAssertLessThan(maxError((v * w.unsqueeze(0)).matmul(v.mT), a), 1e-11 * 80)
        let wv = w.toArray(Double.self)
        XCTAssertEqual(wv, wv.sorted())
    }

    func testFloat32FactorizationsMatchFloat64() {
        Ember.manualSeed(15)
        let x = Tensor.randn([100, 100], dtype: .float64)
        let a = x.matmul(x.mT) + Tensor.eye(100, dtype: .float64) * 100
        XCTAssertLessThan(maxError(Linalg.cholesky(a.to(.float32)).to(.float64), Linalg.cholesky(a)), 1e-4)
        XCTAssertLessThan(maxError(Linalg.svdvals(x.to(.float32)).to(.float64), Linalg.svdvals(x)), 1e-4)
    }
}
