import Foundation
import XCTest
@testable import EmberCore
import EmberTestSupport
import EmberCPU

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
                    // The float64 triple loop on raw buffers (array accesses are slow in debug
                    // builds, and slower still under CI's CPU emulator).
                    var want = [Double](repeating: 0, count: m * n)
                    want.withUnsafeMutableBufferPointer { w in
                        ref.withUnsafeBufferPointer { a in
                            rb.withUnsafeBufferPointer { b in
                                for i in 0..<m {
                                    for p in 0..<k {
                                        let x = a[i * k + p], row = w.baseAddress! + i * n, brow = b.baseAddress! + p * n
                                        for j in 0..<n { row[j] += x * brow[j] }
                                    }
                                }
                            }
                        }
                    }
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
