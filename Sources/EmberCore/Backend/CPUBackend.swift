import EmberCPU
import Foundation
import RealModule

extension Tensor {
    /// Typed pointer to this tensor's first element (CPU only).
    @inline(__always) func ptr<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        (storage.data + layout.offset * dtype.itemSize).assumingMemoryBound(to: T.self)
    }
}

/// Calls `body` with the Swift element type of a dtype that has arithmetic.
@inline(__always)
private func numeric(_ d: DType, _ op: String, _ body: (any CPUNumber.Type) -> Void) {
    switch d {
    case .float32: body(Float.self)
    case .float64: body(Double.self)
    case .int64: body(Int64.self)
    case .int32: body(Int32.self)
    case .uint8: body(UInt8.self)
    case .bool: body(Bool.self)
    case .float16, .bfloat16: fatalError("\(op): \(d) must be upcast to float32 before the CPU kernel")
    }
}

private func elementType(_ d: DType) -> any CPUElement.Type {
    switch d {
    case .float32: Float.self
    case .float64: Double.self
    case .int64: Int64.self
    case .int32: Int32.self
    case .uint8: UInt8.self
    case .bool: Bool.self
    case .float16: HalfBits.self
    case .bfloat16: BFloatBits.self
    }
}

/// The CPU backend: runs each primitive with the kernels of `EmberCPU`.
public final class CPUBackend: Backend {
    public static let shared = CPUBackend()

    public func allocate(bytes: Int, device: Device) -> Storage {
        Storage(cpuBytes: bytes)
    }

    public func fill(_ out: Tensor, _ value: Double) {
        func run<T: CPUElement>(_: T.Type) {
            let v = T(fromDouble: value)
            let p = StridedPlan(shape: out.shape, strides: [out.strides, out.strides])
            let o = out.ptr(T.self)
            map1(p, UnsafePointer(o), o) { _ in v }
        }
        if out.dtype == .int64 && abs(value) > 9e15 {  // keep every bit of large integers
            let v = Int64(value)
            let p = StridedPlan(shape: out.shape, strides: [out.strides, out.strides])
            map1(p, UnsafePointer(out.ptr(Int64.self)), out.ptr(Int64.self)) { _ in v }
            return
        }
        run(elementType(out.dtype))
    }

    public func copy(_ src: Tensor, into dst: Tensor) {
        let p = StridedPlan(shape: dst.shape, strides: [dst.strides, src.strides])
        if src.dtype == dst.dtype || (src.dtype.itemSize == dst.dtype.itemSize && src.dtype == .bool && dst.dtype == .uint8) {
            switch dst.dtype.itemSize {
            case 1: map1(p, src.ptr(UInt8.self), dst.ptr(UInt8.self)) { $0 }
            case 2: map1(p, src.ptr(UInt16.self), dst.ptr(UInt16.self)) { $0 }
            case 4: map1(p, src.ptr(UInt32.self), dst.ptr(UInt32.self)) { $0 }
            default: map1(p, src.ptr(UInt64.self), dst.ptr(UInt64.self)) { $0 }
            }
            return
        }
        func from<S: CPUElement>(_: S.Type) {
            func to<D: CPUElement>(_: D.Type) {
                if D.self == Bool.self {
                    map1(p, src.ptr(S.self), dst.ptr(D.self)) { D(fromDouble: $0.asDouble != 0 || $0.asDouble.isNaN ? 1 : 0) }
                } else if S.isIntegral && D.isIntegral {
                    map1(p, src.ptr(S.self), dst.ptr(D.self)) { D(fromInt64: $0.asInt64) }
                } else {
                    map1(p, src.ptr(S.self), dst.ptr(D.self)) { D(fromDouble: $0.asDouble) }
                }
            }
            to(elementType(dst.dtype))
        }
        from(elementType(src.dtype))
    }

    public func unary(_ op: UnaryOp, _ x: Tensor, _ out: Tensor) {
        let p = StridedPlan(shape: out.shape, strides: [out.strides, x.strides])
        if op == .logicalNot {
            func run<T: CPUNumber>(_: T.Type) {
                map1(p, x.ptr(T.self), out.ptr(Bool.self)) { $0 == T.zero }
            }
            numeric(x.dtype, "logicalNot") { run($0) }
            return
        }
        switch x.dtype {
        case .float32: floatUnary(op, p, x.ptr(Float.self), out.ptr(Float.self))
        case .float64: floatUnary(op, p, x.ptr(Double.self), out.ptr(Double.self))
        default:
            func run<T: CPUNumber>(_: T.Type) {
                intUnary(op, p, x.ptr(T.self), out.ptr(T.self))
            }
            numeric(x.dtype, "\(op)") { run($0) }
        }
    }

    private func intUnary<T: CPUNumber>(_ op: UnaryOp, _ p: StridedPlan, _ x: UnsafePointer<T>, _ o: UnsafeMutablePointer<T>) {
        switch op {
        case .neg: map1(p, x, o) { T.sub(T.zero, $0) }
        case .abs: map1(p, x, o) { $0 < T.zero ? T.sub(T.zero, $0) : $0 }
        case .sign: map1(p, x, o) { $0 > T.zero ? T.one : ($0 < T.zero ? T.sub(T.zero, T.one) : T.zero) }
        case .relu: map1(p, x, o) { $0 > T.zero ? $0 : T.zero }
        case .square: map1(p, x, o) { T.mul($0, $0) }
        case .floor, .ceil, .round: map1(p, x, o) { $0 }
        case .clamp(let lo, let hi):
            // Compare in Int64 so that bounds outside the type's range never wrap.
            let l = lo.map { Int64(Swift.max(Swift.min($0.rounded(.up), 9e18), -9e18)) }
            let h = hi.map { Int64(Swift.max(Swift.min($0.rounded(.down), 9e18), -9e18)) }
            map1(p, x, o) { v in
                var r = v.asInt64
                if let l, r < l { r = l }
                if let h, r > h { r = h }
                return T(fromInt64: r)
            }
        default: fatalError("\(op): not defined for integer tensors")
        }
    }

    private func floatUnary<T: BinaryFloatingPoint & Real & CPUNumber>(
        _ op: UnaryOp, _ p: StridedPlan, _ x: UnsafePointer<T>, _ o: UnsafeMutablePointer<T>
    ) {
        switch op {
        case .neg: map1(p, x, o) { -$0 }
        case .abs: map1(p, x, o) { Swift.abs($0) }
        case .sign: map1(p, x, o) { $0 > 0 ? 1 : ($0 < 0 ? -1 : ($0.isNaN ? $0 : 0)) }
        case .exp: map1(p, x, o) { T.exp($0) }
        case .log: map1(p, x, o) { T.log($0) }
        case .log1p: map1(p, x, o) { T.log(onePlus: $0) }
        case .expm1: map1(p, x, o) { T.expMinusOne($0) }
        case .sqrt: map1(p, x, o) { $0.squareRoot() }
        case .rsqrt: map1(p, x, o) { 1 / $0.squareRoot() }
        case .sin: map1(p, x, o) { T.sin($0) }
        case .cos: map1(p, x, o) { T.cos($0) }
        case .tanh: map1(p, x, o) { T.tanh($0) }
        case .sigmoid: map1(p, x, o) { 1 / (1 + T.exp(-$0)) }
        case .relu: map1(p, x, o) { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) }
        case .gelu: map1(p, x, o) { 0.5 * $0 * (1 + T.erf($0 * T(0.7071067811865476))) }
        case .geluTanh:
            map1(p, x, o) { v in
                let inner = T(0.7978845608028654) * (v + T(0.044715) * v * v * v)
                return 0.5 * v * (1 + T.tanh(inner))
            }
        case .silu: map1(p, x, o) { $0 / (1 + T.exp(-$0)) }
        case .erf: map1(p, x, o) { T.erf($0) }
        case .reciprocal: map1(p, x, o) { 1 / $0 }
        case .square: map1(p, x, o) { $0 * $0 }
        case .floor: map1(p, x, o) { $0.rounded(.down) }
        case .ceil: map1(p, x, o) { $0.rounded(.up) }
        case .round: map1(p, x, o) { $0.rounded(.toNearestOrEven) }
        case .softplus(let beta, let threshold):
            let b = T(beta), th = T(threshold)
            map1(p, x, o) { v in v * b > th ? v : T.log(onePlus: T.exp(v * b)) / b }
        case .leakyRelu(let slope):
            let s = T(slope)
            map1(p, x, o) { $0 > 0 ? $0 : $0 * s }
        case .powScalar(let e):
            let te = T(e)
            if e == 2 { map1(p, x, o) { $0 * $0 } } else if e == 0.5 { map1(p, x, o) { $0.squareRoot() } } else if e == 1 {
                map1(p, x, o) { $0 }
            } else { map1(p, x, o) { T.power($0, te) } }
        case .clamp(let lo, let hi):
            let l = lo.map { T($0) }, h = hi.map { T($0) }
            map1(p, x, o) { v in
                if v.isNaN { return v }
                var r = v
                if let l, r < l { r = l }
                if let h, r > h { r = h }
                return r
            }
        case .logicalNot: fatalError("unreachable")
        }
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let p = StridedPlan(shape: out.shape, strides: [out.strides, a.strides, b.strides])
        func run<T: CPUNumber>(_: T.Type) {
            let pa = UnsafePointer(a.ptr(T.self)), pb = UnsafePointer(b.ptr(T.self))
            if op.isPredicate {
                let o = out.ptr(Bool.self)
                switch op {
                case .eq: map2(p, pa, pb, o) { $0 == $1 }
                case .ne: map2(p, pa, pb, o) { $0 != $1 }
                case .lt: map2(p, pa, pb, o) { $0 < $1 }
                case .le: map2(p, pa, pb, o) { $0 <= $1 }
                case .gt: map2(p, pa, pb, o) { $0 > $1 }
                case .ge: map2(p, pa, pb, o) { $0 >= $1 }
                case .logicalAnd: map2(p, pa, pb, o) { $0 != T.zero && $1 != T.zero }
                case .logicalOr: map2(p, pa, pb, o) { $0 != T.zero || $1 != T.zero }
                default: fatalError("unreachable")
                }
                return
            }
            let o = out.ptr(T.self)
            switch op {
            case .add: map2(p, pa, pb, o) { T.add($0, $1) }
            case .sub: map2(p, pa, pb, o) { T.sub($0, $1) }
            case .mul: map2(p, pa, pb, o) { T.mul($0, $1) }
            case .div: map2(p, pa, pb, o) { T.div($0, $1) }
            case .pow: map2(p, pa, pb, o) { T.power($0, $1) }
            case .maximum: map2(p, pa, pb, o) { T.maxP($0, $1) }
            case .minimum: map2(p, pa, pb, o) { T.minP($0, $1) }
            default: fatalError("unreachable")
            }
        }
        numeric(a.dtype, "\(op)") { run($0) }
    }

    public func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let p = StridedPlan(shape: out.shape, strides: [out.strides, cond.strides, a.strides, b.strides])
        let c = cond.ptr(Bool.self)
        switch out.dtype.itemSize {
        case 1: map3(p, c, a.ptr(UInt8.self), b.ptr(UInt8.self), out.ptr(UInt8.self)) { $0 ? $1 : $2 }
        case 2: map3(p, c, a.ptr(UInt16.self), b.ptr(UInt16.self), out.ptr(UInt16.self)) { $0 ? $1 : $2 }
        case 4: map3(p, c, a.ptr(UInt32.self), b.ptr(UInt32.self), out.ptr(UInt32.self)) { $0 ? $1 : $2 }
        default: map3(p, c, a.ptr(UInt64.self), b.ptr(UInt64.self), out.ptr(UInt64.self)) { $0 ? $1 : $2 }
        }
    }

    public func reduce(_ op: ReduceOp, _ x: Tensor, dims: [Int], _ out: Tensor) {
        var keptShape = x.shape
        for d in dims { keptShape[d] = 1 }
        let redShape = dims.map { x.shape[$0] }
        let redStrides = dims.map { x.strides[$0] }
        func go<A, Acc, R>(_ a: UnsafePointer<A>, _ r: UnsafeMutablePointer<R>, _ initial: Acc,
                           _ combine: (inout Acc, A, Int) -> Void, _ merge: ((inout Acc, Acc) -> Void)?,
                           _ finish: (Acc) -> R) {
            reduceStrided(keptShape: keptShape, outStrides: out.strides, inKeptStrides: x.strides,
                          reducedShape: redShape, inReducedStrides: redStrides, a, r,
                          initial: initial, combine: combine, merge: merge, finish: finish)
        }
        func run<T: CPUNumber>(_: T.Type) {
            let a = UnsafePointer(x.ptr(T.self))
            switch op {
            case .sum:
                if T.self == Float.self {
                    go(x.ptr(Float.self), out.ptr(Float.self), 0.0 as Double, { acc, v, _ in acc += Double(v) }, { $0 += $1 }, { Float($0) })
                } else if T.isIntegral {
                    go(a, out.ptr(Int64.self), Int64(0), { acc, v, _ in acc &+= v.asInt64 }, { $0 &+= $1 }, { $0 })
                } else {
                    go(a, out.ptr(T.self), T.zero, { acc, v, _ in acc = T.add(acc, v) }, { $0 = T.add($0, $1) }, { $0 })
                }
            case .prod:
                if T.isIntegral {
                    go(a, out.ptr(Int64.self), Int64(1), { acc, v, _ in acc &*= v.asInt64 }, { $0 &*= $1 }, { $0 })
                } else {
                    go(a, out.ptr(T.self), 1.0 as Double, { acc, v, _ in acc *= v.asDouble }, { $0 *= $1 }, { T(fromDouble: $0) })
                }
            case .max, .min:
                let isMax = op == .max
                go(a, out.ptr(T.self), (T.zero, false), { acc, v, _ in
                    if !acc.1 { acc = (v, true); return }
                    acc.0 = isMax ? T.maxP(acc.0, v) : T.minP(acc.0, v)
                }, { acc, other in
                    if !other.1 { return }
                    if !acc.1 { acc = other; return }
                    acc.0 = isMax ? T.maxP(acc.0, other.0) : T.minP(acc.0, other.0)
                }, { $0.0 })
            case .argmax, .argmin:
                let isMax = op == .argmax
                // (value, index, seen); first occurrence wins, NaN counts as the extreme.
                go(a, out.ptr(Int64.self), (T.zero, 0, false), { acc, v, i in
                    if !acc.2 { acc = (v, i, true); return }
                    if acc.0.isNaNValue { return }
                    if v.isNaNValue || (isMax ? v > acc.0 : v < acc.0) { acc = (v, i, true) }
                }, { acc, o in
                    if !o.2 { return }
                    if !acc.2 { acc = o; return }
                    if acc.0.isNaNValue { return }
                    if o.0.isNaNValue || (isMax ? o.0 > acc.0 : o.0 < acc.0) { acc = o }
                }, { Int64($0.1) })
            }
        }
        numeric(x.dtype, "\(op)") { run($0) }
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
            numeric(out.dtype, "matmul") { run($0) }
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
        numeric(out.dtype, "indexAdd") { run($0) }
        out.storage.bumpVersion()
    }

    public func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        var xs = x.strides
        let dimStride = xs[dim]
        xs[dim] = 0
        let p = StridedPlan(shape: index.shape, strides: [out.strides, index.strides, xs])
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
        let p = StridedPlan(shape: index.shape, strides: [index.strides, src.strides, os])
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
            numeric(out.dtype, "scatterAdd") { add($0) }
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
        let p = StridedPlan(shape: x.shape, strides: [x.strides, mask.strides])
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

    public func readBytes(_ t: Tensor, into dst: UnsafeMutableRawPointer) {
        memcpy(dst, t.storage.data + t.layout.offset * t.dtype.itemSize, t.count * t.dtype.itemSize)
    }

    public func writeBytes(_ t: Tensor, from src: UnsafeRawPointer) {
        memcpy(t.storage.data + t.layout.offset * t.dtype.itemSize, src, t.count * t.dtype.itemSize)
    }
}
