import XCTest
import Ember

/// The README's tour, compiled and run as written.
final class ReadmeTests: XCTestCase {
    func testTour() throws {
        let x = Tensor([[1, 2], [3, 4]] as [[Float]], requiresGrad: true)
        let w = Tensor.randn([2, 3], requiresGrad: true)
        let b = Tensor.zeros([3], requiresGrad: true)
        Ember.manualSeed(42)
        let r = Tensor.arange(0, 12).reshape([3, 4])

        let y = (x.matmul(w) + b).relu()
        let loss = (y * y).mean() + 0.1 * w.norm()
        try loss.backward()
        XCTAssertEqual(w.grad!.shape, [2, 3])

        r[1] = Tensor.zeros([4], dtype: .int64)
        let col = r[.all, 2]
        let evens = r[.all, .range(0, nil, step: 2)]
        let block = r[0..<2, 1...]
        XCTAssertEqual(r.toArray(Int.self), [0, 1, 2, 3, 0, 0, 0, 0, 8, 9, 10, 11])
        XCTAssertEqual(col.toArray(Int.self), [2, 0, 10])
        XCTAssertEqual(evens.toArray(Int.self), [0, 2, 0, 0, 8, 10])
        XCTAssertEqual(block.toArray(Int.self), [1, 2, 3, 0, 0, 0])

        let before = w.scalars
        withNoGrad { w.sub_(w.grad!, alpha: 0.1) }
        XCTAssertNotEqual(w.scalars, before)

        let g = try Autograd.grad(of: [(x * x * x).sum()], wrt: [x], createGraph: true)[0]!
        let cube = try CustomFunction.apply([x], forward: { $0[0] * $0[0] * $0[0] },
                                            backward: { grad, inputs, _ in [grad * 3 * inputs[0] * inputs[0]] })
        XCTAssertEqual(g.scalars, [3, 12, 27, 48])
        XCTAssertEqual(cube.scalars, [1, 8, 27, 64])
    }
}
