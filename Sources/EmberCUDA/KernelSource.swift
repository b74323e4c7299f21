import EmberCore

/// CUDA C source for every primitive of the op table. This file is the one place that
/// lists each op's CUDA expression; kernels are generated per dtype, compiled by NVRTC on
/// first use and cached (`KernelCache`). No CUDA header is included: half and bfloat16
/// conversions are written out here, so the sources compile with NVRTC alone.
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
        default: storage(d)
        }
    }

    static func load(_ d: DType, _ e: String) -> String {
        switch d {
        case .float16: "ember_h2f(\(e))"
        case .bfloat16: "ember_bf2f(\(e))"
        case .bool: "(int)(\(e) != 0)"
        default: "(\(compute(d)))(\(e))"
        }
    }

    static func store(_ d: DType, _ e: String) -> String {
        switch d {
        case .float16: "ember_f2h((float)(\(e)))"
        case .bfloat16: "ember_f2bf((float)(\(e)))"
        case .bool: "(unsigned char)((\(e)) != 0)"
        default: "(\(storage(d)))(\(e))"
        }
    }

    /// A kernel's entry name: `unary_exp_float32`.
    public static func name(_ parts: String...) -> String { parts.joined(separator: "_") }

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
    template <typename T> __device__ __forceinline__ T ember_ipow(T a, T b) {
        if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0);
        T r = 1; while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } return r;
    }
    """

    // MARK: - The op table's CUDA expressions

    /// `op(x)` in compute type `t`; `p0`, `p1` are the op's scalar parameters (kernel
    /// arguments, so a new slope or exponent needs no new kernel). Nil: not defined for `t`.
    public static func unaryExpression(_ op: UnaryOp, _ t: String) -> String? {
        let float = t == "float" || t == "double"
        let one = float ? "(\(t))1" : "1"
        switch op {
        case .neg: return "-x"
        case .abs: return "(x < 0 ? -x : x)"
        case .sign: return "(\(t))((x > 0) - (x < 0))"
        case .relu: return float ? "(x > 0 || x != x ? x : (\(t))0)" : "(x > 0 ? x : 0)"
        case .square: return "x * x"
        case .floor: return float ? "ember_floor(x)" : "x"
        case .ceil: return float ? "ember_ceil(x)" : "x"
        case .round: return float ? "ember_rint(x)" : "x"
        case .logicalNot: return "(x == 0)"
        case .clamp: return float
            ? "(x != x ? x : (x < (\(t))p0 ? (\(t))p0 : (x > (\(t))p1 ? (\(t))p1 : x)))"
            : "(x < (\(t))p0 ? (\(t))p0 : (x > (\(t))p1 ? (\(t))p1 : x))"
        default: break
        }
        guard float else { return nil }
        switch op {
        case .exp: return "ember_exp(x)"
        case .log: return "ember_log(x)"
        case .log1p: return "ember_log1p(x)"
        case .expm1: return "ember_expm1(x)"
        case .sqrt: return "ember_sqrt(x)"
        case .rsqrt: return "ember_rsqrt(x)"
        case .sin: return "ember_sin(x)"
        case .cos: return "ember_cos(x)"
        case .tanh: return "ember_tanh(x)"
        case .sigmoid: return "\(one) / (\(one) + ember_exp(-x))"
        case .gelu: return "(\(t))0.5 * x * (\(one) + ember_erf(x * (\(t))0.70710678118654752440))"
        case .geluTanh: return "(\(t))0.5 * x * (\(one) + ember_tanh((\(t))0.79788456080286535588 * (x + (\(t))0.044715 * x * x * x)))"
        case .silu: return "x / (\(one) + ember_exp(-x))"
        case .erf: return "ember_erf(x)"
        case .reciprocal: return "\(one) / x"
        case .softplus: return "(x * (\(t))p0 > (\(t))p1 ? x : ember_log1p(ember_exp(x * (\(t))p0)) / (\(t))p0)"
        case .leakyRelu: return "(x > 0 ? x : x * (\(t))p0)"
        case .powScalar: return "ember_pow(x, (\(t))p0)"
        default: return nil
        }
    }

    /// `a op b` in compute type `t` (predicates give 0/1).
    public static func binaryExpression(_ op: BinaryOp, _ t: String) -> String {
        let float = t == "float" || t == "double"
        switch op {
        case .add: return "a + b"
        case .sub: return "a - b"
        case .mul: return "a * b"
        case .div: return float ? "a / b" : "(b == 0 ? 0 : a / b)"
        case .pow: return float ? "ember_pow(a, b)" : "ember_ipow(a, b)"
        case .maximum: return float ? "(a != a ? a : (b != b ? b : (a > b ? a : b)))" : "(a > b ? a : b)"
        case .minimum: return float ? "(a != a ? a : (b != b ? b : (a < b ? a : b)))" : "(a < b ? a : b)"
        case .eq: return "(a == b)"
        case .ne: return "(a != b)"
        case .lt: return "(a < b)"
        case .le: return "(a <= b)"
        case .gt: return "(a > b)"
        case .ge: return "(a >= b)"
        case .logicalAnd: return "(a != 0 && b != 0)"
        case .logicalOr: return "(a != 0 || b != 0)"
        case .reluBackward: return "(b > 0 ? a : (\(t))0)"
        }
    }

    public static let unaryOps: [(String, UnaryOp)] = [
        ("neg", .neg), ("abs", .abs), ("sign", .sign), ("exp", .exp), ("log", .log), ("log1p", .log1p),
        ("expm1", .expm1), ("sqrt", .sqrt), ("rsqrt", .rsqrt), ("sin", .sin), ("cos", .cos), ("tanh", .tanh),
        ("sigmoid", .sigmoid), ("relu", .relu), ("gelu", .gelu), ("geluTanh", .geluTanh), ("silu", .silu),
        ("erf", .erf), ("reciprocal", .reciprocal), ("square", .square), ("floor", .floor), ("ceil", .ceil),
        ("round", .round), ("logicalNot", .logicalNot), ("softplus", .softplus(beta: 1, threshold: 20)),
        ("leakyRelu", .leakyRelu(slope: 0.01)), ("powScalar", .powScalar(2)), ("clamp", .clamp(min: 0, max: 1)),
    ]

    public static func unaryName(_ op: UnaryOp) -> String {
        switch op {
        case .softplus: "softplus"
        case .leakyRelu: "leakyRelu"
        case .powScalar: "powScalar"
        case .clamp: "clamp"
        default: unaryOps.first { $0.1 == op }!.0
        }
    }

    public static let binaryOps: [(String, BinaryOp)] = [
        ("add", .add), ("sub", .sub), ("mul", .mul), ("div", .div), ("pow", .pow), ("maximum", .maximum),
        ("minimum", .minimum), ("eq", .eq), ("ne", .ne), ("lt", .lt), ("le", .le), ("gt", .gt), ("ge", .ge),
        ("logicalAnd", .logicalAnd), ("logicalOr", .logicalOr), ("reluBackward", .reluBackward),
    ]

    public static func binaryName(_ op: BinaryOp) -> String { binaryOps.first { $0.1 == op }!.0 }

    /// The op's position in `unaryOps` (ops with parameters by their case).
    public static func unaryIndex(_ op: UnaryOp) -> Int {
        switch op {
        case .softplus: return unaryOps.firstIndex { $0.0 == "softplus" }!
        case .leakyRelu: return unaryOps.firstIndex { $0.0 == "leakyRelu" }!
        case .powScalar: return unaryOps.firstIndex { $0.0 == "powScalar" }!
        case .clamp: return unaryOps.firstIndex { $0.0 == "clamp" }!
        default: return unaryOps.firstIndex { $0.1 == op }!
        }
    }

    /// The op's position in `binaryOps`.
    public static func binaryIndex(_ op: BinaryOp) -> Int { binaryOps.firstIndex { $0.1 == op }! }

    // MARK: - Modules

    /// Elementwise kernels of one input dtype: every unary op, every binary op, fill,
    /// select, and copies to every dtype. Each has a strided form (`Geo`) and a contiguous
    /// form (`_c`).
    public static func elementwiseModule(_ d: DType) -> String {
        var s = prelude + "\n"
        let t = compute(d), st = storage(d)
        func strided(_ name: String, _ params: String, _ body: String) {
            s += """
            extern "C" __global__ void \(name)(Geo g, \(params), double p0, double p1) {
                for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += (long long)gridDim.x * blockDim.x) {
                    long long o[4]; ember_offsets(g, i, o);
                    \(body)
                }
            }
            extern "C" __global__ void \(name)_c(long long n, \(params), double p0, double p1) {
                for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
                    long long o[4] = {i, i, i, i};
                    \(body)
                }
            }

            """
        }
        for (n, op) in unaryOps {
            guard let e = unaryExpression(op, t) else { continue }
            let outD: DType = op == .logicalNot ? .bool : d
            strided(name("unary", n, d.description), "\(storage(outD))* out, const \(st)* in",
                    "\(t) x = \(load(d, "in[o[1]]")); out[o[0]] = \(store(outD, e));")
        }
        for (n, op) in binaryOps {
            let outD: DType = op.isPredicateForKernel ? .bool : d
            strided(name("binary", n, d.description), "\(storage(outD))* out, const \(st)* A, const \(st)* B",
                    "\(t) a = \(load(d, "A[o[1]]")), b = \(load(d, "B[o[2]]")); out[o[0]] = \(store(outD, binaryExpression(op, t)));")
        }
        strided(name("fill", d.description), "\(st)* out", "out[o[0]] = \(store(d, "p0"));")
        strided(name("select", d.description), "\(st)* out, const unsigned char* C, const \(st)* A, const \(st)* B",
                "out[o[0]] = C[o[1]] ? A[o[2]] : B[o[3]];")
        for to in DType.allCases {
            let via = d.isFloatingPoint || to.isFloatingPoint ? (d == .float64 || to == .float64 ? "double" : "float") : "long long"
            strided(name("copy", d.description, to.description), "\(storage(to))* out, const \(st)* in",
                    "\(via) v = (\(via))(\(load(d, "in[o[1]]"))); out[o[0]] = \(store(to, "v"));")
        }
        return s
    }

    /// Reductions of one dtype: sum, prod, max, min, argmax, argmin over the reduced
    /// dimensions of each output element, one block per output with a shared-memory tree.
    /// `gk` maps an output index to the input's base offset; `gr` walks the reduced elements.
    public static func reductionModule(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        let acc = d.isFloatingPoint ? (d == .float64 ? "double" : "float") : "long long"
        var s = prelude + "\n"
        let ops: [(String, String, String, String, Bool)] = [
            // name, identity, combine(a, b), output type expression, isArg
            ("sum", "0", "a + b", acc, false),
            ("prod", "1", "a * b", acc, false),
            ("max", d.isFloatingPoint ? "-EMBER_INF" : "(-9223372036854775807LL - 1)", d.isFloatingPoint ? "(a != a || a > b ? a : b)" : "(a > b ? a : b)", acc, false),
            ("min", d.isFloatingPoint ? "EMBER_INF" : "9223372036854775807LL", d.isFloatingPoint ? "(a != a || a < b ? a : b)" : "(a < b ? a : b)", acc, false),
        ]
        for (n, identity, combine, _, _) in ops {
            let outStore = store(d, "r")
            s += """
            extern "C" __global__ void \(name("reduce", n, d.description))(Geo gk, Geo gr, \(st)* out, const \(st)* in) {
                __shared__ \(acc) part[256];
                long long k = blockIdx.x;
                if (k >= gk.n) return;
                long long base[4]; ember_offsets(gk, k, base);
                \(acc) r = \(identity);
                for (long long j = threadIdx.x; j < gr.n; j += blockDim.x) {
                    long long o[4]; ember_offsets(gr, j, o);
                    \(acc) a = r, b = (\(acc))\(load(d, "in[base[1] + o[1]]"));
                    r = \(combine);
                }
                part[threadIdx.x] = r;
                __syncthreads();
                for (int w = blockDim.x / 2; w > 0; w >>= 1) {
                    if (threadIdx.x < w) { \(acc) a = part[threadIdx.x], b = part[threadIdx.x + w]; part[threadIdx.x] = \(combine); }
                    __syncthreads();
                }
                if (threadIdx.x == 0) { r = part[0]; out[base[0]] = \(outStore); }
            }

            """
        }
        // One thread per output, the reduced elements in a serial loop: for many outputs over
        // few elements each (column sums such as bias gradients), where neighbouring threads
        // read neighbouring addresses.
        for (n, identity, combine, _, _) in ops {
            s += """
            extern "C" __global__ void \(name("reduceEach", n, d.description))(Geo gk, Geo gr, \(st)* out, const \(st)* in) {
                for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < gk.n; k += (long long)gridDim.x * blockDim.x) {
                    long long base[4]; ember_offsets(gk, k, base);
                    \(acc) r = \(identity);
                    for (long long j = 0; j < gr.n; j++) {
                        long long o[4]; ember_offsets(gr, j, o);
                        \(acc) a = r, b = (\(acc))\(load(d, "in[base[1] + o[1]]"));
                        r = \(combine);
                    }
                    out[base[0]] = \(store(d, "r"));
                }
            }

            """
        }
        for (n, better) in [("argmax", ">"), ("argmin", "<")] {
            let nanFirst = d.isFloatingPoint ? "(b != b && a == a) || " : ""
            s += """
            extern "C" __global__ void \(name("reduceEach", n, d.description))(Geo gk, Geo gr, long long* out, const \(st)* in) {
                for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < gk.n; k += (long long)gridDim.x * blockDim.x) {
                    long long base[4]; ember_offsets(gk, k, base);
                    \(t) best = 0; long long at = -1;
                    for (long long j = 0; j < gr.n; j++) {
                        long long o[4]; ember_offsets(gr, j, o);
                        \(t) a = best, b = \(load(d, "in[base[1] + o[1]]"));
                        if (at < 0 || \(nanFirst)(a == a && b \(better) a)) { best = b; at = j; }
                    }
                    out[base[0]] = at;
                }
            }

            """
        }
        for (n, better) in [("argmax", ">"), ("argmin", "<")] {
            let nanFirst = d.isFloatingPoint ? "(b != b && a == a) || " : ""
            s += """
            extern "C" __global__ void \(name("reduce", n, d.description))(Geo gk, Geo gr, long long* out, const \(st)* in) {
                __shared__ \(t) val[256];
                __shared__ long long idx[256];
                long long k = blockIdx.x;
                if (k >= gk.n) return;
                long long base[4]; ember_offsets(gk, k, base);
                \(t) best = 0; long long at = -1;
                for (long long j = threadIdx.x; j < gr.n; j += blockDim.x) {
                    long long o[4]; ember_offsets(gr, j, o);
                    \(t) a = best, b = \(load(d, "in[base[1] + o[1]]"));
                    if (at < 0 || \(nanFirst)(a == a && b \(better) a)) { best = b; at = j; }
                }
                val[threadIdx.x] = best; idx[threadIdx.x] = at;
                __syncthreads();
                for (int w = blockDim.x / 2; w > 0; w >>= 1) {
                    if (threadIdx.x < w) {
                        \(t) a = val[threadIdx.x], b = val[threadIdx.x + w];
                        long long ia = idx[threadIdx.x], ib = idx[threadIdx.x + w];
                        bool take = ib >= 0 && (ia < 0 || \(nanFirst)(a == a && (b \(better) a || (b == a && ib < ia))));
                        if (take) { val[threadIdx.x] = b; idx[threadIdx.x] = ib; }
                    }
                    __syncthreads();
                }
                if (threadIdx.x == 0) out[base[0]] = idx[0];
            }

            """
        }
        return s
    }

    /// Kernels with their own index logic (float32 and float64): gathers and scatters,
    /// windows (im2col, col2im, max pooling), softmax and cross-entropy rows, and a plain
    /// matrix product for the dtypes cuBLAS does not take.
    public static func structuredModule(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        let float = d.isFloatingPoint
        /// `p += v` for elements that many threads may add to at once: hardware atomics for
        /// 32- and 64-bit types, a compare-and-swap loop on the enclosing word for 8- and
        /// 16-bit ones (half types add as floats; bool ORs).
        func add(_ p: String, _ v: String) -> String {
            switch d {
            case .float32, .float64, .int32: "atomicAdd(&\(p), \(v))"
            case .int64: "atomicAdd((unsigned long long*)&\(p), (unsigned long long)(\(v)))"
            case .bool: "if (\(v)) ember_atomic_small(&\(p), 1, [&](unsigned int c) { return 1u; })"
            case .uint8: "ember_atomic_small(&\(p), 1, [&](unsigned int c) { return (c + (unsigned int)(\(v))) & 0xffu; })"
            case .float16, .bfloat16:
                "ember_atomic_small(&\(p), 2, [&](unsigned int c) { return (unsigned int)\(store(d, "\(load(d, "(unsigned short)c")) + \(load(d, v))")); })"
            }
        }
        var s = prelude + "\n"
        let grid = "for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)"
        s += """
        // Index values are checked here, not on the host: a negative one counts from the end;
        // one out of range is skipped and written to `check` as [code, value, size] (the host
        // reports it at its next synchronisation). The first bad value claims the word.
        __device__ void \(name("reportBad", d.description))(long long* check, long long code, long long value, long long size) {
            if (atomicCAS((unsigned long long*)check, 0ULL, (unsigned long long)code) == 0ULL) { check[1] = value; check[2] = size; }
        }
        __device__ bool \(name("indexOK", d.description))(long long* k, long long size, long long* check, long long code) {
            long long v = *k;
            if (v < 0) v += size;
            if (v < 0 || v >= size) { \(name("reportBad", d.description))(check, code, *k, size); return false; }
            *k = v; return true;
        }
        // out[o, i, in] = x[o, index[i], in]
        extern "C" __global__ void \(name("indexSelect", d.description))(long long n, long long L, long long dimSize, long long inner, \(st)* out, const \(st)* x, const long long* index, long long* check) {
            \(grid) {
                long long in = i % inner, r = i / inner, li = r % L, o = r / L, k = index[li];
                if (!\(name("indexOK", d.description))(&k, dimSize, check, 2)) continue;
                out[i] = x[(o * dimSize + k) * inner + in];
            }
        }
        // out[o, index[i], in] += src[o, i, in]
        extern "C" __global__ void \(name("indexAdd", d.description))(long long n, long long L, long long dimSize, long long inner, \(st)* out, const \(st)* src, const long long* index, long long* check) {
            \(grid) {
                long long in = i % inner, r = i / inner, li = r % L, o = r / L, k = index[li];
                if (!\(name("indexOK", d.description))(&k, dimSize, check, 3)) continue;
                \(add("out[(o * dimSize + k) * inner + in]", "src[i]"));
            }
        }
        // gather/scatter over a contiguous index tensor; g: [index shape] with strides of x (st[1]) / out (st[0]) / src (st[2])
        extern "C" __global__ void \(name("gather", d.description))(Geo g, int dim, long long size, \(st)* out, const \(st)* x, const long long* index, long long* check) {
            for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += (long long)gridDim.x * blockDim.x) {
                long long o[4]; ember_offsets(g, i, o);
                long long k = index[i];
                if (!\(name("indexOK", d.description))(&k, size, check, 4)) continue;
                out[o[0]] = x[o[1] + k * g.st[3][dim]];
            }
        }
        extern "C" __global__ void \(name("scatter", d.description))(Geo g, int dim, int accumulate, long long size, \(st)* out, const \(st)* src, const long long* index, long long* check) {
            for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += (long long)gridDim.x * blockDim.x) {
                long long o[4]; ember_offsets(g, i, o);
                long long k = index[i];
                if (!\(name("indexOK", d.description))(&k, size, check, accumulate ? 6 : 5)) continue;
                long long p = o[0] + k * g.st[3][dim];
                if (accumulate) { \(add("out[p]", "src[o[2]]")); } else { out[p] = src[o[2]]; }
            }
        }

        """
        guard float else { return s }
        s += """
        // Windows: x [N, C, H, W]; cols [N, C*kh*kw, Ho*Wo]
        struct Win { long long N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo; };
        extern "C" __global__ void \(name("im2col", d.description))(Win w, double pad, \(st)* cols, const \(st)* x) {
            long long L = w.Ho * w.Wo, n = w.N * w.C * w.kh * w.kw * L;
            \(grid) {
                long long p = i % L, r = i / L, j = r % w.kw; r /= w.kw; long long q = r % w.kh; r /= w.kh;
                long long c = r % w.C, b = r / w.C, y = p / w.Wo, xo = p % w.Wo;
                long long iy = y * w.sh - w.ph + q * w.dh, ix = xo * w.sw - w.pw + j * w.dw;
                cols[i] = (iy >= 0 && iy < w.H && ix >= 0 && ix < w.W) ? x[((b * w.C + c) * w.H + iy) * w.W + ix] : \(store(d, "pad"));
            }
        }
        // col2im as a gather: each input pixel sums the columns that read it (deterministic).
        extern "C" __global__ void \(name("col2im", d.description))(Win w, \(st)* x, const \(st)* cols) {
            long long L = w.Ho * w.Wo, n = w.N * w.C * w.H * w.W;
            \(grid) {
                long long ix = i % w.W, r = i / w.W, iy = r % w.H; r /= w.H; long long c = r % w.C, b = r / w.C;
                \(t) acc = 0;
                for (long long q = 0; q < w.kh; q++) {
                    long long ty = iy + w.ph - q * w.dh;
                    if (ty < 0 || ty % w.sh) continue;
                    long long y = ty / w.sh; if (y >= w.Ho) continue;
                    for (long long j = 0; j < w.kw; j++) {
                        long long tx = ix + w.pw - j * w.dw;
                        if (tx < 0 || tx % w.sw) continue;
                        long long xo = tx / w.sw; if (xo >= w.Wo) continue;
                        acc += \(load(d, "cols[(((b * w.C + c) * w.kh + q) * w.kw + j) * L + y * w.Wo + xo]"));
                    }
                }
                x[i] = \(store(d, "\(load(d, "x[i]")) + acc"));
            }
        }
        extern "C" __global__ void \(name("maxPool2d", d.description))(Win w, \(st)* out, long long* indices, const \(st)* x) {
            long long n = w.N * w.C * w.Ho * w.Wo;
            \(grid) {
                long long xo = i % w.Wo, r = i / w.Wo, y = r % w.Ho, pl = r / w.Ho;
                const \(st)* plane = x + pl * w.H * w.W;
                \(t) best = -EMBER_INF; long long at = -1;
                for (long long q = 0; q < w.kh; q++) {
                    long long iy = y * w.sh - w.ph + q * w.dh; if (iy < 0 || iy >= w.H) continue;
                    for (long long j = 0; j < w.kw; j++) {
                        long long ix = xo * w.sw - w.pw + j * w.dw; if (ix < 0 || ix >= w.W) continue;
                        \(t) v = \(load(d, "plane[iy * w.W + ix]"));
                        if (at < 0 || v > best || v != v) { best = v; at = iy * w.W + ix; }
                    }
                }
                out[i] = \(store(d, "best")); indices[i] = at;
            }
        }
        extern "C" __global__ void \(name("maxPool2dBackward", d.description))(long long n, long long l, long long hw, \(st)* out, const \(st)* grad, const long long* indices) {
            \(grid) {
                long long at = indices[i]; if (at < 0) continue;
                \(add("out[(i / l) * hw + at]", "grad[i]"));
            }
        }
        // A row's maximum m (0 when the row is all -inf) and Σ exp(x − m), by the whole block.
        __device__ void \(name("rowStats", d.description))(const \(st)* xr, long long n, \(t)* red, \(t)* mOut, \(t)* sumOut) {
            \(t) m = -EMBER_INF;
            for (long long j = threadIdx.x; j < n; j += blockDim.x) { \(t) v = \(load(d, "xr[j]")); m = v > m || v != v ? v : m; }
            red[threadIdx.x] = m; __syncthreads();
            for (int w = blockDim.x / 2; w > 0; w >>= 1) { if (threadIdx.x < w) { \(t) a = red[threadIdx.x], b = red[threadIdx.x + w]; red[threadIdx.x] = b > a || b != b ? b : a; } __syncthreads(); }
            m = red[0]; if (m == -EMBER_INF) m = 0; __syncthreads();
            \(t) sum = 0;
            for (long long j = threadIdx.x; j < n; j += blockDim.x) sum += ember_exp(\(load(d, "xr[j]")) - m);
            red[threadIdx.x] = sum; __syncthreads();
            for (int w = blockDim.x / 2; w > 0; w >>= 1) { if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w]; __syncthreads(); }
            *mOut = m; *sumOut = red[0];
        }
        // One block per row: softmax (or log-softmax) over n contiguous values.
        extern "C" __global__ void \(name("softmax", d.description))(long long rows, long long n, int logMode, \(st)* out, const \(st)* x) {
            __shared__ \(t) red[256];
            long long row = blockIdx.x; if (row >= rows) return;
            const \(st)* xr = x + row * n; \(st)* orow = out + row * n;
            \(t) m, sum;
            \(name("rowStats", d.description))(xr, n, red, &m, &sum);
            for (long long j = threadIdx.x; j < n; j += blockDim.x) {
                \(t) v = \(load(d, "xr[j]")) - m;
                orow[j] = \(store(d, "logMode ? v - ember_log(sum) : ember_exp(v) / sum"));
            }
        }
        // Per row: loss, log-sum-exp and 1/0 for a counted/ignored target. A target out of
        // range writes [1, target, classes] to `check` (read by the host) and a NaN loss.
        extern "C" __global__ void \(name("crossEntropyRows", d.description))(long long rows, long long c, long long ignoreIndex, \(st)* loss, \(st)* lse, \(st)* valid, const \(st)* x, const long long* target, long long* check) {
            __shared__ \(t) red[256];
            long long row = blockIdx.x; if (row >= rows) return;
            const \(st)* xr = x + row * c;
            \(t) m, sum;
            \(name("rowStats", d.description))(xr, c, red, &m, &sum);
            if (threadIdx.x == 0) {
                \(t) l = m + ember_log(sum);
                lse[row] = \(store(d, "l"));
                long long k = target[row];
                valid[row] = \(store(d, "k == ignoreIndex ? (\(t))0 : (\(t))1"));
                if (k != ignoreIndex && (k < 0 || k >= c)) {
                    \(name("reportBad", d.description))(check, 1, k, c);
                    loss[row] = \(store(d, "(\(t))EMBER_NAN"));
                } else {
                    loss[row] = \(store(d, "k == ignoreIndex ? (\(t))0 : l - \(load(d, "xr[k]"))"));
                }
            }
        }
        // d logits = (softmax − onehot(target)) · grad[row], 0 on ignored rows.
        extern "C" __global__ void \(name("crossEntropyRowsBackward", d.description))(long long n, long long c, long long ignoreIndex, long long gstride, \(st)* out, const \(st)* x, const \(st)* lse, const \(st)* g, const long long* target) {
            \(grid) {
                long long row = i / c, j = i % c, k = target[row];
                if (k == ignoreIndex) { out[i] = \(store(d, "(\(t))0")); continue; }
                \(t) p = ember_exp(\(load(d, "x[i]")) - \(load(d, "lse[row]")));
                out[i] = \(store(d, "(p - (j == k ? (\(t))1 : (\(t))0)) * \(load(d, "g[row * gstride]"))"));
            }
        }

        """
        guard d == .float32 || d == .float64 else { return s }
        let sqrtf = d == .float32 ? "sqrtf" : "sqrt"
        s += """
        // One Adam/AdamW step per element, in FusedUpdate.adamLoop's order (flags: 1 weight
        // decay, 2 decoupled, 4 amsgrad); k0…k7 are FusedUpdate.AdamCoefficients.derived.
        extern "C" __global__ void \(name("adam", d.description))(long long n, int flags, double k0, double k1, double k2, double k3, double k4, double k5, double k6, double k7, \(st)* p, const \(st)* g, \(st)* m, \(st)* v, \(st)* vmax) {
            const \(t) c1 = (\(t))k0, b2 = (\(t))k1, c2 = (\(t))k2, e = (\(t))k3, wd = (\(t))k4, decay = (\(t))k5, step = (\(t))k6, sbc2 = (\(t))k7;
            \(grid) {
                \(t) gi = g[i], pi = p[i];
                if (flags & 1) { if (flags & 2) pi *= decay; else gi += wd * pi; }
                \(t) mi = m[i] + c1 * (gi - m[i]);
                \(t) vi = b2 * v[i] + c2 * gi * gi;
                m[i] = mi; v[i] = vi;
                \(t) second = vi;
                if (flags & 4) { \(t) x = vmax[i]; second = vi >= x ? vi : x; vmax[i] = second; }
                p[i] = pi - step * mi / (\(sqrtf)(second) / sbc2 + e);
            }
        }
        // One SGD step per element, in FusedUpdate.sgd's order (flags: 1 momentum buffer,
        // 2 Nesterov, 4 first step: the buffer starts as the gradient); damp = 1 - dampening.
        extern "C" __global__ void \(name("sgd", d.description))(long long n, int flags, double lr, double momentum, double damp, double wd, \(st)* p, const \(st)* g, \(st)* buf) {
            const \(t) l = (\(t))lr, mo = (\(t))momentum, dm = (\(t))damp, w = (\(t))wd;
            \(grid) {
                \(t) pi = p[i], gi = g[i] + w * pi;
                if (flags & 1) {
                    \(t) b = (flags & 4) ? gi : mo * buf[i] + dm * gi;
                    buf[i] = b;
                    gi = (flags & 2) ? gi + mo * b : b;
                }
                p[i] = pi - l * gi;
            }
        }

        """
        return s
    }

    /// Every module, for compile checks: (module name, source).
    public static func allModules() -> [(String, String)] {
        var out: [(String, String)] = []
        for d in DType.allCases {
            out.append(("elementwise_\(d)", elementwiseModule(d)))
            out.append(("reduce_\(d)", reductionModule(d)))
            out.append(("structured_\(d)", structuredModule(d)))
        }
        return out
    }
}

extension BinaryOp {
    /// Predicates write bool outputs.
    var isPredicateForKernel: Bool {
        switch self {
        case .eq, .ne, .lt, .le, .gt, .ge, .logicalAnd, .logicalOr: true
        default: false
        }
    }
}
