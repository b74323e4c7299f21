import Foundation
import XCTest
@testable import EmberCore
import EmberTestSupport

struct Boom: Error, Equatable { let n: Int }

final class AutogradTests: XCTestCase {
    func testGradAccumulatesAndGraphIsFreed() throws {
        let x = Tensor([1, 2, 3] as [Float], requiresGrad: true)
        let y = (x * x).sum()
        try y.backward()
        assertClose(x.grad!, [2, 4, 6])
        XCTAssertThrowsError(try y.backward()) { e in
            guard case EmberError.autograd(let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("backward through the graph a second time"), m)
        }
        let z = (x * 3).sum()
        try z.backward(retainGraph: true)
        try z.backward()
        assertClose(x.grad!, [8, 10, 12])
    }

    /// A gradient that nothing else holds becomes the leaf's `.grad` without a copy; one
    /// shared by two leaves (an addition hands the same tensor to both) is copied for one of
    /// them, so each leaf's gradient is its own.
    func testGradientsAreTakenOverOnlyWhenNothingElseHoldsThem() throws {
        let a = Tensor([1.0, 2, 3], requiresGrad: true), b = Tensor([4.0, 5, 6], requiresGrad: true)
        try ((a + b) * 2).sum().backward()
        XCTAssertEqual(a.grad!.toArray(Double.self), [2, 2, 2])
        XCTAssertEqual(b.grad!.toArray(Double.self), [2, 2, 2])
        XCTAssertFalse(a.grad!.storage === b.grad!.storage, "two leaves share one gradient buffer")
        a.grad!.mul_(5)
        XCTAssertEqual(b.grad!.toArray(Double.self), [2, 2, 2])
        // A gradient the caller passed in stays the caller's.
        let x = Tensor([1.0, 2], requiresGrad: true), up = Tensor([3.0, 4])
        try x.backward(gradient: up)
        XCTAssertFalse(x.grad!.storage === up.storage)
        // A linear layer's weight gets a contiguous gradient (the transposed product's).
        let w = Tensor.randn([3, 5]).requiringGrad(), inp = Tensor.randn([4, 5])
        try linear(inp, w).sum().backward()
        XCTAssertTrue(w.grad!.isContiguous)
        XCTAssertLessThan((w.grad! - Tensor.ones([4, 3]).t().matmul(inp)).abs().max().item(), 1e-5)
    }

    /// ReLU's backward passes the gradient where the output is positive and 0 elsewhere,
    /// even for an infinite gradient (PyTorch's threshold_backward: [0, 0, inf]), in one
    /// kernel; double backward still differentiates through it.
    func testReluBackwardIsAWhereNotAProduct() throws {
        for dtype in [DType.float32, .float64] {
            let x = Tensor([-1.0, 0.0, 2.0, -0.0], dtype: dtype, requiresGrad: true)
            let y = x.relu()
            try y.backward(gradient: Tensor([Double.infinity, .infinity, .infinity, 3], dtype: dtype))
            XCTAssertEqual(x.grad!.to(.float64).toArray(Double.self), [0, 0, .infinity, 0])
        }
        let x = Tensor([-1.0, 0.5, 2.0], dtype: .float64, requiresGrad: true)
        let g = try Autograd.grad(of: [(x.relu() * x.relu()).sum()], wrt: [x], createGraph: true)[0]!   // 2·relu(x)
        XCTAssertEqual(g.toArray(Double.self), [0, 1, 4])
        try g.sum().backward()
        XCTAssertEqual(x.grad!.toArray(Double.self), [0, 2, 2])
    }

    func testNonScalarNeedsGradient() throws {
        let x = Tensor([1, 2] as [Float], requiresGrad: true)
        let y = x * 2
        XCTAssertThrowsError(try y.backward())
        try y.backward(gradient: Tensor([1, -1] as [Float]))
        assertClose(x.grad!, [2, -2])
        XCTAssertThrowsError(try Tensor([1] as [Float]).sum().backward())  // does not require grad
    }

    func testLeafGradientsAreNotAliased() throws {
        let x = Tensor([1, 2] as [Float], requiresGrad: true)
        let y = Tensor([3, 4] as [Float], requiresGrad: true)
        try (x + y).sum().backward()
        withNoGrad { x.grad!.mul_(5) }
        assertClose(y.grad!, [1, 1])
        assertClose(x.grad!, [5, 5])
    }

    func testDetachAndNoGradArePerThread() throws {
        let x = Tensor([1, 2] as [Float], requiresGrad: true)
        XCTAssertFalse(x.detach().requiresGrad)
        let y = withNoGrad { x * 2 }
        XCTAssertFalse(y.requiresGrad)
        // Another thread in no-grad mode leaves this one recording.
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            withNoGrad {
                entered.signal()
                release.wait()
            }
        }
        entered.wait()
        XCTAssertTrue(GradMode.isEnabled)
        XCTAssertTrue((x * 2).requiresGrad)
        release.signal()
        withNoGrad { withGrad { XCTAssertTrue((x * 2).requiresGrad) } }
    }

    func testVersionCounterMakesBackwardThrow() throws {
        let x = Tensor([0.5, 1.0] as [Float], requiresGrad: true)
        let y = x.exp()
        y.add_(1)  // exp saved its output; it is now modified
        XCTAssertThrowsError(try y.sum().backward()) { e in
            guard case EmberError.autograd(let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("modified by an inplace operation"), m)
            XCTAssertTrue(m.contains("ExpBackward"), m)
        }
        XCTAssertNil(x.grad)
        // A saved non-grad input modified in place.
        let w = Tensor([2, 3] as [Float], requiresGrad: true)
        let c = Tensor([1, 1] as [Float])
        let z = (w * c).sum()
        c.mul_(2)
        XCTAssertThrowsError(try z.backward())
        // In-place ops that need nothing saved are recorded and give correct gradients.
        let a = Tensor([1, 2] as [Float], requiresGrad: true)
        let b = a * 3
        b.add_(10).mul_(2)
        try b.sum().backward()
        assertClose(a.grad!, [6, 6])
        assertClose(b, [26, 32])
    }

    func testHooksAndRetainGrad() throws {
        let x = Tensor([1, 2] as [Float], requiresGrad: true)
        x.registerHook { $0 * 10 }
        let h = x * x
        h.retainGrad()
        var seen: [Float] = []
        h.registerHook { g in seen = g.scalars; return g + 1 }
        try h.sum().backward()
        XCTAssertEqual(seen, [1, 1])
        assertClose(h.grad!, [2, 2])
        assertClose(x.grad!, [40, 80])  // (1+1) * 2x * 10
    }

    func testCustomFunction() throws {
        let x = Tensor([1, 2, 3] as [Double], dtype: .float64, requiresGrad: true)
        let y = try CustomFunction.apply([x], name: "Cube", forward: { $0[0] * $0[0] * $0[0] },
                                     backward: { g, inputs, _ in [g * 3 * inputs[0] * inputs[0]] })
        try y.sum().backward()
        assertClose(x.grad!, [3, 12, 27])
    }

    /// The error contract: an error thrown during backward (a custom function, a hook, a
    /// version-counter violation) reaches the caller, changes no gradient, holds no lock,
    /// and the next backward works. 1000 times, then from several threads at once.
    func testErrorsDuringBackwardNeverDeadlock() throws {
        func round(_ i: Int) throws {
            let w = Tensor([1, 2, 3] as [Float], requiresGrad: true)
            let failing = try CustomFunction.apply([w], name: "Failing", forward: { $0[0] * 2 },
                                               backward: { _, _, _ in throw Boom(n: i) })
            let loss = (failing * w).sum()
            XCTAssertThrowsError(try loss.backward()) { XCTAssertEqual($0 as? Boom, Boom(n: i)) }
            XCTAssertNil(w.grad, "no partial gradient after an error")
            // A throwing hook.
            let v = Tensor([1, 1] as [Float], requiresGrad: true)
            v.registerHook { _ in throw Boom(n: -i) }
            XCTAssertThrowsError(try (v * 2).sum().backward()) { XCTAssertEqual($0 as? Boom, Boom(n: -i)) }
            XCTAssertNil(v.grad)
            // A version-counter violation.
            let e = w.exp()
            e.mul_(1)
            XCTAssertThrowsError(try e.sum().backward())
            // The next backward on a fresh graph is correct.
            let ok = (w * w).sum()
            try ok.backward()
            XCTAssertEqual(w.grad!.scalars, [2, 4, 6])
        }
        for i in 0..<1000 { try round(i) }
        let threads = 4, perThread = 250
        let group = DispatchGroup()
        let errors = Lock()
        var unexpected: [Error] = []
        for t in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for i in 0..<perThread {
                    do { try round(t * perThread + i) } catch { errors.withLock { unexpected.append(error) } }
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success, "backward deadlocked")
        XCTAssertTrue(unexpected.isEmpty, "\(unexpected)")
    }

    func testDoubleBackwardThroughGrad() throws {
        let x = Tensor([0.5, -1.0, 2.0] as [Double], dtype: .float64, requiresGrad: true)
        let y = (x * x * x).sum()
        let g = try Autograd.grad(of: [y], wrt: [x], createGraph: true)[0]!
        assertClose(g, [0.75, 3, 12])
        try g.sum().backward()
        assertClose(x.grad!, [3, -6, 12])  // 6x
        // createGraph through backward() leaves a differentiable .grad.
        let a = Tensor([1.5] as [Double], dtype: .float64, requiresGrad: true)
        try a.pow(4).sum().backward(createGraph: true)
        XCTAssertTrue(a.grad!.requiresGrad)
        let first = a.grad!
        a.grad = nil
        try first.sum().backward()
        assertClose(a.grad!, [27])  // 12 a²
    }

    func testBroadcastGradientsReduceToInputShapes() throws {
        let a = Tensor.randn([3, 1], requiresGrad: true)
        let b = Tensor.randn([4], requiresGrad: true)
        let s = Tensor(scalar: Float(2), requiresGrad: true)
        try (a * b + s).sum().backward()
        XCTAssertEqual(a.grad!.shape, [3, 1])
        XCTAssertEqual(b.grad!.shape, [4])
        XCTAssertEqual(s.grad!.shape, [])
        assertClose(s.grad!, [12])
        assertClose(a.grad!, Array(repeating: Double(b.sum().item()), count: 3))
    }

    func testMixedDtypeGradientsKeepInputDtype() throws {
        let a = Tensor([1, 2] as [Float], requiresGrad: true)
        let b = Tensor([3, 4] as [Double], dtype: .float64, requiresGrad: true)
        let y = a * b
        XCTAssertEqual(y.dtype, .float64)
        try y.sum().backward()
        XCTAssertEqual(a.grad!.dtype, .float32)
        XCTAssertEqual(b.grad!.dtype, .float64)
        assertClose(a.grad!, [3, 4])
    }
}
