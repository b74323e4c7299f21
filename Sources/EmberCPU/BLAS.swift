import EmberLoader
import Foundation

/// A system BLAS (OpenBLAS, MKL, BLIS, Accelerate) loaded at run time, used for the GEMM
/// shapes where a short calibration shows it beats Ember's own kernel.
///
/// - `EMBER_BLAS=/path/to/lib` picks a library; `EMBER_BLAS=none` turns BLAS off.
/// - Debian's OpenBLAS 0.3.21 detects recent Xeons as the generic "Prescott" core and runs
///   several times slower: on a CPU with AVX2, `OPENBLAS_CORETYPE` is set to the matching
///   core (Haswell, or SkylakeX with AVX-512) before loading, unless the user set it; if the
///   library still reports a generic core, it is not used.
public final class BLAS: @unchecked Sendable {
    typealias SGEMM = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                      UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SetThreads = @convention(c) (Int32) -> Void
    typealias CoreName = @convention(c) () -> UnsafePointer<CChar>?

    public let library: DynamicLibrary
    let sgemmFn: SGEMM
    let setThreads: SetThreads?
    /// OpenBLAS's core name, when the library is OpenBLAS.
    public let coreName: String?
    /// Products of at least this many multiply-adds (m·n·k) go to BLAS; nil = never.
    public private(set) var threshold: Int?
    /// Whether BLAS was told to run single-threaded (set once, when it is loaded).
    private var singleThreaded = false

    /// What loading found: the library, or why none is used.
    nonisolated(unsafe) public private(set) static var status = "not loaded yet"

    /// The BLAS in use, loaded and calibrated on first access (nil when none is usable).
    public static let shared: BLAS? = {
        if ProcessInfo.processInfo.environment["EMBER_BLAS"] == "none" {
            status = "disabled by EMBER_BLAS=none"
            return nil
        }
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil && CPUFeatures.detected >= .avx2 {
            setenv("OPENBLAS_CORETYPE", CPUFeatures.detected == .avx512 ? "SkylakeX" : "Haswell", 0)
        }
        var candidates = ["libopenblas.so.0", "libopenblas.so", "libmkl_rt.so.2", "libmkl_rt.so", "libblis.so.4", "libblis.so",
                          "libopenblas.dylib", "/System/Library/Frameworks/Accelerate.framework/Accelerate", "libopenblas.dll", "mkl_rt.2.dll"]
        #if os(macOS)
        candidates.insert("/System/Library/Frameworks/Accelerate.framework/Accelerate", at: 0)
        #endif
        let lib: DynamicLibrary
        do {
            lib = try DynamicLibrary.open("BLAS", environment: "EMBER_BLAS", candidates: candidates)
        } catch {
            status = "no BLAS library (Ember's own GEMM is used): \(error)"
            return nil
        }
        guard let f = lib.symbol("cblas_sgemm", as: SGEMM.self) else {
            status = "\(lib.path) has no cblas_sgemm; Ember's own GEMM is used"
            return nil
        }
        let core = lib.symbol("openblas_get_corename", as: CoreName.self).flatMap { $0() }.map { String(cString: $0) }
        if let core, ["prescott", "core2", "atom", "nehalem", "generic"].contains(core.lowercased()), CPUFeatures.detected >= .avx2 {
            status = "\(lib.path) runs the generic \(core) kernels on this AVX2 CPU; Ember's own GEMM is used"
            return nil
        }
        let blas = BLAS(library: lib, sgemm: f, setThreads: lib.symbol("openblas_set_num_threads", as: SetThreads.self)
                            ?? lib.symbol("MKL_Set_Num_Threads", as: SetThreads.self), coreName: core)
        // BLAS runs single-threaded inside Ember's own pool: two thread pools on the same
        // cores (BLAS's workers spin-yield between calls) slowed training down measurably.
        // Set here, once (this initialiser runs on one thread), not on some first call.
        if let set = blas.setThreads { set(1); blas.singleThreaded = true }
        // A fixed, measured policy keeps results reproducible from run to run (a timing
        // calibration can pick differently each time, and so round differently): with BLAS
        // single-threaded inside Ember's pool, OpenBLAS beat Ember's kernel from 64³ up
        // (98 vs 65 GFLOPS per core at 256³). EMBER_BLAS_CALIBRATE=1 times it here instead.
        if ProcessInfo.processInfo.environment["EMBER_BLAS_CALIBRATE"] == "1" {
            blas.calibrate()
        } else {
            blas.threshold = 64 * 64 * 64
        }
        status = "\(lib.path)" + (core.map { " (core \($0))" } ?? "") + ": "
            + (blas.threshold.map { "used for products of ≥ \($0) multiply-adds" } ?? "slower than Ember's GEMM here, not used")
        return blas
    }()

    init(library: DynamicLibrary, sgemm: @escaping SGEMM, setThreads: SetThreads?, coreName: String?) {
        self.library = library
        sgemmFn = sgemm
        self.setThreads = setThreads
        self.coreName = coreName
    }

    /// `C = A·B` (+ C) through cblas_sgemm when the operands' strides fit BLAS's layouts.
    /// Returns false when they do not (then the caller uses its own kernel).
    func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, rsA: Int, csA: Int, b: UnsafePointer<Float>, rsB: Int, csB: Int,
               c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, threads: Int) -> Bool {
        // Row-major (col stride 1) or transposed (row stride 1) operands only.
        let (ta, lda): (Int32, Int) = csA == 1 ? (111, rsA) : (rsA == 1 ? (112, csA) : (0, 0))
        let (tb, ldb): (Int32, Int) = csB == 1 ? (111, rsB) : (rsB == 1 ? (112, csB) : (0, 0))
        guard ta != 0, tb != 0, lda >= (ta == 111 ? k : m), ldb >= (tb == 111 ? n : k), ldc >= n else { return false }
        // Split into blocks on Ember's pool only when BLAS itself runs single-threaded.
        let parts = Swift.min(threads, Swift.max(1, (m >= n ? m / 64 : n / 64)))
        if parts <= 1 || !singleThreaded {
            sgemmFn(101, ta, tb, Int32(m), Int32(n), Int32(k), 1, a, Int32(Swift.max(lda, 1)), b, Int32(Swift.max(ldb, 1)),
                    accumulate ? 1 : 0, c, Int32(Swift.max(ldc, 1)))
            return true
        }
        // Split the larger of M and N into `parts` blocks (multiples of 16).
        let splitRows = m >= n
        let total = splitRows ? m : n
        let step = ((total + parts - 1) / parts + 15) / 16 * 16
        let beta: Float = accumulate ? 1 : 0
        let f = sgemmFn
        parallelTasks((total + step - 1) / step) { p in
            let lo = p * step, cnt = Swift.min(step, total - lo)
            if splitRows {
                f(101, ta, tb, Int32(cnt), Int32(n), Int32(k), 1, a + lo * rsA, Int32(Swift.max(lda, 1)), b, Int32(Swift.max(ldb, 1)),
                  beta, c + lo * ldc, Int32(Swift.max(ldc, 1)))
            } else {
                f(101, ta, tb, Int32(m), Int32(cnt), Int32(k), 1, a, Int32(Swift.max(lda, 1)), b + lo * csB, Int32(Swift.max(ldb, 1)),
                  beta, c + lo, Int32(Swift.max(ldc, 1)))
            }
        }
        return true
    }

    /// Times both GEMMs at a few sizes and keeps BLAS for the sizes (and above) where it wins.
    func calibrate() {
        threshold = nil
        for n in [512, 256, 128, 64] {
            let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
            var c = [Float](repeating: 0, count: n * n)
            func time(_ body: () -> Void) -> Double {
                body()
                var best = Double.infinity
                for _ in 0..<3 {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    body()
                    best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - t0))
                }
                return best
            }
            let t = CPUThreads.count
            let mine = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                time { GEMM.native(m: n, n: n, k: n, a: pa.baseAddress!, rsA: n, csA: 1, b: pb.baseAddress!, rsB: n, csB: 1,
                                   c: pc.baseAddress!, ldc: n, accumulate: false, threads: t) }
            } } }
            let theirs = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                time { _ = sgemm(m: n, n: n, k: n, a: pa.baseAddress!, rsA: n, csA: 1, b: pb.baseAddress!, rsB: n, csB: 1,
                                 c: pc.baseAddress!, ldc: n, accumulate: false, threads: t) }
            } } }
            if theirs < mine * 0.95 { threshold = n * n * n } else { break }
        }
    }
}
