import Foundation
import XCTest
@testable import EmberCore
import EmberTestSupport

final class ViewTests: XCTestCase {
    /// `copy_(_:scaledBy:)` writes src · scale into a view in one pass, casting to the
    /// destination's dtype, and leaves the rest of the base alone.
    func testScaledCopyIntoAView() {
        let base = Tensor.zeros([10])
        let src = Tensor([1, 2, 3, 4] as [Double])  // float64 source into a float32 view
        base[3..<7].copy_(src, scaledBy: 0.5)
        XCTAssertEqual(base.toArray(Float.self), [0, 0, 0, 0.5, 1, 1.5, 2, 0, 0, 0])
        let big = Tensor.randn([100_003])
        let dst = Tensor.zeros([100_003])
        dst.copy_(big, scaledBy: 1.0 / 3)
        XCTAssertNil(mismatch(dst.toArray(Double.self), big.toArray(Double.self).map { $0 / 3 }, .float32))
        for half in [DType.float16, .bfloat16] {
            let h = Tensor.zeros([5], dtype: half)
            h.copy_(Tensor([2, 4, 6, 8, 10] as [Float]), scaledBy: 0.25)
            XCTAssertEqual(h.toArray(Double.self), [0.5, 1, 1.5, 2, 2.5], "\(half)")
        }
    }

    func testWritesThroughViewsReachTheBase() {
        let base = Tensor.zeros([3, 4])
        base[1].fill_(5)
        base.t()[2].add_(1)  // column 2
        base.narrow(1, start: 0, length: 2).mul_(2)
        base[2, 3] = Tensor(scalar: Float(9))
        XCTAssertEqual(base.scalars, [0, 0, 1, 0, 10, 10, 6, 5, 0, 0, 1, 9])
        let r = base.reshape([12])
        XCTAssertTrue(r.storage === base.storage)
        r[0..<2] = Tensor([7, 8] as [Float])
        XCTAssertEqual(base[0].scalars, [7, 8, 1, 0])
        base[.all, .range(nil, nil, step: 2)] = Tensor.full([3, 2], -1)
        XCTAssertEqual(base.scalars, [-1, 8, -1, 0, -1, 10, -1, 5, -1, 0, -1, 9])
    }

    func testViewsShareStorageAndCopiesDoNot() {
        let x = Tensor.arange(0, 24, dtype: .float32).reshape([2, 3, 4])
        for v in [x.permute(2, 0, 1), x.transpose(0, 1), x.select(1, 2), x.narrow(2, start: 1, length: 2),
                  x.unsqueeze(0), x.flatten(), x[1], x[.ellipsis, 0], x.split(2, dim: 2)[1], x.chunk(3, dim: 1)[2]] {
            XCTAssertTrue(v.storage === x.storage)
        }
        XCTAssertFalse(x.permute(2, 0, 1).contiguous().storage === x.storage)
        XCTAssertTrue(x.contiguous() === x)
        XCTAssertEqual(x[.ellipsis, 0].scalars, [0, 4, 8, 12, 16, 20])
        XCTAssertEqual(x[.newAxis].shape, [1, 2, 3, 4])
        XCTAssertEqual(x[1, 2].scalars, [20, 21, 22, 23])
        XCTAssertEqual(x[0, 1..<3, 2...].scalars, [6, 7, 10, 11])
        XCTAssertEqual(x[0, ..<1, ...1].scalars, [0, 1])
        XCTAssertEqual(x.permute(2, 0, 1).contiguous().reshape([4, 6])[1].scalars, [1, 5, 9, 13, 17, 21])
    }

    func testExpandIsStrideZeroAndReshapeOfNonContiguousCopies() {
        let a = Tensor([1, 2, 3] as [Float]).reshape([3, 1])
        let e = a.expand([3, 4])
        XCTAssertEqual(e.strides, [1, 0])
        XCTAssertEqual(e.sum(dim: 1).scalars, [4, 8, 12])
        let t = Tensor.arange(0, 6, dtype: .float32).reshape([2, 3]).t()
        let r = t.reshape([6])
        XCTAssertFalse(r.storage === t.storage)
        XCTAssertEqual(r.scalars, [0, 3, 1, 4, 2, 5])
    }

    func testJoinsAndSplits() {
        let a = Tensor([[1, 2], [3, 4]] as [[Float]]), b = Tensor([[5, 6]] as [[Float]])
        XCTAssertEqual(Tensor.cat([a, b]).scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor.cat([a, a], dim: 1).shape, [2, 4])
        XCTAssertEqual(Tensor.stack([a, a], dim: 2).shape, [2, 2, 2])
        let parts = Tensor.arange(0, 7, dtype: .float32).split(3)
        XCTAssertEqual(parts.map(\.shape), [[3], [3], [1]])
        XCTAssertEqual(Tensor.arange(0, 7, dtype: .float32).split(sizes: [2, 5]).map(\.count), [2, 5])
        XCTAssertEqual(Tensor.arange(0, 6, dtype: .float32).chunk(4).map(\.count), [2, 2, 2])
    }

    func testCreationFromSwiftValues() {
        let x = Tensor([[1, 2, 3], [4, 5, 6]] as [[Double]])
        XCTAssertEqual(x.dtype, .float32)  // like Python floats in torch.tensor
        XCTAssertEqual(Tensor([1, 2] as [Int]).dtype, .int64)
        XCTAssertEqual(Tensor([true, false]).dtype, .bool)
        XCTAssertEqual(Tensor([[[1, 2]], [[3, 4]]] as [[[Float]]]).shape, [2, 1, 2])
        XCTAssertEqual(Tensor(scalar: 3.5, dtype: .float64).item(), 3.5)
        XCTAssertEqual(Tensor.full([2], 7, dtype: .int32).toArray(Int32.self), [7, 7])
        XCTAssertEqual(Tensor.onesLike(x, dtype: .uint8).toArray(UInt8.self), [1, 1, 1, 1, 1, 1])
        XCTAssertEqual(Tensor.zerosLike(x).shape, [2, 3])
        XCTAssertEqual(Tensor.fullLike(x, 2).sum().item(), 12)
        XCTAssertEqual(Tensor.emptyLike(x).shape, [2, 3])
        XCTAssertEqual(Tensor([Int64.max, Int64.min + 1]).toArray(Int64.self), [Int64.max, Int64.min + 1])
        XCTAssertEqual("\(Tensor([[1, 2], [3, 4]] as [[Float]]))", "tensor([[1., 2.],\n        [3., 4.]])")
    }
}

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

final class GEMMTests: XCTestCase {
    /// The packed kernel against a float64 triple loop: edge tiles, k and n blocking
    /// boundaries, transposed operands read in place, one thread and all threads.
    func testPackedGEMMAgainstReference() {
        let shapes = [(1, 1, 1), (7, 13, 5), (6, 8, 1), (37, 70, 45), (100, 129, 257), (13, 3100, 9), (200, 150, 600)]
        for (m, n, k) in shapes {
            for transA in [false, true] {
                for threads in [1, 4] {
                    let a = Tensor.randn(transA ? [k, m] : [m, k]), b = Tensor.randn([k, n])
                    let av = transA ? a.t() : a
                    let ref = av.to(.float64).toArray(Double.self), rb = b.to(.float64).toArray(Double.self)
                    var want = [Double](repeating: 0, count: m * n)
                    for i in 0..<m { for p in 0..<k { let x = ref[i * k + p]; for j in 0..<n { want[i * n + j] += x * rb[p * n + j] } } }
                    let saved = Ember.numThreads
                    Ember.numThreads = threads
                    let got = av.matmul(b)
                    Ember.numThreads = saved
                    XCTAssertNil(mismatch(got.toArray(Double.self), want, .float32, scale: Double(k).squareRoot()),
                                 "\(m)x\(n)x\(k) transA=\(transA) threads=\(threads)")
                    let d = av.to(.float64).matmul(b.to(.float64))
                    XCTAssertNil(mismatch(d.toArray(Double.self), want, .float64, scale: 10))
                }
            }
        }
    }

    /// Every instruction-set level gives the reference result (forcing the baseline proves
    /// the portable path computes correctly with no AVX kernel involved).
    func testEveryISALevel() {
        let saved = CPUFeatures.active
        defer { CPUFeatures.active = saved }
        let a = Tensor.randn([45, 67]), b = Tensor.randn([67, 53])
        let want = a.to(.float64).matmul(b.to(.float64)).toArray(Double.self)
        let savedKernel = GEMM.avx512MicroKernel, savedBLAS = GEMM.useBLAS
        defer { GEMM.avx512MicroKernel = savedKernel; GEMM.useBLAS = savedBLAS }
        GEMM.useBLAS = false
        let big = Tensor.randn([131, 300]), bigB = Tensor.randn([300, 77])
        let wantBig = big.to(.float64).matmul(bigB.to(.float64)).toArray(Double.self)
        for isa in [CPUISA.baseline, .avx2, .avx512] where isa <= CPUFeatures.detected {
            for wide in isa == .avx512 ? [false, true] : [false] {
                CPUFeatures.active = isa
                GEMM.avx512MicroKernel = wide
                XCTAssertEqual(CPUFeatures.active, isa)
                XCTAssertEqual(GEMM.microKernelISA, wide || isa != .avx512 ? isa : .avx2)
                XCTAssertNil(mismatch(a.matmul(b).toArray(Double.self), want, .float32, scale: 10), "\(isa)")
                XCTAssertNil(mismatch(a.t().contiguous().t().matmul(b).toArray(Double.self), want, .float32, scale: 10), "\(isa) transposed")
                XCTAssertNil(mismatch(big.matmul(bigB).toArray(Double.self), wantBig, .float32, scale: 30), "\(isa) k > KC")
            }
        }
    }

    /// Softmax, log-softmax, log-sum-exp (cross-entropy) and exp at every instruction-set
    /// level against float64, on row lengths around every vector width (tails) and with
    /// infinities and NaN in rows.
    func testVectorKernelsAtEveryISALevel() throws {
        let saved = CPUFeatures.active
        defer { CPUFeatures.active = saved }
        for n in [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1000] {
            let x = Tensor.randn([5, n]) * 4
            let x64 = x.to(.float64)
            let wantSoft = x64.softmax(dim: 1).toArray(Double.self), wantLog = x64.logSoftmax(dim: 1).toArray(Double.self)
            let target = Tensor.randint(0, n, [5])
            let wantCE = x64.crossEntropyPerSample(target, ignoreIndex: -100).losses.toArray(Double.self)
            let wantExp = x64.exp().toArray(Double.self)
            for isa in [CPUISA.baseline, .avx2, .avx512] where isa <= CPUFeatures.detected {
                CPUFeatures.active = isa
                XCTAssertNil(mismatch(x.softmax(dim: 1).toArray(Double.self), wantSoft, .float32), "softmax n=\(n) \(isa)")
                XCTAssertNil(mismatch(x.logSoftmax(dim: 1).toArray(Double.self), wantLog, .float32, scale: 4), "logSoftmax n=\(n) \(isa)")
                XCTAssertNil(mismatch(x.crossEntropyPerSample(target, ignoreIndex: -100).losses.toArray(Double.self), wantCE, .float32, scale: 4),
                             "cross-entropy n=\(n) \(isa)")
                XCTAssertNil(mismatch(x.exp().toArray(Double.self), wantExp, .float32), "exp n=\(n) \(isa)")
                XCTAssertNil(mismatch(x.sum(dim: 1).toArray(Double.self), x64.sum(dim: 1).toArray(Double.self), .float32, scale: 4),
                             "sum n=\(n) \(isa)")
                XCTAssertEqual(Tensor([Float(0.25)]).expand([3, n]).sum(dim: 1).toArray(Float.self), [Float](repeating: Float(n) / 4, count: 3),
                               "sum of a broadcast row n=\(n) \(isa)")
            }
        }
        // Rows with -inf, +inf and NaN give what float64 gives.
        let special = Tensor([[1, -Float.infinity, 2, 0.5], [-Float.infinity, -Float.infinity, -Float.infinity, -Float.infinity],
                              [1, .nan, 2, 3]])
        let want = special.to(.float64).softmax(dim: 1).toArray(Double.self)
        let wantLSE = special.to(.float64).logSoftmax(dim: 1).toArray(Double.self)
        for isa in [CPUISA.baseline, .avx2, .avx512] where isa <= CPUFeatures.detected {
            CPUFeatures.active = isa
            for (g, w) in zip(special.softmax(dim: 1).toArray(Double.self), want) {
                if w.isNaN { XCTAssertTrue(g.isNaN, "\(isa)") } else { XCTAssertEqual(g, w, accuracy: 1e-6, "\(isa)") }
            }
            for (g, w) in zip(special.logSoftmax(dim: 1).toArray(Double.self), wantLSE) {
                if w.isNaN { XCTAssertTrue(g.isNaN, "\(isa)") } else if w.isInfinite { XCTAssertEqual(g, w, "\(isa)") } else {
                    XCTAssertEqual(g, w, accuracy: 1e-5, "\(isa)")
                }
            }
        }
    }

    /// The vectorized exponential against libm over its whole range, and at the edges.
    func testFastExpAccuracy() {
        var worst = 0.0
        var x: Float = -87
        while x < 88.5 {
            let got = Double(fastExp(x)), want = Foundation.exp(Double(x))
            worst = Swift.max(worst, Swift.abs(got - want) / want)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7)
        // The AVX2 and AVX-512 kernels (when this CPU has them) agree with the portable one.
        let xs = (0..<1000).map { Float($0) * 0.17 - 85 } + [-.infinity, .infinity, .nan, 0, 100, -200]
        var ys = [Float](repeating: 0, count: xs.count)
        let saved = CPUFeatures.active
        for isa in [CPUISA.baseline, .avx2, .avx512] where isa <= CPUFeatures.detected {
            CPUFeatures.active = isa
            expContiguous(xs, &ys, xs.count)
            for (x, y) in zip(xs, ys) {
                let want = Double(Float(Foundation.exp(Double(x))))  // the float result: overflow → inf, underflow → 0
                if want.isNaN { XCTAssertTrue(y.isNaN) } else if want == 0 || want.isInfinite { XCTAssertEqual(Double(y), want) } else {
                    XCTAssertLessThan(Swift.abs(Double(y) - want) / want, 3e-7, "\(isa) exp(\(x))")
                }
            }
        }
        CPUFeatures.active = saved
        XCTAssertEqual(fastExp(0), 1)
        XCTAssertEqual(fastExp(100), .infinity)
        XCTAssertEqual(fastExp(-200), 0)
        XCTAssertEqual(fastExp(-.infinity), 0)
        XCTAssertTrue(fastExp(.nan).isNaN)
    }

    /// A system BLAS, when one is found and chosen by calibration, agrees with Ember's kernel,
    /// transposed operands and accumulation included.
    func testBLASAgreesWithNativeKernel() throws {
        guard let blas = BLAS.shared, blas.threshold != nil else { throw XCTSkip("no usable BLAS here: \(BLAS.status)") }
        for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
            let (m, n, k) = (150, 170, 190)
            let a = transA ? Tensor.randn([k, m]).t() : Tensor.randn([m, k])
            let b = transB ? Tensor.randn([n, k]).t() : Tensor.randn([k, n])
            let viaBLAS = a.matmul(b)
            GEMM.useBLAS = false
            let mine = a.matmul(b)
            GEMM.useBLAS = true
            XCTAssertNil(mismatch(viaBLAS.toArray(Double.self), mine.toArray(Double.self), .float32, scale: 20), "\(transA) \(transB)")
        }
    }

    func testAccumulateAndBatched() {
        var a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 0, 0, 1], c: [Float] = [10, 10, 10, 10]
        EmberCPU.GEMM.sgemm(m: 2, n: 2, k: 2, a: &a, rowStrideA: 2, colStrideA: 1, b: &b, rowStrideB: 2, colStrideB: 1,
                             c: &c, ldc: 2, accumulate: true)
        XCTAssertEqual(c, [11, 12, 13, 14])
        // Many small products run one per thread.
        let x = Tensor.randn([64, 5, 6], dtype: .float64), y = Tensor.randn([64, 6, 3], dtype: .float64)
        let z = x.bmm(y)
        for i in [0, 31, 63] {
            assertClose(z[i], x[i].matmul(y[i]).toArray(Double.self))
        }
    }
}

import EmberCPU
