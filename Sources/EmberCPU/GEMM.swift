import CEmberKernels
import Foundation

/// Instruction-set levels with dedicated kernels.
public enum CPUISA: Int, Comparable, Sendable, CustomStringConvertible {
    case baseline = 0, avx2 = 1, avx512 = 2
    public static func < (a: CPUISA, b: CPUISA) -> Bool { a.rawValue < b.rawValue }
    public var description: String { ["baseline", "avx2+fma", "avx512"][rawValue] }
}

/// What the processor supports, detected once with CPUID (and the OS's saved-state mask),
/// and the level kernels use: the detected one, or lower when `EMBER_CPU_ISA`
/// (baseline | avx2 | avx512) or `CPUFeatures.active` asks for it. The baseline path uses
/// only SSE2 instructions (the x86-64 minimum), so the binary runs on any x86-64 CPU.
///
/// Per kernel family, on an AVX-512 CPU: exp, softmax and log-sum-exp run 16 lanes wide
/// (27 % faster than AVX2 on [64, 1000] softmax, Zen 4); the memory-bound streaming kernels
/// (add/sub/mul/div, relu) stay on AVX2; the GEMM uses the AVX2 6×16 micro-kernel unless
/// `GEMM.avx512MicroKernel` (or `EMBER_GEMM_KERNEL=avx512`) asks for the 12×32 one, which
/// measured slower (141 vs 170 GFLOPS at n = 1024) where AVX-512 executes as two 256-bit halves.
public enum CPUFeatures {
    public static let detected: CPUISA = {
        let f = ember_cpu_features()
        if f & Int32(EMBER_ISA_AVX512) != 0 { return .avx512 }
        if f & Int32(EMBER_ISA_AVX2_FMA) != 0 { return .avx2 }
        return .baseline
    }()

    @exclusivity(unchecked) nonisolated(unsafe) private static var _active: CPUISA = {
        switch ProcessInfo.processInfo.environment["EMBER_CPU_ISA"]?.lowercased() {
        case "baseline", "sse2": return .baseline
        case "avx2": return Swift.min(.avx2, detected)
        default: return detected
        }
    }()

    /// The level in use; setting it above `detected` is clamped.
    public static var active: CPUISA {
        get { _active }
        set { _active = Swift.min(newValue, detected) }
    }
}

/// A packed, cache-blocked, register-tiled, multi-threaded GEMM.
///
/// `C[m×n] = A[m×k] · B[k×n]` (or `+=` with `accumulate`). A and B are read through any
/// element strides (row stride, column stride), so transposed operands need no copy: the
/// packing step reads them in place. C has unit column stride and row stride `ldc`.
///
/// Structure (BLIS-style): for each `KC` slice of k, B is packed into `nr`-wide panels and
/// A into `mr`-tall panels; C is cut into tiles (row blocks × column groups) that threads
/// take independently, so all cores share one packed B. The micro-kernel is chosen at run
/// time: AVX-512 12×32, AVX2+FMA 6×16 (C, per-function target attributes), or the portable
/// Swift SIMD 6×8 kernel.
public enum GEMM {
    static let KC = 256
    static let NC = 3072

    typealias Kernel<T> = (Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>, Int, Bool) -> Void

    /// Single-precision GEMM. `threads` caps parallelism (nil = `CPUThreads.count`).
    public static func sgemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Float>, rowStrideB: Int, colStrideB: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false, threads: Int? = nil
    ) {
        // Below 256³ multiply-adds, a second thread costs more than it brings (measured:
        // 128³ took 54 µs on two threads, 43 µs on one).
        let t = m * n * k < 1 << 20 ? 1 : (threads ?? CPUThreads.count)
        if useBLAS, let blas = BLAS.shared, let limit = blas.threshold, m * n * k >= limit,
           blas.sgemm(m: m, n: n, k: k, a: a, rsA: rowStrideA, csA: colStrideA, b: b, rsB: rowStrideB, csB: colStrideB,
                      c: c, ldc: ldc, accumulate: accumulate, threads: t) {
            return
        }
        native(m: m, n: n, k: k, a: a, rsA: rowStrideA, csA: colStrideA, b: b, rsB: rowStrideB, csB: colStrideB, c: c, ldc: ldc,
               accumulate: accumulate, threads: t)
    }

    /// The single-core float32 throughput of the active micro-kernel on cache-resident panels
    /// (GFLOPS): the machine's practical FMA peak, the yardstick for GEMM efficiency.
    public static func measuredPeakGFLOPS() -> Double {
        let isa = microKernelISA
        let (mr, nr): (Int, Int) = isa == .avx512 ? (12, 32) : (isa == .avx2 ? (6, 16) : (6, 8))
        let kc = 128
        let a = UnsafeMutablePointer<Float>.allocate(capacity: mr * kc), b = UnsafeMutablePointer<Float>.allocate(capacity: nr * kc)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: mr * nr)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        a.initialize(repeating: 1e-3, count: mr * kc)
        b.initialize(repeating: 1e-3, count: nr * kc)
        c.initialize(repeating: 0, count: mr * nr)
        let reps = 20000
        var best = Double.infinity
        for _ in 0..<5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<reps {
                switch isa {
                case .avx512: ember_sgemm_12x32_avx512(kc, a, b, c, nr, 1)
                case .avx2: ember_sgemm_6x16_avx2(kc, a, b, c, nr, 1)
                case .baseline: microKernel(SIMD8<Float>.self, kc, a, b, c, nr, true)
                }
            }
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - t0))
        }
        return 2 * Double(mr * nr * kc * reps) / best
    }

    /// Use the AVX-512 12×32 micro-kernel when the active level is AVX-512 (default false:
    /// the AVX2 6×16 kernel, see `CPUFeatures`; `EMBER_GEMM_KERNEL=avx512` sets it).
    nonisolated(unsafe) public static var avx512MicroKernel =
        ProcessInfo.processInfo.environment["EMBER_GEMM_KERNEL"]?.lowercased() == "avx512"

    /// The micro-kernel the GEMM runs now.
    public static var microKernelISA: CPUISA {
        CPUFeatures.active == .avx512 && !avx512MicroKernel ? .avx2 : CPUFeatures.active
    }

    /// Whether `sgemm` may hand large products to a system BLAS (default true; `EMBER_BLAS=none` also disables it).
    nonisolated(unsafe) public static var useBLAS = true

    /// Ember's own single-precision GEMM (the micro-kernel of `microKernelISA`).
    public static func native(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, rsA rowStrideA: Int, csA colStrideA: Int,
                              b: UnsafePointer<Float>, rsB rowStrideB: Int, csB colStrideB: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, threads t: Int) {
        switch microKernelISA {
        case .avx512:
            driver(m, n, k, a, rowStrideA, colStrideA, b, rowStrideB, colStrideB, c, ldc, accumulate, t, mr: 12, nr: 32) {
                ember_sgemm_12x32_avx512($0, $1, $2, $3, $4, $5 ? 1 : 0)
            }
        case .avx2:
            driver(m, n, k, a, rowStrideA, colStrideA, b, rowStrideB, colStrideB, c, ldc, accumulate, t, mr: 6, nr: 16) {
                ember_sgemm_6x16_avx2($0, $1, $2, $3, $4, $5 ? 1 : 0)
            }
        case .baseline:
            driver(m, n, k, a, rowStrideA, colStrideA, b, rowStrideB, colStrideB, c, ldc, accumulate, t, mr: 6, nr: 8) {
                microKernel(SIMD8<Float>.self, $0, $1, $2, $3, $4, $5)
            }
        }
    }

    /// Double-precision GEMM (portable SIMD kernel).
    public static func dgemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Double>, rowStrideA: Int, colStrideA: Int,
        b: UnsafePointer<Double>, rowStrideB: Int, colStrideB: Int,
        c: UnsafeMutablePointer<Double>, ldc: Int, accumulate: Bool = false, threads: Int? = nil
    ) {
        driver(m, n, k, a, rowStrideA, colStrideA, b, rowStrideB, colStrideB, c, ldc, accumulate, threads ?? CPUThreads.count,
               mr: 6, nr: 4) { microKernel(SIMD4<Double>.self, $0, $1, $2, $3, $4, $5) }
    }

    static func driver<T: BinaryFloatingPoint>(
        _ m: Int, _ n: Int, _ k: Int,
        _ a: UnsafePointer<T>, _ rsA: Int, _ csA: Int,
        _ b: UnsafePointer<T>, _ rsB: Int, _ csB: Int,
        _ c: UnsafeMutablePointer<T>, _ ldc: Int, _ accumulate: Bool, _ maxThreads: Int,
        mr MR: Int, nr NR: Int, kernel: Kernel<T>
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let MC = MR * (MR >= 12 ? 8 : 16)
        let threads = (m * n * k >= 48 * 48 * 48) ? Swift.max(1, maxThreads) : 1
        let kcMax = Swift.min(KC, k), ncMax = Swift.min(NC, n)
        let mPanels = (m + MR - 1) / MR
        // Packing buffers from the caching allocator: fresh ones of this size would be mapped
        // and unmapped by malloc on every call, and fault in page by page (8 % of a 256³ product).
        let aBlock = CPUAllocator.shared.allocate(mPanels * MR * kcMax * MemoryLayout<T>.stride)
        let bBlock = CPUAllocator.shared.allocate(((ncMax + NR - 1) / NR) * NR * kcMax * MemoryLayout<T>.stride)
        defer { CPUAllocator.shared.free(aBlock.pointer, capacity: aBlock.capacity); CPUAllocator.shared.free(bBlock.pointer, capacity: bBlock.capacity) }
        let packA = aBlock.pointer.bindMemory(to: T.self, capacity: mPanels * MR * kcMax)
        let packB = bBlock.pointer.bindMemory(to: T.self, capacity: ((ncMax + NR - 1) / NR) * NR * kcMax)

        let rowBytes = NR * MemoryLayout<T>.stride  // a multiple of 32 for every kernel
        func run(_ count: Int, _ body: (Int) -> Void) {
            if threads == 1 || count == 1 { for i in 0..<count { body(i) } } else { parallelTasks(count, body) }
        }

        var jc = 0
        while jc < n {
            let nc = Swift.min(NC, n - jc)
            let nPanels = (nc + NR - 1) / NR
            var pc = 0
            while pc < k {
                let kc = Swift.min(KC, k - pc)
                let first = pc == 0 && !accumulate
                // Pack B[pc..<pc+kc, jc..<jc+nc] into NR-wide panels (zero-padded).
                let bGroups = Swift.min(nPanels, threads * 2)
                run(bGroups) { g in
                    for jp in (g * nPanels / bGroups)..<((g + 1) * nPanels / bGroups) {
                        let dst = packB + jp * NR * kc
                        let j0 = jc + jp * NR
                        let w = Swift.min(NR, n - j0)
                        if csB == 1 && w == NR {
                            // Whole rows of NR contiguous values: copied in 32-byte vectors.
                            for kk in 0..<kc { copyChunks(dst + kk * NR, b + (pc + kk) * rsB + j0, bytes: rowBytes) }
                        } else if rsB == 1 && csB != 1 {
                            // Transposed B: walk each column along k (contiguous reads).
                            for cc in 0..<w {
                                let src = b + pc + (j0 + cc) * csB
                                for kk in 0..<kc { dst[kk * NR + cc] = src[kk] }
                            }
                            if w < NR { for kk in 0..<kc { for cc in w..<NR { dst[kk * NR + cc] = 0 } } }
                        } else {
                            for kk in 0..<kc {
                                let src = b + (pc + kk) * rsB + j0 * csB
                                let d = dst + kk * NR
                                if csB == 1 { for cc in 0..<w { d[cc] = src[cc] } } else { for cc in 0..<w { d[cc] = src[cc * csB] } }
                                for cc in w..<NR { d[cc] = 0 }
                            }
                        }
                    }
                }
                // Pack A[0..<m, pc..<pc+kc] into MR-tall panels (zero-padded).
                let aGroups = Swift.min(mPanels, threads * 2)
                run(aGroups) { g in
                    for ip in (g * mPanels / aGroups)..<((g + 1) * mPanels / aGroups) {
                        let dst = packA + ip * MR * kc
                        let i0 = ip * MR
                        let h = Swift.min(MR, m - i0)
                        if rsA == 1 && csA != 1 {
                            // Transposed A: the MR values of one k are contiguous.
                            for kk in 0..<kc {
                                let src = a + i0 + (pc + kk) * csA, d = dst + kk * MR
                                for r in 0..<h { d[r] = src[r] }
                                for r in h..<MR { d[r] = 0 }
                            }
                            continue
                        }
                        for r in 0..<MR {
                            if r < h {
                                let src = a + (i0 + r) * rsA + pc * csA
                                if csA == 1 { for kk in 0..<kc { dst[kk * MR + r] = src[kk] } } else {
                                    for kk in 0..<kc { dst[kk * MR + r] = src[kk * csA] }
                                }
                            } else {
                                for kk in 0..<kc { dst[kk * MR + r] = 0 }
                            }
                        }
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
                    let ipStart = rb * mcPanels, ipEnd = Swift.min(mPanels, ipStart + mcPanels)
                    withUnsafeTemporaryAllocation(of: T.self, capacity: MR * NR) { scratch in
                        let tile = scratch.baseAddress!
                        for jp in (cg * nPanels / colGroups)..<((cg + 1) * nPanels / colGroups) {
                            let j0 = jc + jp * NR
                            let nr = Swift.min(NR, n - j0)
                            for ip in ipStart..<ipEnd {
                                let i0 = ip * MR
                                let mr = Swift.min(MR, m - i0)
                                let ap = UnsafePointer(packA + ip * MR * kc), bp = UnsafePointer(packB + jp * NR * kc)
                                let cp = c + i0 * ldc + j0
                                if mr == MR && nr == NR {
                                    kernel(kc, ap, bp, cp, ldc, !first)
                                } else {
                                    // Edge tile: compute the full tile aside, then write the valid part.
                                    kernel(kc, ap, bp, tile, NR, false)
                                    for i in 0..<mr {
                                        for j in 0..<nr {
                                            cp[i * ldc + j] = first ? tile[i * NR + j] : cp[i * ldc + j] + tile[i * NR + j]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// Copies `bytes` (a multiple of 32) in 32-byte vectors: packing copies rows of a few
    /// dozen bytes, where a memmove call costs more than the copy.
    @inline(__always)
    static func copyChunks<T>(_ dst: UnsafeMutablePointer<T>, _ src: UnsafePointer<T>, bytes: Int) {
        let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
        var o = 0
        while o < bytes {
            d.storeBytes(of: (s + o).loadUnaligned(as: SIMD8<Float>.self), toByteOffset: o, as: SIMD8<Float>.self)
            o += 32
        }
    }

    /// The portable 6×(lanes of V) kernel: plain SIMD multiply and add (no fused multiply-add,
    /// which would become a library call without an FMA-capable compile target).
    @inline(__always)
    static func microKernel<V: SIMD>(
        _: V.Type, _ kc: Int, _ a: UnsafePointer<V.Scalar>, _ b: UnsafePointer<V.Scalar>,
        _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int, _ load: Bool
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
        @inline(__always) func put(_ v: V, _ row: Int) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            var x = v
            if load { x += p.loadUnaligned(as: V.self) }
            p.storeBytes(of: x, as: V.self)
        }
        put(c0, 0); put(c1, 1); put(c2, 2); put(c3, 3); put(c4, 4); put(c5, 5)
    }
}
