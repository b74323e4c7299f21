import CEmberKernels
import EmberCPU
import Foundation
import RealModule

extension Tensor {
    /// Typed pointer to this tensor's first element (CPU only).
    @inline(__always) func ptr<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        if !storage.isHostAccessible { wrongDevice(storage.device) }
        return (storage.data + layout.offset * dtype.itemSize).assumingMemoryBound(to: T.self)
    }

    @inline(never)
    func wrongDevice(_ d: Device) -> Never {
        fatalError("Ember: a CPU kernel was given a tensor of shape \(fmt(shape)) on \(d): an op mixed devices without checking them (please report this)")
    }
}

/// Calls the closure for dtype `d`; each closure calls a generic kernel with a concrete
/// element type, so every kernel is compiled once per type (no dynamic dispatch).
@inline(__always)
private func numericSwitch(_ d: DType, _ op: @autoclosure () -> String, _ f32: () -> Void, _ f64: () -> Void,
                           _ i64: () -> Void, _ i32: () -> Void, _ u8: () -> Void, _ b: () -> Void) {
    switch d {
    case .float32: f32()
    case .float64: f64()
    case .int64: i64()
    case .int32: i32()
    case .uint8: u8()
    case .bool: b()
    case .float16, .bfloat16: unsupported(op(), d)
    }
}

/// Kernels are generic over the element type; each call site switches on the dtype with
/// concrete types so that the optimizer compiles one specialised loop per type (an
/// existential `any CPUNumber.Type` would leave every element access dynamic).
private func unsupported(_ op: String, _ d: DType) -> Never {
    fatalError("\(op): \(d) must be upcast to float32 before the CPU kernel")
}

/// One run of a unary kernel: `callAsFunction(f)` applies `f` to its elements.
struct Run1<A, R> {
    let x: UnsafePointer<A>, o: UnsafeMutablePointer<R>, n: Int, sx: Int, so: Int

    @inline(__always) func callAsFunction(_ f: (A) -> R) {
        if so == 1 && sx == 1 { for i in 0..<n { o[i] = f(x[i]) } } else { for i in 0..<n { o[i * so] = f(x[i * sx]) } }
    }
}

/// The CPU backend: runs each primitive with the kernels of `EmberCPU`.
public final class CPUBackend: Backend {
    public static let shared = CPUBackend()

    public func allocate(bytes: Int, device: Device) -> Storage {
        if HostMemory.pinningHere, let s = HostMemory.pinnedAllocator?(bytes) { return s }
        return Storage(cpuBytes: bytes)
    }

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
            case .floor, .ceil, .round: run { $0 }
            case .clamp(let lo, let hi):
                // Compare in Int64 so that bounds outside the type's range never wrap.
                let l = lo.map { Int64(Swift.max(Swift.min($0.rounded(.up), 9e18), -9e18)) }
                let h = hi.map { Int64(Swift.max(Swift.min($0.rounded(.down), 9e18), -9e18)) }
                run { v in
                    var r = v.asInt64
                    if let l, r < l { r = l }
                    if let h, r > h { r = h }
                    return T(fromInt64: r)
                }
            default: fatalError("\(op): not defined for integer tensors")
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
                run { v in v.isNaN ? v : (v < l ? l : (v > h ? h : v)) }
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
        default: nil
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
                }
            }
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

    public func reduce(_ op: ReduceOp, _ x: Tensor, dims: [Int], _ out: Tensor) {
        var keptShape = x.shape
        for d in dims { keptShape[d] = 1 }
        let plan = ReductionPlan(keptShape: keptShape, outStrides: out.strides, inKeptStrides: x.strides,
                                 reducedShape: dims.map { x.shape[$0] }, inReducedStrides: dims.map { x.strides[$0] })
        // Reducing outer dimensions of rows that stay contiguous (bias gradients, pooling):
        // accumulate whole rows so that the inner loop vectorizes.
        let kept = plan.kept, red = plan.reduced
        if kept.innerStride(0) == 1 && kept.innerStride(1) == 1
            && kept.inner >= 16 && red.count > 1 && (x.dtype == .float32 || x.dtype == .float64) {
            rowwiseReduce(op, x, out, kept, red)
            return
        }
        func typed<T: CPUNumber>(_: T.Type) {
            let a = x.ptr(T.self)
            switch op {
            case .sum:
                if T.self == Float.self {
                    // float32 sums accumulate in float64 (8 lanes) and round once.
                    let o = out.ptr(Float.self), af = x.ptr(Float.self)
                    let isa = CPUFeatures.active
                    plan.forEachOutput { outOff, base in
                        var acc = SIMD8<Double>(), tail = 0.0
                        plan.forEachReducedRow(base: base) { off, n, s, _ in
                            let pa = af + off
                            if s == 1 && isa != .baseline {
                                tail += isa == .avx512 ? ember_sum_f32_avx512(pa, n) : ember_sum_f32_avx2(pa, n)
                                return
                            }
                            if s == 0 {  // a broadcast row (the gradient of a sum is one): n copies of one value
                                tail += Double(pa[0]) * Double(n)
                                return
                            }
                            var i = 0
                            if s == 1 {
                                while i + 8 <= n {
                                    acc += SIMD8<Double>(UnsafeRawPointer(pa + i).loadUnaligned(as: SIMD8<Float>.self))
                                    i += 8
                                }
                            }
                            while i < n { tail += Double(pa[i * s]); i += 1 }
                        }
                        o[outOff] = Float(acc.sum() + tail)
                    }
                } else if T.isIntegral {
                    let o = out.ptr(Int64.self)
                    plan.forEachOutput { outOff, base in
                        var acc: Int64 = 0
                        plan.forEachReducedRow(base: base) { off, n, s, _ in for i in 0..<n { acc &+= a[off + i * s].asInt64 } }
                        o[outOff] = acc
                    }
                } else {
                    let o = out.ptr(T.self)
                    plan.forEachOutput { outOff, base in
                        var acc = T.zero
                        plan.forEachReducedRow(base: base) { off, n, s, _ in for i in 0..<n { acc = T.add(acc, a[off + i * s]) } }
                        o[outOff] = acc
                    }
                }
            case .prod:
                if T.isIntegral {
                    let o = out.ptr(Int64.self)
                    plan.forEachOutput { outOff, base in
                        var acc: Int64 = 1
                        plan.forEachReducedRow(base: base) { off, n, s, _ in for i in 0..<n { acc &*= a[off + i * s].asInt64 } }
                        o[outOff] = acc
                    }
                } else {
                    let o = out.ptr(T.self)
                    plan.forEachOutput { outOff, base in
                        var acc = 1.0
                        plan.forEachReducedRow(base: base) { off, n, s, _ in for i in 0..<n { acc *= a[off + i * s].asDouble } }
                        o[outOff] = T(fromDouble: acc)
                    }
                }
            case .max, .min:
                let o = out.ptr(T.self), isMax = op == .max
                plan.forEachOutput { outOff, base in
                    var acc = a[base]
                    plan.forEachReducedRow(base: base) { off, n, s, _ in
                        if isMax { for i in 0..<n { acc = T.maxP(acc, a[off + i * s]) } } else {
                            for i in 0..<n { acc = T.minP(acc, a[off + i * s]) }
                        }
                    }
                    o[outOff] = acc
                }
            case .argmax, .argmin:
                // First occurrence wins; NaN counts as the extreme (as PyTorch).
                let o = out.ptr(Int64.self), isMax = op == .argmax
                plan.forEachOutput { outOff, base in
                    var best = a[base], index = 0
                    plan.forEachReducedRow(base: base) { off, n, s, j in
                        if best.isNaNValue { return }
                        for i in 0..<n {
                            let v = a[off + i * s]
                            if v.isNaNValue { best = v; index = j + i; return }
                            if isMax ? v > best : v < best { best = v; index = j + i }
                        }
                    }
                    o[outOff] = Int64(index)
                }
            }
        }
        numericSwitch(x.dtype, "\(op)", { typed(Float.self) }, { typed(Double.self) }, { typed(Int64.self) },
                      { typed(Int32.self) }, { typed(UInt8.self) }, { typed(Bool.self) })
    }

    /// `out[row] = ⊕ over reduced offsets r of x[row + r]` with contiguous rows of `kept.inner`.
    private func rowwiseReduce(_ op: ReduceOp, _ x: Tensor, _ out: Tensor, _ kept: StridedPlan, _ red: StridedPlan) {
        let kn = kept.inner
        let chunks = Swift.max(1, Swift.min(CPUThreads.count, kn / 2048))
        let per = (kn + chunks - 1) / chunks
        func run<T: BinaryFloatingPoint & CPUNumber>(_: T.Type) {
            let src = x.ptr(T.self), dst = out.ptr(T.self)
            let rs = red.innerStride(0), rn = red.inner
            parallelFor(kept.rows * chunks, grain: 1) { tasks in
                for task in tasks {
                    let row = task / chunks, c0 = (task % chunks) * per, c1 = Swift.min(kn, c0 + per)
                    if c0 >= c1 { continue }
                    kept.forEachRow(row..<(row + 1)) { koff in
                        let o = dst + koff[0] + c0, base = src + koff[1] + c0, w = c1 - c0
                        if op == .argmax || op == .argmin {
                            // Best value per column with the first position where it occurs (NaN wins).
                            let idx = out.ptr(Int64.self) + koff[0] + c0, isMax = op == .argmax
                            withUnsafeTemporaryAllocation(of: T.self, capacity: w) { bestBuf in
                                let best = bestBuf.baseAddress!
                                var pos: Int64 = 0
                                red.forEachRow(0..<red.rows) { roff in
                                    for e in 0..<rn {
                                        let p = base + roff[0] + e * rs
                                        if pos == 0 {
                                            for j in 0..<w { best[j] = p[j]; idx[j] = 0 }
                                        } else {
                                            for j in 0..<w {
                                                let v = p[j], b = best[j]
                                                let better = !b.isNaN && (v.isNaN || (isMax ? v > b : v < b))
                                                best[j] = better ? v : b
                                                idx[j] = better ? pos : idx[j]
                                            }
                                        }
                                        pos += 1
                                    }
                                }
                            }
                            return
                        }
                        withUnsafeTemporaryAllocation(of: Double.self, capacity: op == .sum ? w : 0) { accBuf in
                            var first = true
                            red.forEachRow(0..<red.rows) { roff in
                                for e in 0..<rn {
                                    let p = base + roff[0] + e * rs
                                    switch op {
                                    case .sum:
                                        let acc = accBuf.baseAddress!
                                        if first { for j in 0..<w { acc[j] = Double(p[j]) } } else { for j in 0..<w { acc[j] += Double(p[j]) } }
                                    case .max, .argmax:
                                        if first { for j in 0..<w { o[j] = p[j] } } else { for j in 0..<w { o[j] = T.maxP(o[j], p[j]) } }
                                    default:
                                        if first { for j in 0..<w { o[j] = p[j] } } else { for j in 0..<w { o[j] = T.minP(o[j], p[j]) } }
                                    }
                                    first = false
                                }
                            }
                            if op == .sum { let acc = accBuf.baseAddress!; for j in 0..<w { o[j] = T(acc[j]) } }
                        }
                    }
                }
            }
        }
        if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
    }

    public func matmul(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = out.shape[0], M = out.shape[1], N = out.shape[2], K = a.shape[2]
        let (sa, sb) = (a.strides, b.strides)
        let ldc = out.strides[1]
        // Many small products: one thread each; else each product uses every thread.
        let perBatchThreads = (B >= CPUThreads.count && M * N * K < 256 * 256 * 64) ? 1 : CPUThreads.count
        func each(_ body: (Int) -> Void) {
            if perBatchThreads == 1 && B > 1 { parallelTasks(B, body) } else { for i in 0..<B { body(i) } }
        }
        switch out.dtype {
        case .float32:
            let pa = a.ptr(Float.self), pb = b.ptr(Float.self), pc = out.ptr(Float.self)
            each { i in
                GEMM.sgemm(m: M, n: N, k: K, a: pa + i * sa[0], rowStrideA: sa[1], colStrideA: sa[2],
                           b: pb + i * sb[0], rowStrideB: sb[1], colStrideB: sb[2],
                           c: pc + i * out.strides[0], ldc: ldc, threads: perBatchThreads)
            }
        case .float64:
            let pa = a.ptr(Double.self), pb = b.ptr(Double.self), pc = out.ptr(Double.self)
            each { i in
                GEMM.dgemm(m: M, n: N, k: K, a: pa + i * sa[0], rowStrideA: sa[1], colStrideA: sa[2],
                           b: pb + i * sb[0], rowStrideB: sb[1], colStrideB: sb[2],
                           c: pc + i * out.strides[0], ldc: ldc, threads: perBatchThreads)
            }
        default:
            func run<T: CPUNumber>(_: T.Type) {
                let pa = a.ptr(T.self), pb = b.ptr(T.self), pc = out.ptr(T.self)
                each { bi in
                    for i in 0..<M {
                        for j in 0..<N {
                            var acc = T.zero
                            for k in 0..<K {
                                acc = T.add(acc, T.mul(pa[bi * sa[0] + i * sa[1] + k * sa[2]], pb[bi * sb[0] + k * sb[1] + j * sb[2]]))
                            }
                            pc[bi * out.strides[0] + i * ldc + j] = acc
                        }
                    }
                }
            }
            numericSwitch(out.dtype, "matmul", { run(Float.self) }, { run(Double.self) }, { run(Int64.self) },
                          { run(Int32.self) }, { run(UInt8.self) }, { run(Bool.self) })
        }
    }

    public func indexSelect(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        let outer = x.shape[..<dim].reduce(1, *)
        let inner = x.shape[(dim + 1)...].reduce(1, *)
        let n = x.shape[dim], L = index.count
        let item = x.dtype.itemSize
        let idx = index.ptr(Int64.self)
        let src = x.storage.data + x.layout.offset * item
        let dst = out.storage.data + out.layout.offset * item
        let rowBytes = inner * item
        parallelFor(outer * L, grain: max(1, elementwiseGrain / max(inner, 1))) { range in
            for t in range {
                let o = t / L, i = t % L
                let j = Int(idx[i])
                memcpy(dst + (o * L + i) * rowBytes, src + (o * n + j) * rowBytes, rowBytes)
            }
        }
    }

    public func indexAdd(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor) {
        let outer = out.shape[..<dim].reduce(1, *)
        let inner = out.shape[(dim + 1)...].reduce(1, *)
        let n = out.shape[dim], L = index.count
        let idx = index.ptr(Int64.self)
        func run<T: CPUNumber>(_: T.Type) {
            let o = out.ptr(T.self), s = src.ptr(T.self)
            parallelFor(outer, grain: 1) { range in  // rows of different `o` never collide
                for oi in range {
                    for i in 0..<L {
                        let d = o + (oi * n + Int(idx[i])) * inner, sp = s + (oi * L + i) * inner
                        for k in 0..<inner { d[k] = T.add(d[k], sp[k]) }
                    }
                }
            }
        }
        numericSwitch(out.dtype, "indexAdd", { run(Float.self) }, { run(Double.self) }, { run(Int64.self) },
                      { run(Int32.self) }, { run(UInt8.self) }, { run(Bool.self) })
        out.storage.bumpVersion()
    }

    public func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        var xs = x.strides
        let dimStride = xs[dim]
        xs[dim] = 0
        let p = StridedPlan(shape: index.shape, out.strides, index.strides, xs)
        let idx = index.ptr(Int64.self)
        func run<T>(_: T.Type) {
            let o = out.ptr(T.self), s = x.ptr(T.self)
            let so = p.innerStride(0), si = p.innerStride(1), sx = p.innerStride(2), n = p.inner
            p.forEachRow(0..<p.rows) { off in
                for e in 0..<n {
                    o[off[0] + e * so] = s[off[2] + e * sx + Int(idx[off[1] + e * si]) * dimStride]
                }
            }
        }
        switch x.dtype.itemSize {
        case 1: run(UInt8.self)
        case 2: run(UInt16.self)
        case 4: run(UInt32.self)
        default: run(UInt64.self)
        }
    }

    public func scatter(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor, accumulate: Bool) {
        var os = out.strides
        let dimStride = os[dim]
        os[dim] = 0
        let p = StridedPlan(shape: index.shape, index.strides, src.strides, os)
        let idx = index.ptr(Int64.self)
        let si = p.innerStride(0), ss = p.innerStride(1), so = p.innerStride(2), n = p.inner
        func run<T>(_: T.Type, _ combine: (T, T) -> T) {
            let o = out.ptr(T.self), s = src.ptr(T.self)
            p.forEachRow(0..<p.rows) { off in
                for e in 0..<n {
                    let dst = o + off[2] + e * so + Int(idx[off[0] + e * si]) * dimStride
                    dst.pointee = combine(dst.pointee, s[off[1] + e * ss])
                }
            }
        }
        if accumulate {
            func add<T: CPUNumber>(_: T.Type) { run(T.self) { T.add($0, $1) } }
            numericSwitch(out.dtype, "scatterAdd", { add(Float.self) }, { add(Double.self) }, { add(Int64.self) },
                          { add(Int32.self) }, { add(UInt8.self) }, { add(Bool.self) })
        } else {
            switch out.dtype.itemSize {
            case 1: run(UInt8.self) { $1 }
            case 2: run(UInt16.self) { $1 }
            case 4: run(UInt32.self) { $1 }
            default: run(UInt64.self) { $1 }
            }
        }
        out.storage.bumpVersion()
    }

    public func maskedSelect(_ x: Tensor, _ mask: Tensor) -> Tensor {
        let p = StridedPlan(shape: x.shape, x.strides, mask.strides)
        let m = mask.ptr(Bool.self)
        var count = 0
        let sm = p.innerStride(1), n = p.inner
        p.forEachRow(0..<p.rows) { off in
            for e in 0..<n where m[off[1] + e * sm] { count += 1 }
        }
        let out = Tensor(uninitialized: [count], dtype: x.dtype)
        let item = x.dtype.itemSize
        let src = x.storage.data + x.layout.offset * item
        var w = out.storage.data
        let sx = p.innerStride(0)
        p.forEachRow(0..<p.rows) { off in
            for e in 0..<n where m[off[1] + e * sm] {
                memcpy(w, src + (off[0] + e * sx) * item, item)
                w += item
            }
        }
        return out
    }

    public func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, _ out: Tensor) {
        im2col(x, g, padValue: padValue, into: out.storage.data + out.layout.offset * out.dtype.itemSize, rowPitch: nil)
    }

    /// im2col into raw memory. With `rowPitch`, the columns of all images share rows:
    /// row `(c·kh + i)·kw + j` starts at `rowPitch·row` and image `n`'s columns at `n·L` in it
    /// (one `[C·kh·kw, N·L]` matrix, so that one product covers several images).
    func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, into out: UnsafeMutableRawPointer, rowPitch: Int?) {
        let n = x.shape[0], (C, H, W) = (g.channels, g.height, g.width)
        let (kh, kw) = g.kernel, (sh, sw) = g.stride, (ph, pw) = g.padding, (dh, dw) = g.dilation
        let Ho = g.outHeight, Wo = g.outWidth, L = Ho * Wo
        if x.dtype == .float32 {
            let src = x.ptr(Float.self), dst = out.assumingMemoryBound(to: Float.self), pad = Float(padValue)
            let geo = [H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo]
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range {
                    let rows = rowPitch.map { dst + (t % C) * kh * kw * $0 + (t / C) * L } ?? dst + t * kh * kw * L
                    ConvKernels.im2col(src + t * H * W, rows, rowPitch ?? L, geo, pad)
                }
            }
            return
        }
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let src = x.ptr(T.self), dst = out.assumingMemoryBound(to: T.self), pad = T(padValue)
            // One task per (image, channel): writes kh·kw rows of L columns.
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range {
                    let plane = src + t * H * W
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let row: UnsafeMutablePointer<T>
                            if let rowPitch {
                                row = dst + (((t % C) * kh + i) * kw + j) * rowPitch + (t / C) * L
                            } else {
                                row = dst + (t * kh * kw + i * kw + j) * L  // [N, C·kh·kw, L]
                            }
                            for y in 0..<Ho {
                                let iy = y * sh - ph + i * dh
                                let r = row + y * Wo
                                if iy < 0 || iy >= H {
                                    for xo in 0..<Wo { r[xo] = pad }
                                    continue
                                }
                                let line = plane + iy * W
                                let x0 = j * dw - pw
                                // Output columns whose input column xo·sw + x0 lies inside the row.
                                let (xs, xe) = validColumns(x0, sw, W, Wo)
                                for xo in 0..<xs { r[xo] = pad }
                                if sw == 1 {
                                    (r + xs).update(from: line + (xs + x0), count: xe - xs)
                                } else {
                                    for xo in xs..<xe { r[xo] = line[xo * sw + x0] }
                                }
                                for xo in xe..<Wo { r[xo] = pad }
                            }
                        }
                    }
                }
            }
        }
        switch x.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        default: unsupported("im2col", x.dtype)
        }
    }

    /// The output columns `xs..<xe` whose input column `xo·stride + x0` is in `0..<width`.
    @inline(__always) private func validColumns(_ x0: Int, _ stride: Int, _ width: Int, _ outWidth: Int) -> (Int, Int) {
        let xs = x0 >= 0 ? 0 : Swift.min(outWidth, (-x0 + stride - 1) / stride)
        let xe = width - x0 <= 0 ? 0 : Swift.min(outWidth, (width - x0 + stride - 1) / stride)
        return (xs, Swift.max(xs, xe))
    }

    public func col2im(_ cols: Tensor, _ g: WindowGeometry, _ out: Tensor) {
        let n = out.shape[0], (C, H, W) = (g.channels, g.height, g.width)
        let (kh, kw) = g.kernel, (sh, sw) = g.stride, (ph, pw) = g.padding, (dh, dw) = g.dilation
        let Ho = g.outHeight, Wo = g.outWidth, L = Ho * Wo
        if out.dtype == .float32 {
            let src = cols.ptr(Float.self), dst = out.ptr(Float.self)
            let geo = [H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo]
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range { ConvKernels.col2im(src + t * kh * kw * L, dst + t * H * W, L, geo) }
            }
            return
        }
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let src = cols.ptr(T.self), dst = out.ptr(T.self)
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range {  // each (image, channel) plane is written by one task only
                    let plane = dst + t * H * W
                    let rows = src + t * kh * kw * L
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let row = rows + (i * kw + j) * L
                            for y in 0..<Ho {
                                let iy = y * sh - ph + i * dh
                                if iy < 0 || iy >= H { continue }
                                let line = plane + iy * W, r = row + y * Wo
                                let x0 = j * dw - pw
                                let (xs, xe) = validColumns(x0, sw, W, Wo)
                                if sw == 1 {
                                    let l = line + x0
                                    for xo in xs..<xe { l[xo] += r[xo] }
                                } else {
                                    for xo in xs..<xe { line[xo * sw + x0] += r[xo] }
                                }
                            }
                        }
                    }
                }
            }
        }
        switch out.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        default: unsupported("col2im", out.dtype)
        }
    }

    public func matmulSumBatches(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = a.shape[0], M = a.shape[1], K = a.shape[2], N = b.shape[2]
        let (sa, sb) = (a.strides, b.strides)
        // Each worker accumulates its share of the batch into its own partial sum.
        let workers = Swift.max(1, Swift.min(CPUThreads.count, B))
        func run<T: BinaryFloatingPoint>(_: T.Type, _ gemm: (Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>, Bool) -> Void) {
            let pa = a.ptr(T.self), pb = b.ptr(T.self), po = out.ptr(T.self)
            let partials = UnsafeMutablePointer<T>.allocate(capacity: workers * M * N)
            defer { partials.deallocate() }
            parallelTasks(workers) { w in
                let dst = w == 0 ? po : partials + w * M * N
                var first = true
                var i = w
                while i < B {
                    gemm(i, pa + i * sa[0], pb + i * sb[0], dst, !first)
                    first = false
                    i += workers
                }
                if first { dst.update(repeating: 0, count: M * N) }
            }
            for w in 1..<workers {
                let src = partials + w * M * N
                for j in 0..<(M * N) { po[j] += src[j] }
            }
        }
        let single = workers > 1 ? 1 : CPUThreads.count
        if out.dtype == .float32 {
            run(Float.self) { _, x, y, c, acc in
                GEMM.sgemm(m: M, n: N, k: K, a: x, rowStrideA: sa[1], colStrideA: sa[2], b: y, rowStrideB: sb[1], colStrideB: sb[2],
                           c: c, ldc: N, accumulate: acc, threads: single)
            }
        } else {
            run(Double.self) { _, x, y, c, acc in
                GEMM.dgemm(m: M, n: N, k: K, a: x, rowStrideA: sa[1], colStrideA: sa[2], b: y, rowStrideB: sb[1], colStrideB: sb[2],
                           c: c, ldc: N, accumulate: acc, threads: single)
            }
        }
    }

    public func maxPool2d(_ x: Tensor, _ g: WindowGeometry, _ out: Tensor, _ indices: Tensor) {
        let planes = x.shape[0] * g.channels, (H, W) = (g.height, g.width)
        let (kh, kw) = g.kernel, (sh, sw) = g.stride, (ph, pw) = g.padding, (dh, dw) = g.dilation
        let Ho = g.outHeight, Wo = g.outWidth
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let src = x.ptr(T.self), dst = out.ptr(T.self), idx = indices.ptr(Int64.self)
            if T.self == Float.self && kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 {
                // The common 2×2/2 window in float32: the branch-free C kernel.
                let s = x.ptr(Float.self), d = out.ptr(Float.self)
                parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(Ho * Wo * 4, 1))) { range in
                    for pl in range { ConvKernels.maxPool2x2(s + pl * H * W, d + pl * Ho * Wo, idx + pl * Ho * Wo, W, Ho, Wo) }
                }
                return
            }
            if kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 {
                // The common 2×2/2 window without padding: four loads, no bounds checks.
                // Ties keep the first element in scan order; NaN wins (as PyTorch).
                parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(Ho * Wo * 4, 1))) { range in
                    for pl in range {
                        let plane = src + pl * H * W, o = dst + pl * Ho * Wo, io = idx + pl * Ho * Wo
                        for y in 0..<Ho {
                            let r0 = 2 * y * W, r1 = r0 + W
                            for xo in 0..<Wo {
                                let c0 = r0 + 2 * xo, c1 = r1 + 2 * xo
                                var best = plane[c0], at = c0
                                let b = plane[c0 + 1], c = plane[c1], d = plane[c1 + 1]
                                if b > best || b.isNaN { best = b; at = c0 + 1 }
                                if c > best || c.isNaN { best = c; at = c1 }
                                if d > best || d.isNaN { best = d; at = c1 + 1 }
                                o[y * Wo + xo] = best
                                io[y * Wo + xo] = Int64(at)
                            }
                        }
                    }
                }
                return
            }
            parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(Ho * Wo * kh * kw, 1))) { range in
                for pl in range {
                    let plane = src + pl * H * W, o = dst + pl * Ho * Wo, io = idx + pl * Ho * Wo
                    for y in 0..<Ho {
                        for xo in 0..<Wo {
                            var best = -T.infinity, at = -1
                            for i in 0..<kh {
                                let iy = y * sh - ph + i * dh
                                if iy < 0 || iy >= H { continue }
                                for j in 0..<kw {
                                    let ix = xo * sw - pw + j * dw
                                    if ix < 0 || ix >= W { continue }
                                    let v = plane[iy * W + ix]
                                    if v > best || v.isNaN || at < 0 { best = v; at = iy * W + ix; if v.isNaN { break } }
                                }
                            }
                            o[y * Wo + xo] = best
                            io[y * Wo + xo] = Int64(at)
                        }
                    }
                }
            }
        }
        if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
    }

    public func maxPool2dBackward(_ grad: Tensor, _ indices: Tensor, _ out: Tensor) {
        let planes = out.shape[0] * out.shape[1], hw = out.shape[2] * out.shape[3], l = grad.shape[2] * grad.shape[3]
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let g = grad.ptr(T.self), idx = indices.ptr(Int64.self), o = out.ptr(T.self)
            parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(l, 1))) { range in
                for pl in range {
                    let gp = g + pl * l, ip = idx + pl * l, op = o + pl * hw
                    for k in 0..<l where ip[k] >= 0 { op[Int(ip[k])] += gp[k] }
                }
            }
        }
        if out.dtype == .float32 { run(Float.self) } else { run(Double.self) }
    }

    public func softmax(_ x: Tensor, _ out: Tensor, log: Bool) {
        let n = x.shape.last ?? 1, rows = x.count / Swift.max(n, 1)
        if x.dtype == .float32 {
            softmaxRows(x.ptr(Float.self), out.ptr(Float.self), rows: rows, n: n, log: log)
            return
        }
        let a = x.ptr(Double.self), o = out.ptr(Double.self)
        parallelFor(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(n, 1))) { range in
            for r in range {
                let row = a + r * n, dst = o + r * n
                var m = -Double.infinity
                for j in 0..<n { m = Swift.max(m, row[j]) }
                if m == -.infinity { m = 0 }
                var sum = 0.0
                for j in 0..<n { let e = Double.exp(row[j] - m); if !log { dst[j] = e }; sum += e }
                if log { let shift = m + Double.log(sum); for j in 0..<n { dst[j] = row[j] - shift } } else {
                    for j in 0..<n { dst[j] /= sum }
                }
            }
        }
    }

    public func crossEntropyRows(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor) {
        let r = logits.shape[0], c = logits.shape[1]
        let t = target.ptr(Int64.self)
        func run<T: BinaryFloatingPoint & Real>(_: T.Type, _ rowLSE: (UnsafePointer<T>) -> T) {
            let x = logits.ptr(T.self), lo = loss.ptr(T.self), ls = lse.ptr(T.self)
            parallelFor(r, grain: Swift.max(1, elementwiseGrain / Swift.max(c, 1))) { range in
                for i in range {
                    let row = x + i * c
                    let l = rowLSE(row)
                    ls[i] = l
                    let k = Int(t[i])
                    lo[i] = k == ignoreIndex ? 0 : l - row[k]
                }
            }
        }
        if logits.dtype == .float32 {
            run(Float.self) { row in logSumExpRow(row, c) }
        } else {
            run(Double.self) { row in
                var m = -Double.infinity
                for j in 0..<c { m = Swift.max(m, row[j]) }
                if m == -.infinity { m = 0 }
                var s = 0.0
                for j in 0..<c { s += Double.exp(row[j] - m) }
                return m + Double.log(s)
            }
        }
    }

    public func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor,
                                         _ out: Tensor) -> Bool {
        let r = logits.shape[0], c = logits.shape[1], gs = grad.strides[0]
        let t = target.ptr(Int64.self)
        func run<T: BinaryFloatingPoint & Real>(_: T.Type) {
            let x = logits.ptr(T.self), ls = lse.ptr(T.self), g = grad.ptr(T.self), o = out.ptr(T.self)
            parallelFor(r, grain: Swift.max(1, elementwiseGrain / Swift.max(c, 1))) { range in
                for i in range {
                    let k = Int(t[i]), row = x + i * c, orow = o + i * c
                    if k == ignoreIndex { orow.update(repeating: 0, count: c); continue }
                    let l = ls[i], gi = g[i * gs]
                    for j in 0..<c { orow[j] = (T.exp(row[j] - l) - (j == k ? 1 : 0)) * gi }
                }
            }
        }
        if logits.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        return true
    }

    public func readBytes(_ t: Tensor, into dst: UnsafeMutableRawPointer) {
        memcpy(dst, t.storage.data + t.layout.offset * t.dtype.itemSize, t.count * t.dtype.itemSize)
    }

    public func writeBytes(_ t: Tensor, from src: UnsafeRawPointer) {
        memcpy(t.storage.data + t.layout.offset * t.dtype.itemSize, src, t.count * t.dtype.itemSize)
    }
}

/// The window kernels of the active instruction-set level (the same C compiled per ISA).
enum ConvKernels {
    static var im2col: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, UnsafePointer<Int>?, Float) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_im2col_plane_f32_avx512
        case .avx2: ember_im2col_plane_f32_avx2
        case .baseline: ember_im2col_plane_f32
        }
    }
    static var col2im: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, UnsafePointer<Int>?) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_col2im_plane_f32_avx512
        case .avx2: ember_col2im_plane_f32_avx2
        case .baseline: ember_col2im_plane_f32
        }
    }
    static var maxPool2x2: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int64>?, Int, Int, Int) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_maxpool2x2_plane_f32_avx512
        case .avx2: ember_maxpool2x2_plane_f32_avx2
        case .baseline: ember_maxpool2x2_plane_f32
        }
    }
    static var dots: @convention(c) (UnsafePointer<Float>?, Int, UnsafePointer<Float>?, Int, UnsafeMutablePointer<Float>?, Int, Int, Int, Int, Int32) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_dots_f32_avx512
        case .avx2: ember_dots_f32_avx2
        case .baseline: ember_dots_f32
        }
    }
}
