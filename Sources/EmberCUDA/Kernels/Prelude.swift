import EmberCore

/// What every kernel module shares: how dtypes are spelled in CUDA C, the prelude (index
/// geometry, half/bfloat16 conversions, math helpers, small atomics), the module of each op
/// family, the device-side checks, and kernel argument packing. Each family's kernels are
/// in `Kernels/<Family>.swift` beside their launch code. No CUDA header is included: the
/// sources compile with NVRTC alone.
public enum KernelSource {
    /// Maximum tensor rank the strided kernels index.
    public static let maxDims = 8

    /// The storage type of a dtype in device memory.
    public static func storage(_ d: DType) -> String {
        switch d {
        case .bool, .uint8: "unsigned char"
        case .int32: "int"
        case .int64: "long long"
        case .float16, .bfloat16: "unsigned short"
        case .float32: "float"
        case .float64: "double"
        }
    }

    /// The type arithmetic runs in (half types compute in float, as on the CPU).
    public static func compute(_ d: DType) -> String {
        switch d {
        case .float16, .bfloat16: "float"
        case .bool: "int"
        case .float32, .float64, .int64, .int32, .uint8: storage(d)
        }
    }

    static func load(_ d: DType, _ e: String) -> String {
        switch d {
        case .float16: "ember_h2f(\(e))"
        case .bfloat16: "ember_bf2f(\(e))"
        case .bool: "(int)(\(e) != 0)"
        case .float32, .float64, .int64, .int32, .uint8: "(\(compute(d)))(\(e))"
        }
    }

    static func store(_ d: DType, _ e: String) -> String {
        switch d {
        case .float16: "ember_f2h((float)(\(e)))"
        case .bfloat16: "ember_f2bf((float)(\(e)))"
        case .bool: "(unsigned char)((\(e)) != 0)"
        case .float32, .float64, .int64, .int32, .uint8: "(\(storage(d)))(\(e))"
        }
    }

    /// A kernel's entry name: `unary_exp_float32`.
    public static func name(_ parts: String...) -> String { parts.joined(separator: "_") }

    /// The grid-stride loop over `n` items every one-thread-per-item kernel uses.
    static let gridLoop = "for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)"

    /// Every module, for compile checks: (module name, source).
    public static func allModules() -> [(String, String)] {
        DType.allCases.flatMap { d in
            KernelModule.allCases.compactMap { m in m.source(d).map { (m.name(d), $0) } }
        }
    }

    /// Shared by every module: index geometry, half/bfloat16 conversions, float math helpers.
    public static let prelude = """
    #define EMBER_MAXD \(maxDims)
    #define EMBER_INF __longlong_as_double(0x7ff0000000000000LL)
    #define EMBER_NAN __longlong_as_double(0x7ff8000000000000LL)
    struct Geo { int nd; long long n; long long shape[EMBER_MAXD]; long long st[4][EMBER_MAXD]; long long off[4]; };
    __device__ __forceinline__ void ember_offsets(const Geo& g, long long i, long long* o) {
        long long r = i;
        o[0] = g.off[0]; o[1] = g.off[1]; o[2] = g.off[2]; o[3] = g.off[3];
        for (int d = g.nd - 1; d >= 0; --d) {
            long long c = r % g.shape[d]; r /= g.shape[d];
            o[0] += c * g.st[0][d]; o[1] += c * g.st[1][d]; o[2] += c * g.st[2][d]; o[3] += c * g.st[3][d];
        }
    }
    __device__ __forceinline__ float ember_h2f(unsigned short h) {
        unsigned int s = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, f;
        if (e == 0) {
            if (m == 0) f = s;
            else { e = 113; while (!(m & 0x400)) { m <<= 1; e--; } m &= 0x3ff; f = s | (e << 23) | (m << 13); }
        } else if (e == 31) f = s | 0x7f800000u | (m << 13);
        else f = s | ((e + 112) << 23) | (m << 13);
        return __int_as_float((int)f);
    }
    __device__ __forceinline__ unsigned short ember_f2h(float v) {
        unsigned int x = (unsigned int)__float_as_int(v), s = (x >> 16) & 0x8000u;
        unsigned int e = (x >> 23) & 0xff, m = x & 0x7fffffu;
        if (e == 0xff) return (unsigned short)(s | 0x7c00u | (m ? 0x200u : 0));
        int ne = (int)e - 112;
        if (ne >= 31) return (unsigned short)(s | 0x7c00u);
        if (ne <= 0) {
            if (ne < -10) return (unsigned short)s;
            m |= 0x800000u;
            unsigned int shift = (unsigned int)(14 - ne), hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
            if (rem > half || (rem == half && (hm & 1))) hm++;
            return (unsigned short)(s | hm);
        }
        unsigned int hm = m >> 13, rem = m & 0x1fff;
        unsigned int out = s | ((unsigned int)ne << 10) | hm;
        if (rem > 0x1000 || (rem == 0x1000 && (hm & 1))) out++;
        return (unsigned short)out;
    }
    __device__ __forceinline__ float ember_bf2f(unsigned short h) { return __int_as_float((int)((unsigned int)h << 16)); }
    __device__ __forceinline__ unsigned short ember_f2bf(float v) {
        unsigned int x = (unsigned int)__float_as_int(v);
        if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu)) return (unsigned short)((x >> 16) | 0x40);
        x += 0x7fffu + ((x >> 16) & 1);
        return (unsigned short)(x >> 16);
    }
    // An atomic update of an 8- or 16-bit element: `f` maps the old value to the new one,
    // applied with compare-and-swap on the aligned 32-bit word that holds the element.
    template <typename T, typename F> __device__ __forceinline__ void ember_atomic_small(T* p, int bytes, F f) {
        unsigned long long a = (unsigned long long)p;
        unsigned int* w = (unsigned int*)(a & ~3ULL);
        unsigned int shift = (unsigned int)(a & 3) * 8, mask = (bytes == 1 ? 0xffu : 0xffffu) << shift;
        unsigned int old = *w, seen;
        do {
            seen = old;
            unsigned int v = (f((seen & mask) >> shift) << shift) & mask;
            old = atomicCAS(w, seen, (seen & ~mask) | v);
        } while (old != seen);
    }
    __device__ __forceinline__ float ember_sqrt(float x) { return sqrtf(x); }
    __device__ __forceinline__ double ember_sqrt(double x) { return sqrt(x); }
    __device__ __forceinline__ float ember_exp(float x) { return expf(x); }
    __device__ __forceinline__ double ember_exp(double x) { return exp(x); }
    __device__ __forceinline__ float ember_log(float x) { return logf(x); }
    __device__ __forceinline__ double ember_log(double x) { return log(x); }
    __device__ __forceinline__ float ember_log1p(float x) { return log1pf(x); }
    __device__ __forceinline__ double ember_log1p(double x) { return log1p(x); }
    __device__ __forceinline__ float ember_expm1(float x) { return expm1f(x); }
    __device__ __forceinline__ double ember_expm1(double x) { return expm1(x); }
    __device__ __forceinline__ float ember_rsqrt(float x) { return rsqrtf(x); }
    __device__ __forceinline__ double ember_rsqrt(double x) { return rsqrt(x); }
    __device__ __forceinline__ float ember_sin(float x) { return sinf(x); }
    __device__ __forceinline__ double ember_sin(double x) { return sin(x); }
    __device__ __forceinline__ float ember_cos(float x) { return cosf(x); }
    __device__ __forceinline__ double ember_cos(double x) { return cos(x); }
    __device__ __forceinline__ float ember_tanh(float x) { return tanhf(x); }
    __device__ __forceinline__ double ember_tanh(double x) { return tanh(x); }
    __device__ __forceinline__ float ember_erf(float x) { return erff(x); }
    __device__ __forceinline__ double ember_erf(double x) { return erf(x); }
    __device__ __forceinline__ float ember_floor(float x) { return floorf(x); }
    __device__ __forceinline__ double ember_floor(double x) { return floor(x); }
    __device__ __forceinline__ float ember_ceil(float x) { return ceilf(x); }
    __device__ __forceinline__ double ember_ceil(double x) { return ceil(x); }
    __device__ __forceinline__ float ember_rint(float x) { return rintf(x); }
    __device__ __forceinline__ double ember_rint(double x) { return rint(x); }
    __device__ __forceinline__ float ember_pow(float a, float b) { return powf(a, b); }
    __device__ __forceinline__ double ember_pow(double a, double b) { return pow(a, b); }
    __device__ __forceinline__ float ember_tan(float x) { return tanf(x); }
    __device__ __forceinline__ double ember_tan(double x) { return tan(x); }
    __device__ __forceinline__ float ember_asin(float x) { return asinf(x); }
    __device__ __forceinline__ double ember_asin(double x) { return asin(x); }
    __device__ __forceinline__ float ember_acos(float x) { return acosf(x); }
    __device__ __forceinline__ double ember_acos(double x) { return acos(x); }
    __device__ __forceinline__ float ember_atan(float x) { return atanf(x); }
    __device__ __forceinline__ double ember_atan(double x) { return atan(x); }
    __device__ __forceinline__ float ember_sinh(float x) { return sinhf(x); }
    __device__ __forceinline__ double ember_sinh(double x) { return sinh(x); }
    __device__ __forceinline__ float ember_cosh(float x) { return coshf(x); }
    __device__ __forceinline__ double ember_cosh(double x) { return cosh(x); }
    __device__ __forceinline__ float ember_asinh(float x) { return asinhf(x); }
    __device__ __forceinline__ double ember_asinh(double x) { return asinh(x); }
    __device__ __forceinline__ float ember_acosh(float x) { return acoshf(x); }
    __device__ __forceinline__ double ember_acosh(double x) { return acosh(x); }
    __device__ __forceinline__ float ember_atanh(float x) { return atanhf(x); }
    __device__ __forceinline__ double ember_atanh(double x) { return atanh(x); }
    __device__ __forceinline__ float ember_trunc(float x) { return truncf(x); }
    __device__ __forceinline__ double ember_trunc(double x) { return trunc(x); }
    __device__ __forceinline__ float ember_erfc(float x) { return erfcf(x); }
    __device__ __forceinline__ double ember_erfc(double x) { return erfc(x); }
    __device__ __forceinline__ float ember_exp2(float x) { return exp2f(x); }
    __device__ __forceinline__ double ember_exp2(double x) { return exp2(x); }
    __device__ __forceinline__ float ember_log2(float x) { return log2f(x); }
    __device__ __forceinline__ double ember_log2(double x) { return log2(x); }
    __device__ __forceinline__ float ember_log10(float x) { return log10f(x); }
    __device__ __forceinline__ double ember_log10(double x) { return log10(x); }
    __device__ __forceinline__ float ember_atan2(float a, float b) { return atan2f(a, b); }
    __device__ __forceinline__ double ember_atan2(double a, double b) { return atan2(a, b); }
    __device__ __forceinline__ float ember_hypot(float a, float b) { return hypotf(a, b); }
    __device__ __forceinline__ double ember_hypot(double a, double b) { return hypot(a, b); }
    __device__ __forceinline__ float ember_copysign(float a, float b) { return copysignf(a, b); }
    __device__ __forceinline__ double ember_copysign(double a, double b) { return copysign(a, b); }
    __device__ __forceinline__ float ember_fmod(float a, float b) { return fmodf(a, b); }
    __device__ __forceinline__ double ember_fmod(double a, double b) { return fmod(a, b); }
    // Python's % and // on floats, as PyTorch computes them (div_floor_floating).
    template <typename T> __device__ __forceinline__ T ember_remainder(T a, T b) {
        T m = ember_fmod(a, b);
        if (m != 0 && ((b < 0) != (m < 0))) m += b;
        return m;
    }
    template <typename T> __device__ __forceinline__ T ember_floordiv(T a, T b) {
        if (b == 0) return a / b;
        T m = ember_fmod(a, b), d = (a - m) / b;
        if (m != 0 && ((b < 0) != (m < 0))) d -= 1;
        if (d == 0) return ember_copysign((T)0, a / b);
        T f = ember_floor(d);
        if (d - f > (T)0.5) f += 1;
        return f;
    }
    template <typename T> __device__ __forceinline__ T ember_iremainder(T a, T b) {
        if (b == 0) return 0;
        T m = a % b;
        if (m != 0 && ((b < 0) != (m < 0))) m += b;
        return m;
    }
    template <typename T> __device__ __forceinline__ T ember_ifloordiv(T a, T b) {
        if (b == 0) return 0;
        T q = a / b;
        if (((a < 0) != (b < 0)) && a % b != 0) q -= 1;
        return q;
    }
    template <typename T> __device__ __forceinline__ T ember_ipow(T a, T b) {
        if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0);
        T r = 1; while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } return r;
    }
    """
}

extension KernelSource {
    /// `p += v` for elements that many threads may add to at once: hardware atomics for
    /// 32- and 64-bit types, a compare-and-swap loop on the enclosing word for 8- and 16-bit
    /// ones (half types add as floats; bool ORs).
    static func atomicAdd(_ d: DType, _ p: String, _ v: String) -> String {
        switch d {
        case .float32, .float64, .int32: "atomicAdd(&\(p), \(v))"
        case .int64: "atomicAdd((unsigned long long*)&\(p), (unsigned long long)(\(v)))"
        case .bool: "if (\(v)) ember_atomic_small(&\(p), 1, [&](unsigned int c) { return 1u; })"
        case .uint8: "ember_atomic_small(&\(p), 1, [&](unsigned int c) { return (c + (unsigned int)(\(v))) & 0xffu; })"
        case .float16, .bfloat16:
            "ember_atomic_small(&\(p), 2, [&](unsigned int c) { return (unsigned int)\(store(d, "\(load(d, "(unsigned short)c")) + \(load(d, v))")); })"
        }
    }

    /// The device-side check helpers of a module (`DeviceCheck`): `reportBad_<d>` writes
    /// [code, value, limit] to the check words (the first bad value claims them), and
    /// `indexOK_<d>` wraps a negative index and reports one out of range.
    static func checkHelpers(_ d: DType) -> String {
        """
        __device__ void \(name("reportBad", d.description))(long long* check, long long code, long long value, long long size) {
            if (atomicCAS((unsigned long long*)check, 0ULL, (unsigned long long)code) == 0ULL) { check[1] = value; check[2] = size; }
        }
        __device__ bool \(name("indexOK", d.description))(long long* k, long long size, long long* check, long long code) {
            long long v = *k;
            if (v < 0) v += size;
            if (v < 0 || v >= size) { \(name("reportBad", d.description))(check, code, *k, size); return false; }
            *k = v; return true;
        }

        """
    }
}

/// The kernel modules: one per op family and dtype, compiled on first use and cached.
public enum KernelModule: CaseIterable, Sendable {
    case elementwise, reduce, linalg, indexing, convolution, losses, optim

    /// The module's name for dtype `d` (`indexing_float32`): the key of the kernel caches.
    public func name(_ d: DType) -> String { "\(self)_\(d)" }

    /// The module's CUDA C for dtype `d`, or nil when the family has no kernels for it.
    public func source(_ d: DType) -> String? {
        switch self {
        case .elementwise: KernelSource.elementwiseModule(d)
        case .reduce: KernelSource.reduceModule(d)
        case .linalg: nil  // cuBLAS, or elementwise and reduce kernels
        case .indexing: KernelSource.indexingModule(d)
        case .convolution: d.isFloatingPoint ? KernelSource.convolutionModule(d) : nil
        case .losses: d.isFloatingPoint ? KernelSource.lossesModule(d) : nil
        case .optim: d == .float32 || d == .float64 ? KernelSource.optimModule(d) : nil
        }
    }
}

/// Checks kernels make of their arguments (an index or class out of range). Like PyTorch's
/// device-side asserts, without stopping the GPU: a kernel that finds a bad value writes
/// `[code, value, limit]` into its device's check words, and the host reports it after its
/// next synchronisation (`CUDADevice.verifyChecks`). The code is the case's raw value.
enum DeviceCheck: Int64, CaseIterable {
    case crossEntropyTarget = 1, indexSelect, indexAdd, gather, scatter, scatterAdd

    func message(value: Int64, limit: Int64) -> String {
        switch self {
        case .crossEntropyTarget: "crossEntropy: target \(value) is out of bounds for \(limit) classes"
        case .indexSelect, .indexAdd, .gather, .scatter, .scatterAdd:
            "\(self): index \(value) is out of bounds for dimension with size \(limit)"
        }
    }
}

extension CUDABackend {
    /// Kernel `name` of `module` for dtype `d` (compiled on first use).
    func kernel(_ module: KernelModule, _ d: DType, _ name: String) -> OpaquePointer {
        dev.function(module.name(d), name) {
            guard let s = module.source(d) else { fatalError("Ember CUDA: no \(module) kernels for \(d) (please report this)") }
            return s
        }
    }
}

/// Kernel arguments, packed as the driver wants them: an array of pointers to each value.
/// The values live in one buffer per thread, reused by every launch (the driver copies the
/// arguments when the kernel is launched).
final class KernelArgs {
    private static let capacity = 4096
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: KernelArgs.capacity, alignment: 16)
    private var used = 0
    private var pointers: [UnsafeMutableRawPointer?] = []
    private static let local = ThreadLocal { KernelArgs() }

    private init() { pointers.reserveCapacity(16) }
    deinit { buffer.deallocate() }

    /// This thread's arguments, emptied.
    static func forThisThread() -> KernelArgs {
        let a = local.value
        a.used = 0
        a.pointers.removeAll(keepingCapacity: true)
        return a
    }

    private func slot(_ bytes: Int) -> UnsafeMutableRawPointer {
        let at = (used + 15) & ~15
        Ember.check(at + bytes <= KernelArgs.capacity, "CUDA: kernel arguments exceed \(KernelArgs.capacity) bytes")
        used = at + bytes
        let p = buffer + at
        pointers.append(p)
        return p
    }

    @discardableResult
    func add<T>(_ v: T) -> KernelArgs {
        slot(max(MemoryLayout<T>.size, 8)).storeBytes(of: v, as: T.self)
        return self
    }

    /// A struct given as its 64-bit words (the `Geo` and `Win` structs of the kernels).
    @discardableResult
    func addWords(_ words: [Int64]) -> KernelArgs {
        let p = slot(words.count * 8)
        words.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return self
    }

    func withPointers(_ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Void) {
        pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}

/// The `Geo` struct: up to 4 operands over one iteration shape.
func geo(_ shape: [Int], _ operands: [(strides: [Int], offset: Int)]) -> [Int64] {
    Ember.check(shape.count <= KernelSource.maxDims, "CUDA: tensors of rank \(shape.count) exceed the kernels' \(KernelSource.maxDims) dimensions")
    let maxD = KernelSource.maxDims
    var w: [Int64] = [Int64(shape.count), Int64(shape.reduce(1, *))]
    w += (0..<maxD).map { $0 < shape.count ? Int64(shape[$0]) : 1 }
    for k in 0..<4 {
        let st = k < operands.count ? operands[k].strides : []
        w += (0..<maxD).map { $0 < st.count ? Int64(st[$0]) : 0 }
    }
    w += (0..<4).map { $0 < operands.count ? Int64(operands[$0].offset) : 0 }
    return w
}
