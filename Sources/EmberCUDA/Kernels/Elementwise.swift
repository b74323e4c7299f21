import EmberCore

// Elementwise kernels on the GPU: fill, copy (with dtype conversion), unary, binary,
// select. One module per input dtype; every kernel has a strided form (`Geo`) and a
// contiguous one (`_c`). The op's scalar parameters (a slope, an exponent, clamp bounds)
// are kernel arguments, so a new value needs no new kernel.

extension KernelSource {
    /// `op(x)` in compute type `t` (`p0`, `p1`: `UnaryOp.parameters`). Nil: not defined for `t`
    /// (floating-point ops on integers, which the ops promote first).
    public static func unaryExpression(_ op: UnaryKind, _ t: String) -> String? {
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
        // min(max(x, lo), hi): a lower bound above the upper one gives the upper one.
        case .clamp: return float
            ? "(x != x ? x : ((x < (\(t))p0 ? (\(t))p0 : x) > (\(t))p1 ? (\(t))p1 : (x < (\(t))p0 ? (\(t))p0 : x)))"
            : "((x < (\(t))p0 ? (\(t))p0 : x) > (\(t))p1 ? (\(t))p1 : (x < (\(t))p0 ? (\(t))p0 : x))"
        case .exp: return float ? "ember_exp(x)" : nil
        case .log: return float ? "ember_log(x)" : nil
        case .log1p: return float ? "ember_log1p(x)" : nil
        case .expm1: return float ? "ember_expm1(x)" : nil
        case .sqrt: return float ? "ember_sqrt(x)" : nil
        case .rsqrt: return float ? "ember_rsqrt(x)" : nil
        case .sin: return float ? "ember_sin(x)" : nil
        case .cos: return float ? "ember_cos(x)" : nil
        case .tanh: return float ? "ember_tanh(x)" : nil
        case .sigmoid: return float ? "\(one) / (\(one) + ember_exp(-x))" : nil
        case .gelu: return float ? "(\(t))0.5 * x * (\(one) + ember_erf(x * (\(t))0.70710678118654752440))" : nil
        case .geluTanh:
            return float ? "(\(t))0.5 * x * (\(one) + ember_tanh((\(t))0.79788456080286535588 * (x + (\(t))0.044715 * x * x * x)))" : nil
        case .silu: return float ? "x / (\(one) + ember_exp(-x))" : nil
        case .erf: return float ? "ember_erf(x)" : nil
        case .reciprocal: return float ? "\(one) / x" : nil
        case .softplus: return float ? "(x * (\(t))p0 > (\(t))p1 ? x : ember_log1p(ember_exp(x * (\(t))p0)) / (\(t))p0)" : nil
        case .leakyRelu: return float ? "(x > 0 ? x : x * (\(t))p0)" : nil
        case .powScalar: return float ? "ember_pow(x, (\(t))p0)" : nil
        case .trunc: return float ? "ember_trunc(x)" : "x"
        case .tan, .asin, .acos, .atan, .sinh, .cosh, .asinh, .acosh, .atanh, .erfc, .exp2, .log2, .log10:
            return float ? "ember_\(op.name)(x)" : nil
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
        case .atan2: return "ember_atan2(a, b)"
        case .hypot: return "ember_hypot(a, b)"
        case .copysign: return "ember_copysign(a, b)"
        case .fmod: return float ? "ember_fmod(a, b)" : "(b == 0 ? 0 : a % b)"
        case .remainder: return float ? "ember_remainder(a, b)" : "ember_iremainder(a, b)"
        case .floorDivide: return float ? "ember_floordiv(a, b)" : "ember_ifloordiv(a, b)"
        }
    }

    /// Elementwise kernels of one input dtype: every unary op defined for it, every binary
    /// op, fill, select, and copies to every dtype.
    public static func elementwiseModule(_ d: DType) -> String {
        var s = prelude + "\n"
        let t = compute(d), st = storage(d)
        let float = d.isFloatingPoint
        func strided(_ name: String, _ params: String, _ body: String) {
            s += """
            extern "C" __global__ void \(name)(Geo g, \(params), double p0, double p1) {
                for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += (long long)gridDim.x * blockDim.x) {
                    long long o[4]; ember_offsets(g, i, o);
                    \(body)
                }
            }
            extern "C" __global__ void \(name)_c(long long n, \(params), double p0, double p1) {
                \(gridLoop) {
                    long long o[4] = {i, i, i, i};
                    \(body)
                }
            }

            """
        }
        for op in UnaryKind.allCases {
            guard let e = unaryExpression(op, t) else { continue }
            let outD: DType = op == .logicalNot ? .bool : d
            strided(ElementwiseKernel.unary(op, d).name, "\(storage(outD))* out, const \(st)* in",
                    "\(t) x = \(load(d, "in[o[1]]")); out[o[0]] = \(store(outD, e));")
        }
        for op in BinaryOp.allCases where float || !op.needsFloat {
            let outD: DType = op.isPredicate ? .bool : d
            strided(ElementwiseKernel.binary(op, d).name, "\(storage(outD))* out, const \(st)* A, const \(st)* B",
                    "\(t) a = \(load(d, "A[o[1]]")), b = \(load(d, "B[o[2]]")); out[o[0]] = \(store(outD, binaryExpression(op, t)));")
        }
        strided(ElementwiseKernel.fill(d).name, "\(st)* out", "out[o[0]] = \(store(d, "p0"));")
        strided(ElementwiseKernel.select(d).name, "\(st)* out, const unsigned char* C, const \(st)* A, const \(st)* B",
                "out[o[0]] = C[o[1]] ? A[o[2]] : B[o[3]];")
        for to in DType.allCases {
            let via = d.isFloatingPoint || to.isFloatingPoint ? (d == .float64 || to == .float64 ? "double" : "float") : "long long"
            strided(ElementwiseKernel.copy(d, to).name, "\(storage(to))* out, const \(st)* in",
                    "\(via) v = (\(via))(\(load(d, "in[o[1]]"))); out[o[0]] = \(store(to, "v"));")
        }
        return s
    }
}

/// An elementwise kernel: its family, op and dtypes. Its name and its cache key both come
/// from here (the module is the input dtype's).
enum ElementwiseKernel: Hashable {
    case fill(DType)
    case copy(DType, DType)
    case unary(UnaryKind, DType)
    case binary(BinaryOp, DType)
    case select(DType)

    /// The dtype whose module holds the kernel.
    var module: DType {
        switch self {
        case .fill(let d), .copy(let d, _), .unary(_, let d), .binary(_, let d), .select(let d): d
        }
    }

    /// The strided kernel's name (`unary_exp_float32`); the contiguous one adds `_c`.
    var name: String {
        switch self {
        case .fill(let d): KernelSource.name("fill", "\(d)")
        case .copy(let from, let to): KernelSource.name("copy", "\(from)", "\(to)")
        case .unary(let op, let d): KernelSource.name("unary", op.name, "\(d)")
        case .binary(let op, let d): KernelSource.name("binary", op.name, "\(d)")
        case .select(let d): KernelSource.name("select", "\(d)")
        }
    }
}

/// A loaded elementwise kernel's cache key: the kernel and which of its two forms.
struct ElementwiseHandle: Hashable {
    let kernel: ElementwiseKernel
    let contiguous: Bool
}

extension CUDABackend {
    /// Runs an elementwise kernel over `out`'s shape with operands `ins` (broadcast views):
    /// the contiguous form when every operand is contiguous with `out`'s shape.
    func run(_ kernel: ElementwiseKernel, _ out: Tensor, _ ins: [Tensor], p0: Double = 0, p1: Double = 0) {
        let n = out.count
        if n == 0 { return }
        let all = [out] + ins
        let contiguous = all.allSatisfy { $0.isContiguous && $0.shape == out.shape }
        let key = ElementwiseHandle(kernel: kernel, contiguous: contiguous)
        handleLock.lock()
        var f = elementwiseHandles[key]
        handleLock.unlock()
        if f == nil {
            let made = self.kernel(.elementwise, kernel.module, contiguous ? kernel.name + "_c" : kernel.name)
            handleLock.lock(); elementwiseHandles[key] = made; handleLock.unlock()
            f = made
        }
        let args = KernelArgs.forThisThread()
        if contiguous {
            args.add(Int64(n))
        } else {
            // Offsets are folded into the base addresses: the Geo offsets stay 0.
            args.addWords(geo(out.shape, all.map { ($0.strides, 0) }))
        }
        for t in all { args.add(address(t)) }
        args.add(p0).add(p1)
        dev.launch(f!, items: n, args)
    }

    func fill(_ out: Tensor, _ value: Double) {
        run(.fill(out.dtype), out, [], p0: value)
    }

    func copy(_ src: Tensor, into dst: Tensor) {
        if src.dtype == dst.dtype && src.isContiguous && dst.isContiguous && src.count == dst.count {
            if src.count == 0 { return }
            dev.makeCurrent()
            dev.driver.must(dev.driver.cuMemcpyDtoDAsync(address(dst), address(src), src.count * src.dtype.itemSize, dev.stream),
                            "cuMemcpyDtoDAsync")
            return
        }
        run(.copy(src.dtype, dst.dtype), dst, [src])
    }

    func unary(_ op: UnaryOp, _ x: Tensor, _ out: Tensor) {
        var (p0, p1) = op.parameters
        if case .clamp(let lo, let hi) = op, !x.dtype.isFloatingPoint {
            // Integer bounds inside the dtype's range: the kernel converts them to it, and an
            // out-of-range conversion is undefined (a uint8 clamp without an upper bound got 254).
            let range: (Double, Double) = switch x.dtype {
            case .uint8: (0, 255)
            case .bool: (0, 1)
            case .int32: (-2_147_483_648, 2_147_483_647)
            case .int64, .float16, .bfloat16, .float32, .float64: (-9.2e18, 9.2e18)
            }
            p0 = Swift.min(Swift.max(lo.map { $0.rounded(.up) } ?? range.0, range.0), range.1)
            p1 = Swift.max(Swift.min(hi.map { $0.rounded(.down) } ?? range.1, range.1), range.0)
        }
        guard KernelSource.unaryExpression(op.kind, KernelSource.compute(x.dtype)) != nil else {
            fatalError("\(op.kind.name): not defined for \(x.dtype) tensors on CUDA (please report this)")
        }
        run(.unary(op.kind, x.dtype), out, [x], p0: p0, p1: p1)
    }

    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        run(.binary(op, a.dtype), out, [a, b])
    }

    func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        run(.select(out.dtype), out, [cond, a, b])
    }
}
