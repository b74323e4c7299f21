import Foundation
import XCTest
@testable import EmberCore
import EmberTestSupport
import EmberCPU

final class RandomTests: XCTestCase {
    func testSeedsReproduceAndGeneratorsAreIndependent() {
        Ember.manualSeed(42)
        let a = Tensor.randn([100])
        Ember.manualSeed(42)
        XCTAssertEqual(Tensor.randn([100]).scalars, a.scalars)
        let g1 = Generator(seed: 7), g2 = Generator(seed: 7)
        _ = Tensor.rand([5])  // the default generator does not disturb explicit ones
        XCTAssertEqual(Tensor.rand([10], generator: g1).scalars, Tensor.rand([10], generator: g2).scalars)
        XCTAssertNotEqual(Tensor.rand([10], generator: Generator(seed: 8)).scalars, Tensor.rand([10], generator: Generator(seed: 9)).scalars)
    }

    func testDistributions() {
        let g = Generator(seed: 1)
        let u = Tensor.rand([100_000], dtype: .float64, generator: g)
        XCTAssertGreaterThanOrEqual(u.min().item(), 0)
        XCTAssertLessThan(u.max().item(), 1)
        XCTAssertEqual(u.mean().item(), 0.5, accuracy: 0.01)
        let n = Tensor.randn([100_000], dtype: .float64, generator: g)
        XCTAssertEqual(n.mean().item(), 0, accuracy: 0.02)
        XCTAssertEqual(n.std().item(), 1, accuracy: 0.02)
        let r = Tensor.randint(-3, 4, [10_000], generator: g)
        XCTAssertEqual(r.dtype, .int64)
        XCTAssertEqual(Set(r.toArray(Int.self)), Set(-3...3))
        let p = Tensor.randperm(50, generator: g).toArray(Int.self)
        XCTAssertEqual(p.sorted(), Array(0..<50))
        XCTAssertNotEqual(p, Array(0..<50))
        let b = Tensor.bernoulli([20_000], p: 0.3, generator: g)
        XCTAssertEqual(b.mean().item(), 0.3, accuracy: 0.02)
        let probs = Tensor([0, 1, 0.5] as [Float]).expand([10_000, 3]).contiguous()
        let s = probs.bernoulli(generator: g).mean(dim: 0).scalars
        XCTAssertEqual(s[0], 0)
        XCTAssertEqual(s[1], 1)
        XCTAssertEqual(s[2], 0.5, accuracy: 0.03)
    }
}
