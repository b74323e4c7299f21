import CEmberKernels
import EmberCPU
import RealModule

/// One run of a unary kernel: `callAsFunction(f)` applies `f` to its elements.
struct Run1<A, R> {
    let x: UnsafePointer<A>, o: UnsafeMutablePointer<R>, n: Int, sx: Int, so: Int

    @inline(__always) func callAsFunction(_ f: (A) -> R) {
        if so == 1 && sx == 1 { for i in 0..<n { o[i] = f(x[i]) } } else { for i in 0..<n { o[i * so] = f(x[i * sx]) } }
    }
}

/// Elementwise primitives on the CPU: fill, copy (with dtype conversion), unary, binary, select.
extension CPUBackend {
    public func fill(_ out: Tensor, _ value: Double) {
        let p = StridedPlan(shape: out.shape, out.strides)
        let s = p.innerStride(0)
        func run<T>(_ v: T) {
            let o = out.ptr(T.self)
            forEachRun(p) { off, n in
                let po = o + off[0]
                if s == 1 { for i in 0..<n { po[i] = v } } else { for i in 0..<n { po[i * s] = v } }
            }
        }
        switch out.dtype {
        case .float32: run(Float(value))
        case .float64: run(value)
        case .int64: run(Swift.abs(value) > 9e18 ? (value > 0 ? Int64.max : Int64.min) : Int64(value))
        case .int32: run(Int32(fromDouble: value))
        case .uint8: run(UInt8(fromDouble: value))
        case .bool: run(value != 0)
        case .float16: run(HalfConversion.floatToHalf(Float(value)))
        case .bfloat16: run(HalfConversion.floatToBFloat(Float(value)))
        }
    }

    public func copy(_ src: Tensor, into dst: Tensor) {
        let p = StridedPlan(shape: dst.shape, dst.strides, src.strides)
        let sd = p.innerStride(0), ss = p.innerStride(1)
        let same = src.dtype == dst.dtype
        forEachRun(p) { off, n in
            /// `dst[i] = f(src[i])` over this run (one specialised loop per type pair).
            @inline(__always) func convert<S, D>(_: S.Type, _: D.Type, _ f: (S) -> D) {
                let a = src.ptr(S.self) + off[1], r = dst.ptr(D.self) + off[0]
                if sd == 1 && ss == 1 { for i in 0..<n { r[i] = f(a[i]) } } else if sd == 1 && ss == 0 {
                    let v = f(a[0])  // a broadcast source (expand): a fill
                    for i in 0..<n { r[i] = v }
                } else { for i in 0..<n { r[i * sd] = f(a[i * ss]) } }
            }
            if same {
                switch dst.dtype.itemSize {
                case 1: convert(UInt8.self, UInt8.self) { $0 }
                case 2: convert(UInt16.self, UInt16.self) { $0 }
                case 4: convert(UInt32.self, UInt32.self) { $0 }
                default: convert(UInt64.self, UInt64.self) { $0 }
                }
                return
            }
            switch (src.dtype, dst.dtype) {
            case (.float32, .float64): convert(Float.self, Double.self) { Double($0) }
            case (.float64, .float32): convert(Double.self, Float.self) { Float($0) }
            case (.float16, .float32): convert(UInt16.self, Float.self) { HalfConversion.halfToFloat($0) }
            case (.float32, .float16): convert(Float.self, UInt16.self) { HalfConversion.floatToHalf($0) }
            case (.bfloat16, .float32): convert(UInt16.self, Float.self) { HalfConversion.bfloatToFloat($0) }
            case (.float32, .bfloat16): convert(Float.self, UInt16.self) { HalfConversion.floatToBFloat($0) }
            case (.bool, .float32): convert(Bool.self, Float.self) { $0 ? 1 : 0 }
            case (.bool, .float64): convert(Bool.self, Double.self) { $0 ? 1 : 0 }
            case (.int64, .float32): convert(Int64.self, Float.self) { Float($0) }
            case (.uint8, .float32): convert(UInt8.self, Float.self) { Float($0) }
            case (.float32, .int64): convert(Float.self, Int64.self) { Int64(fromDouble: Double($0)) }
            default:
                // Every other pair goes through Int64 (both integral) or Double.
                func from<S: CPUElement>(_: S.Type) {
                    func to<D: CPUElement>(_: D.Type) {
                        if D.self == Bool.self {
                            convert(S.self, D.self) { D(fromDouble: $0.asDouble != 0 || $0.asDouble.isNaN ? 1 : 0) }
                        } else if S.isIntegral && D.isIntegral {
                            convert(S.self, D.self) { D(fromInt64: $0.asInt64) }
                        } else {
                            convert(S.self, D.self) { D(fromDouble: $0.asDouble) }
                        }
                    }
                    switch dst.dtype {
                    case .float32: to(Float.self)
                    case .float64: to(Double.self)
                    case .int64: to(Int64.self)
                    case .int32: to(Int32.self)
                    case .uint8: to(UInt8.self)
                    case .bool: to(Bool.self)
                    case .float16: to(HalfBits.self)
                    case .bfloat16: to(BFloatBits.self)
                    }
                }
                switch src.dtype {
                case .float32: from(Float.self)
                case .float64: from(Double.self)
                case .int64: from(Int64.self)
                case .int32: from(Int32.self)
                case .uint8: from(UInt8.self)
                case .bool: from(Bool.self)
                case .float16: from(HalfBits.self)
                case .bfloat16: from(BFloatBits.self)
                }
            }
        }
    }

    public func unary(_ op: UnaryOp, _ x: Tensor, _ out: Tensor) {
        let p = StridedPlan(shape: out.shape, out.strides, x.strides)
        switch x.dtype {
        case .float32 where op != .logicalNot: floatUnary(op, p, x.ptr(Float.self), out.ptr(Float.self))
        case .float64 where op != .logicalNot: floatUnary(op, p, x.ptr(Double.self), out.ptr(Double.self))
        case .float32: logicalNot(p, x.ptr(Float.self), out.ptr(Bool.self))
        case .float64: logicalNot(p, x.ptr(Double.self), out.ptr(Bool.self))
        case .int64: op == .logicalNot ? logicalNot(p, x.ptr(Int64.self), out.ptr(Bool.self)) : intUnary(op, p, x.ptr(Int64.self), out.ptr(Int64.self))
        case .int32: op == .logicalNot ? logicalNot(p, x.ptr(Int32.self), out.ptr(Bool.self)) : intUnary(op, p, x.ptr(Int32.self), out.ptr(Int32.self))
        case .uint8: op == .logicalNot ? logicalNot(p, x.ptr(UInt8.self), out.ptr(Bool.self)) : intUnary(op, p, x.ptr(UInt8.self), out.ptr(UInt8.self))
        case .bool: op == .logicalNot ? logicalNot(p, x.ptr(Bool.self), out.ptr(Bool.self)) : intUnary(op, p, x.ptr(Bool.self), out.ptr(Bool.self))
        case .float16, .bfloat16: unsupported("\(op)", x.dtype)
        }
    }

    /// Runs `body(run)` for every run of plan `p` (operands: o, x); `run(f)` applies `f`
    /// over the run. Callers write `body` as a closure literal so that `f` is inlined.
    @inline(__always)
    private func apply1<A, R>(_ p: StridedPlan, _ x: UnsafePointer<A>, _ o: UnsafeMutablePointer<R>,
                              _ body: (_ run: Run1<A, R>) -> Void) {
        let so = p.innerStride(0), sx = p.innerStride(1)
        forEachRun(p) { off, n in body(Run1(x: x + off[1], o: o + off[0], n: n, sx: sx, so: so)) }
    }

    private func logicalNot<T: CPUNumber>(_ p: StridedPlan, _ x: UnsafePointer<T>, _ o: UnsafeMutablePointer<Bool>) {
        apply1(p, x, o) { run in run { $0 == T.zero } }
    }

    private func intUnary<T: CPUNumber>(_ op: UnaryOp, _ p: StridedPlan, _ x: UnsafePointer<T>, _ o: UnsafeMutablePointer<T>) {
        apply1(p, x, o) { run in
            switch op {
            case .neg: run { T.sub(T.zero, $0) }
            case .abs: run { $0 < T.zero ? T.sub(T.zero, $0) : $0 }
            case .sign: run { $0 > T.zero ? T.one : ($0 < T.zero ? T.sub(T.zero, T.one) : T.zero) }
            case .relu: run { $0 > T.zero ? $0 : T.zero }
            case .square: run { T.mul($0, $0) }
            case .floor, .ceil, .round, .trunc: run { $0 }
            case .clamp(let lo, let hi):
                // Compare in Int64 so that bounds outside the type's range never wrap.
                let l = lo.map { Int64(Swift.max(Swift.min($0.rounded(.up), 9e18), -9e18)) }
                let h = hi.map { Int64(Swift.max(Swift.min($0.rounded(.down), 9e18), -9e18)) }
                run { v in
                    var r = v.asInt64
                    if let l, r < l { r = l }
                    if let h, r > h { r = h }  // min > max gives max, as in PyTorch
                    return T(fromInt64: r)
                }
            case .exp, .log, .log1p, .expm1, .sqrt, .rsqrt, .sin, .cos, .tanh, .sigmoid, .gelu, .geluTanh, .silu, .erf,
                 .reciprocal, .softplus, .leakyRelu, .powScalar, .logicalNot, .tan, .asin, .acos, .atan, .sinh, .cosh,
                 .asinh, .acosh, .atanh, .erfc, .exp2, .log2, .log10:
                // Promoted to floating point by the op (logicalNot has its own kernel above).
                fatalError("\(op.kind.name): reached the integer kernel (please report this)")
            }
        }
    }

    private func floatUnary<T: BinaryFloatingPoint & Real & CPUNumber>(
        _ op: UnaryOp, _ p: StridedPlan, _ x: UnsafePointer<T>, _ o: UnsafeMutablePointer<T>
    ) {
        if T.self == Float.self && op == .relu && p.isContiguous && CPUFeatures.active >= .avx2 {
            let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), of = UnsafeMutableRawPointer(o).assumingMemoryBound(to: Float.self)
            parallelFor(p.count, grain: 1 << 18) { r in ember_relu_f32_avx2(xf + r.lowerBound, of + r.lowerBound, r.count) }
            return
        }
        if T.self == Float.self && (op == .exp || op == .sigmoid) && p.isContiguous {
            // Vectorized exponential (8 lanes) for the contiguous float32 case.
            let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), of = UnsafeMutableRawPointer(o).assumingMemoryBound(to: Float.self)
            let sig = op == .sigmoid
            parallelFor(p.count, grain: elementwiseGrain) { r in
                if !sig { expContiguous(xf + r.lowerBound, of + r.lowerBound, r.count); return }
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let v = UnsafeRawPointer(xf + i).loadUnaligned(as: SIMD8<Float>.self)
                    let e = sig ? 1 / (1 + fastExp(-v)) : fastExp(v)
                    UnsafeMutableRawPointer(of + i).storeBytes(of: e, as: SIMD8<Float>.self)
                    i += 8
                }
                while i < r.upperBound { of[i] = sig ? 1 / (1 + fastExp(-xf[i])) : fastExp(xf[i]); i += 1 }
            }
            return
        }
        apply1(p, x, o) { run in
            switch op {
            case .neg: run { -$0 }
            case .abs: run { Swift.abs($0) }
            case .sign: run { $0 > 0 ? 1 : ($0 < 0 ? -1 : ($0.isNaN ? $0 : 0)) }
            case .exp: run { T.exp($0) }
            case .log: run { T.log($0) }
            case .log1p: run { T.log(onePlus: $0) }
            case .expm1: run { T.expMinusOne($0) }
            case .sqrt: run { $0.squareRoot() }
            case .rsqrt: run { 1 / $0.squareRoot() }
            case .sin: run { T.sin($0) }
            case .cos: run { T.cos($0) }
            case .tanh: run { T.tanh($0) }
            case .sigmoid: run { 1 / (1 + T.exp(-$0)) }
            case .relu: run { $0 < 0 ? 0 : $0 }  // NaN stays NaN; compiles to a select, not a branch
            case .gelu: run { 0.5 * $0 * (1 + T.erf($0 * T(0.7071067811865476))) }
            case .geluTanh:
                run { v in
                    let inner = T(0.7978845608028654) * (v + T(0.044715) * v * v * v)
                    return 0.5 * v * (1 + T.tanh(inner))
                }
            case .silu: run { $0 / (1 + T.exp(-$0)) }
            case .erf: run { T.erf($0) }
            case .reciprocal: run { 1 / $0 }
            case .square: run { $0 * $0 }
            case .floor: run { $0.rounded(.down) }
            case .ceil: run { $0.rounded(.up) }
            case .round: run { $0.rounded(.toNearestOrEven) }
            case .trunc: run { $0.rounded(.towardZero) }
            case .tan: run { T.tan($0) }
            case .asin: run { T.asin($0) }
            case .acos: run { T.acos($0) }
            case .atan: run { T.atan($0) }
            case .sinh: run { T.sinh($0) }
            case .cosh: run { T.cosh($0) }
            case .asinh: run { T.asinh($0) }
            case .acosh: run { T.acosh($0) }
            case .atanh: run { T.atanh($0) }
            case .erfc: run { T.erfc($0) }
            case .exp2: run { T.exp2($0) }
            case .log2: run { T.log2($0) }
            case .log10: run { T.log10($0) }
            case .softplus(let beta, let threshold):
                let b = T(beta), th = T(threshold)
                run { v in v * b > th ? v : T.log(onePlus: T.exp(v * b)) / b }
            case .leakyRelu(let slope):
                let s = T(slope)
                run { $0 > 0 ? $0 : $0 * s }
            case .powScalar(let e):
                let te = T(e)
                if e == 2 { run { $0 * $0 } } else if e == 0.5 { run { $0.squareRoot() } } else if e == 1 { run { $0 } } else {
                    run { T.power($0, te) }
                }
            case .clamp(let lo, let hi):
                let l = lo.map { T($0) } ?? -T.infinity, h = hi.map { T($0) } ?? T.infinity
                // min(max(x, min), max): a lower bound above the upper one gives the upper one.
                run { v in v.isNaN ? v : Swift.min(Swift.max(v, l), h) }
            case .logicalNot: fatalError("unreachable")
            }
        }
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let p = StridedPlan(shape: out.shape, out.strides, a.strides, b.strides)
        let code: Int32? = switch op {
        case .add: 0
        case .sub: 1
        case .mul: 2
        case .div: 3
        case .pow, .maximum, .minimum, .eq, .ne, .lt, .le, .gt, .ge, .logicalAnd, .logicalOr, .reluBackward, .atan2,
             .hypot, .copysign, .fmod, .remainder, .floorDivide: nil
        }
        if a.dtype == .float32 && CPUFeatures.active >= .avx2, let code, p.shape.count == 1, p.innerStride(0) == 1, p.innerStride(1) == 1, p.innerStride(2) <= 1 {
            // Contiguous float32 arithmetic (b contiguous or one broadcast value): the AVX2 loop
            // (memory-bound: AVX2 also on AVX-512 CPUs).
            let pa = a.ptr(Float.self), pb = b.ptr(Float.self), po = out.ptr(Float.self), scalar: Int32 = p.innerStride(2) == 0 ? 1 : 0
            parallelFor(p.count, grain: 1 << 18) { r in
                ember_binary_f32_avx2(code, pa + r.lowerBound, scalar == 1 ? pb : pb + r.lowerBound, po + r.lowerBound, r.count, scalar)
            }
            return
        }
        let so = p.innerStride(0), sa = p.innerStride(1), sb = p.innerStride(2)
        func typed<T: CPUNumber>(_: T.Type) {
            let pa = UnsafePointer(a.ptr(T.self)), pb = UnsafePointer(b.ptr(T.self))
            let o = out.ptr(T.self), ob = out.ptr(Bool.self)
            forEachRun(p) { off, n in
                let x = pa + off[1], y = pb + off[2]
                /// `r[i] = f(x[i], y[i])` with unit-stride and scalar-operand fast loops.
                @inline(__always) func apply<R>(_ o: UnsafeMutablePointer<R>, _ f: (T, T) -> R) {
                    let r = o + off[0]
                    if so == 1 && sa == 1 && sb == 1 {
                        for i in 0..<n { r[i] = f(x[i], y[i]) }
                    } else if so == 1 && sa == 1 && sb == 0 {
                        let v = y[0]
                        for i in 0..<n { r[i] = f(x[i], v) }
                    } else if so == 1 && sa == 0 && sb == 1 {
                        let v = x[0]
                        for i in 0..<n { r[i] = f(v, y[i]) }
                    } else {
                        for i in 0..<n { r[i * so] = f(x[i * sa], y[i * sb]) }
                    }
                }
                switch op {
                case .add: apply(o) { T.add($0, $1) }
                case .sub: apply(o) { T.sub($0, $1) }
                case .mul: apply(o) { T.mul($0, $1) }
                case .div: apply(o) { T.div($0, $1) }
                case .pow: apply(o) { T.power($0, $1) }
                case .maximum: apply(o) { T.maxP($0, $1) }
                case .minimum: apply(o) { T.minP($0, $1) }
                case .eq: apply(ob) { $0 == $1 }
                case .ne: apply(ob) { $0 != $1 }
                case .lt: apply(ob) { $0 < $1 }
                case .le: apply(ob) { $0 <= $1 }
                case .gt: apply(ob) { $0 > $1 }
                case .ge: apply(ob) { $0 >= $1 }
                case .logicalAnd: apply(ob) { $0 != T.zero && $1 != T.zero }
                case .logicalOr: apply(ob) { $0 != T.zero || $1 != T.zero }
                case .reluBackward: apply(o) { $1 > T.zero ? $0 : T.zero }
                case .fmod: apply(o) { T.fmod($0, $1) }
                case .remainder: apply(o) { T.remainder($0, $1) }
                case .floorDivide: apply(o) { T.floorDivide($0, $1) }
                case .atan2, .hypot, .copysign: fatalError("\(op.name): reached the generic kernel (please report this)")
                }
            }
        }
        if op.needsFloat {
            /// The float-only ops (the op promotes integers first).
            func real<T: BinaryFloatingPoint & Real & CPUNumber>(_: T.Type) {
                let pa = UnsafePointer(a.ptr(T.self)), pb = UnsafePointer(b.ptr(T.self)), po = out.ptr(T.self)
                forEachRun(p) { off, n in
                    let x = pa + off[1], y = pb + off[2], r = po + off[0]
                    @inline(__always) func apply(_ f: (T, T) -> T) { for i in 0..<n { r[i * so] = f(x[i * sa], y[i * sb]) } }
                    switch op {
                    case .atan2: apply { T.atan2(y: $0, x: $1) }
                    case .hypot: apply { T.hypot($0, $1) }
                    case .copysign: apply { T(signOf: $1, magnitudeOf: $0) }
                    case .add, .sub, .mul, .div, .pow, .maximum, .minimum, .eq, .ne, .lt, .le, .gt, .ge, .logicalAnd,
                         .logicalOr, .reluBackward, .fmod, .remainder, .floorDivide:
                        fatalError("\(op.name): not a float-only op (please report this)")
                    }
                }
            }
            switch a.dtype {
            case .float32: real(Float.self)
            case .float64: real(Double.self)
            default: unsupported(op.name, a.dtype)
            }
            return
        }
        numericSwitch(a.dtype, op.name, { typed(Float.self) }, { typed(Double.self) }, { typed(Int64.self) },
                      { typed(Int32.self) }, { typed(UInt8.self) }, { typed(Bool.self) })
    }

    public func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let p = StridedPlan(shape: out.shape, out.strides, cond.strides, a.strides, b.strides)
        let so = p.innerStride(0), sc = p.innerStride(1), sa = p.innerStride(2), sb = p.innerStride(3)
        let c = cond.ptr(Bool.self)
        func run<T>(_: T.Type) {
            let pa = a.ptr(T.self), pb = b.ptr(T.self), po = out.ptr(T.self)
            forEachRun(p) { off, n in
                let r = po + off[0], k = c + off[1], x = pa + off[2], y = pb + off[3]
                for i in 0..<n { r[i * so] = k[i * sc] ? x[i * sa] : y[i * sb] }
            }
        }
        switch out.dtype.itemSize {
        case 1: run(UInt8.self)
        case 2: run(UInt16.self)
        case 4: run(UInt32.self)
        default: run(UInt64.self)
        }
    }
}
