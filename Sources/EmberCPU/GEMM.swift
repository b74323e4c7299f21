/// A packed, cache-blocked, register-tiled, multi-threaded GEMM.
///
/// `C[m×n] = A[m×k] · B[k×n]` (or `+=` with `accumulate`). A and B are read through any
/// element strides (row stride, column stride), so transposed operands need no copy: the
/// packing step reads them in place. C has unit column stride and row stride `ldc`.
///
/// Structure (BLIS-style): for each `KC` slice of k, B is packed into `NR`-wide panels and
/// A into `MR`-tall panels; the C matrix is cut into tiles (row blocks × column blocks)
/// which threads take independently, so both cores share one packed B panel. The 6×NR
/// micro-kernel keeps its accumulators in SIMD registers.
public enum GEMM {
    @usableFromInline static let MR = 6
    @usableFromInline static let KC = 256
    @usableFromInline static let MC = 96
    @usableFromInline static let NC = 3072

    /// Single-precision GEMM. `threads` caps parallelism (nil = `CPUThreads.count`).
    public static func sgemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false, threads: Int? = nil
    ) {
        gemm(SIMD8<Float>.self, m, n, k, a, rowStrideA, colStrideA, b, rowStrideB, colStrideB, c, ldc,
             accumulate, threads ?? CPUThreads.count)
    }

    /// Double-precision GEMM.
    public static func dgemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Double>, rowStrideB: Int, colStrideB: Int,
        c: UnsafeMutablePointer<Double>, ldc: Int, accumulate: Bool = false, threads: Int? = nil
    ) {
        gemm(SIMD4<Double>.self, m, n, k, a, rowStrideA, colStrideA, b, rowStrideB, colStrideB, c, ldc,
             accumulate, threads ?? CPUThreads.count)
    }

    static func gemm<V: SIMD>(
        _: V.Type, _ m: Int, _ n: Int, _ k: Int,
        _ a: UnsafePointer<V.Scalar>, _ rsA: Int, _ csA: Int,
        _ b: UnsafePointer<V.Scalar>, _ rsB: Int, _ csB: Int,
        _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int, _ accumulate: Bool, _ maxThreads: Int
    ) where V.Scalar: BinaryFloatingPoint {
        typealias T = V.Scalar
        if m == 0 || n == 0 { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let NR = V.scalarCount
        let threads = (m * n * k >= 48 * 48 * 48) ? max(1, maxThreads) : 1
        let kcMax = min(KC, k), ncMax = min(NC, n)
        let mPanels = (m + MR - 1) / MR
        let packA = UnsafeMutablePointer<T>.allocate(capacity: mPanels * MR * kcMax)
        let packB = UnsafeMutablePointer<T>.allocate(capacity: ((ncMax + NR - 1) / NR) * NR * kcMax)
        defer { packA.deallocate(); packB.deallocate() }

        func run(_ count: Int, _ body: (Int) -> Void) {
            if threads == 1 || count == 1 { for i in 0..<count { body(i) } } else { parallelTasks(count, body) }
        }

        var jc = 0
        while jc < n {
            let nc = min(NC, n - jc)
            let nPanels = (nc + NR - 1) / NR
            var pc = 0
            while pc < k {
                let kc = min(KC, k - pc)
                let first = pc == 0 && !accumulate
                // Pack B[pc..<pc+kc, jc..<jc+nc] into NR-wide panels (zero-padded).
                let bGroups = min(nPanels, threads * 2)
                run(bGroups) { g in
                    var jp = g * nPanels / bGroups
                    let jEnd = (g + 1) * nPanels / bGroups
                    while jp < jEnd {
                        let dst = packB + jp * NR * kc
                        let j0 = jc + jp * NR
                        let w = min(NR, n - j0)
                        for kk in 0..<kc {
                            let src = b + (pc + kk) * rsB + j0 * csB
                            let d = dst + kk * NR
                            if csB == 1 {
                                for cc in 0..<w { d[cc] = src[cc] }
                            } else {
                                for cc in 0..<w { d[cc] = src[cc * csB] }
                            }
                            for cc in w..<NR { d[cc] = 0 }
                        }
                        jp += 1
                    }
                }
                // Pack A[0..<m, pc..<pc+kc] into MR-tall panels (zero-padded).
                let aGroups = min(mPanels, threads * 2)
                run(aGroups) { g in
                    var ip = g * mPanels / aGroups
                    let iEnd = (g + 1) * mPanels / aGroups
                    while ip < iEnd {
                        let dst = packA + ip * MR * kc
                        let i0 = ip * MR
                        let h = min(MR, m - i0)
                        for r in 0..<MR {
                            if r < h {
                                let src = a + (i0 + r) * rsA + pc * csA
                                if csA == 1 {
                                    for kk in 0..<kc { dst[kk * MR + r] = src[kk] }
                                } else {
                                    for kk in 0..<kc { dst[kk * MR + r] = src[kk * csA] }
                                }
                            } else {
                                for kk in 0..<kc { dst[kk * MR + r] = 0 }
                            }
                        }
                        ip += 1
                    }
                }
                // Tiles: row blocks of MC × column groups, split so every thread has work.
                let mcPanels = MC / MR
                let rowBlocks = (mPanels + mcPanels - 1) / mcPanels
                var colGroups = 1
                if threads > 1 {
                    while rowBlocks * colGroups < threads * 2 && colGroups * 2 <= nPanels { colGroups *= 2 }
                }
                run(rowBlocks * colGroups) { t in
                    let rb = t / colGroups, cg = t % colGroups
                    let ipStart = rb * mcPanels, ipEnd = min(mPanels, ipStart + mcPanels)
                    let jpStart = cg * nPanels / colGroups, jpEnd = (cg + 1) * nPanels / colGroups
                    for jp in jpStart..<jpEnd {
                        let j0 = jc + jp * NR
                        let nr = min(NR, n - j0)
                        for ip in ipStart..<ipEnd {
                            let i0 = ip * MR
                            let mr = min(MR, m - i0)
                            microKernel(V.self, kc, packA + ip * MR * kc, packB + jp * NR * kc,
                                        c + i0 * ldc + j0, ldc, mr, nr, !first)
                        }
                    }
                }
                pc += kc
            }
            jc += nc
        }
    }

    @inline(__always)
    static func microKernel<V: SIMD>(
        _: V.Type, _ kc: Int, _ a: UnsafePointer<V.Scalar>, _ b: UnsafePointer<V.Scalar>,
        _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int, _ mr: Int, _ nr: Int, _ load: Bool
    ) where V.Scalar: BinaryFloatingPoint {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var pa = a
        var pb = UnsafeRawPointer(b)
        let step = MemoryLayout<V>.stride
        for _ in 0..<kc {
            let bv = pb.loadUnaligned(as: V.self)
            c0 += bv * pa[0]
            c1 += bv * pa[1]
            c2 += bv * pa[2]
            c3 += bv * pa[3]
            c4 += bv * pa[4]
            c5 += bv * pa[5]
            pa += 6
            pb += step
        }
        let NR = V.scalarCount
        if mr == 6 && nr == NR {
            @inline(__always) func put(_ v: V, _ row: Int) {
                let p = UnsafeMutableRawPointer(c + row * ldc)
                var x = v
                if load { x += p.loadUnaligned(as: V.self) }
                p.storeBytes(of: x, as: V.self)
            }
            put(c0, 0); put(c1, 1); put(c2, 2); put(c3, 3); put(c4, 4); put(c5, 5)
            return
        }
        let rows = [c0, c1, c2, c3, c4, c5]
        for i in 0..<mr {
            let p = c + i * ldc
            let v = rows[i]
            for j in 0..<nr {
                p[j] = load ? p[j] + v[j] : v[j]
            }
        }
    }
}
