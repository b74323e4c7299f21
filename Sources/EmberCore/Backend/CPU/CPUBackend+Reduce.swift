import RealModule
import CEmberKernels
import EmberCPU

/// Reductions and softmax on the CPU.
extension CPUBackend {
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
                        // Sums and products accumulate in float64 and round once.
                        let accumulates = op == .sum || op == .prod
                        withUnsafeTemporaryAllocation(of: Double.self, capacity: accumulates ? w : 0) { accBuf in
                            var first = true
                            red.forEachRow(0..<red.rows) { roff in
                                for e in 0..<rn {
                                    let p = base + roff[0] + e * rs
                                    switch op {
                                    case .sum:
                                        let acc = accBuf.baseAddress!
                                        if first { for j in 0..<w { acc[j] = Double(p[j]) } } else { for j in 0..<w { acc[j] += Double(p[j]) } }
                                    case .prod:
                                        let acc = accBuf.baseAddress!
                                        if first { for j in 0..<w { acc[j] = Double(p[j]) } } else { for j in 0..<w { acc[j] *= Double(p[j]) } }
                                    case .max:
                                        if first { for j in 0..<w { o[j] = p[j] } } else { for j in 0..<w { o[j] = T.maxP(o[j], p[j]) } }
                                    case .min:
                                        if first { for j in 0..<w { o[j] = p[j] } } else { for j in 0..<w { o[j] = T.minP(o[j], p[j]) } }
                                    case .argmax, .argmin:
                                        fatalError("unreachable: arg reductions return above")
                                    }
                                    first = false
                                }
                            }
                            if accumulates { let acc = accBuf.baseAddress!; for j in 0..<w { o[j] = T(acc[j]) } }
                        }
                    }
                }
            }
        }
        if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
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

    public func scan(_ op: ScanOp, _ x: Tensor, dim: Int, _ out: Tensor) {
        if x.count == 0 { return }
        let plan = LinePlan(x, dim: dim, out), n = plan.length, sx = plan.xStride, so = plan.outStride, lines = plan.count
        func forLines(_ range: Range<Int>, _ line: (Int, Int) -> Void) {
            for l in range { let (ox, oo) = plan.offsets(l); line(ox, oo) }
        }
        let grain = Swift.max(1, elementwiseGrain / Swift.max(n, 1))
        func real<T: BinaryFloatingPoint & Real>(_: T.Type) {
            let a = x.ptr(T.self), o = out.ptr(T.self)
            parallelFor(lines, grain: grain) { range in
                forLines(range) { ox, oo in
                    // float32 accumulates in float64, as PyTorch's CPU scans do.
                    var acc: Double = op == .sum ? 0 : (op == .prod ? 1 : (op == .min ? .infinity : -.infinity))
                    for i in 0..<n {
                        let v = Double(a[ox + i * sx])
                        switch op {
                        case .sum: acc += v
                        case .prod: acc *= v
                        case .max: acc = acc.isNaN || v <= acc ? acc : v
                        case .min: acc = acc.isNaN || v >= acc ? acc : v
                        case .logSumExp:
                            let hi = Swift.max(acc, v), lo = Swift.min(acc, v)
                            if hi.isNaN || lo.isNaN { acc = .nan } else if lo == -.infinity || hi == .infinity { acc = hi } else {
                                acc = hi + Double.log(onePlus: Double.exp(lo - hi))
                            }
                        }
                        o[oo + i * so] = T(acc)
                    }
                }
            }
        }
        func integral<T: CPUNumber>(_: T.Type) {
            let a = x.ptr(T.self), o = out.ptr(T.self)
            parallelFor(lines, grain: grain) { range in
                forLines(range) { ox, oo in
                    var acc = op == .prod ? T.one : T.zero
                    for i in 0..<n {
                        let v = a[ox + i * sx]
                        switch op {
                        case .prod: acc = T.mul(acc, v)
                        case .max: acc = i == 0 ? v : T.maxP(acc, v)
                        case .min: acc = i == 0 ? v : T.minP(acc, v)
                        case .sum, .logSumExp: acc = T.add(acc, v)
                        }
                        o[oo + i * so] = acc
                    }
                }
            }
        }
        if op == .logSumExp && !x.dtype.isFloatingPoint { unsupported("logcumsumexp", x.dtype) }
        numericSwitch(x.dtype, "cum" + op.name, { real(Float.self) }, { real(Double.self) }, { integral(Int64.self) },
                      { integral(Int32.self) }, { integral(UInt8.self) }, { integral(Bool.self) })
    }

    public func sort(_ x: Tensor, dim: Int, descending: Bool, _ values: Tensor, _ indices: Tensor) {
        if x.count == 0 { return }
        let plan = LinePlan(x, dim: dim, values), n = plan.length, sx = plan.xStride, so = plan.outStride, lines = plan.count
        let idx = indices.ptr(Int64.self)
        func typed<T: CPUNumber>(_: T.Type) {
            let a = x.ptr(T.self), o = values.ptr(T.self)
            parallelFor(lines, grain: Swift.max(1, elementwiseGrain / Swift.max(n * 8, 1))) { range in
                var order = [Int](repeating: 0, count: n)
                for l in range {
                    let (ox, oo) = plan.offsets(l)
                    for i in 0..<n { order[i] = i }
                    let line = a + ox
                    // Total order: value (NaN greatest), then position, so the sort is stable.
                    order.sort { i, j in
                        let u = line[i * sx], v = line[j * sx]
                        let nu = u.isNaNValue, nv = v.isNaNValue
                        if nu != nv { return descending ? nu : nv }
                        if !nu && u != v { return descending ? u > v : u < v }
                        return i < j
                    }
                    for (r, i) in order.enumerated() {
                        o[oo + r * so] = line[i * sx]
                        idx[oo + r * so] = Int64(i)
                    }
                }
            }
        }
        numericSwitch(x.dtype, "sort", { typed(Float.self) }, { typed(Double.self) }, { typed(Int64.self) },
                      { typed(Int32.self) }, { typed(UInt8.self) }, { typed(Bool.self) })
    }
}

/// The lines of a tensor along one dimension (scans, sorts): every position of the other
/// dimensions, with its start offset in the input and in the output.
struct LinePlan {
    let length: Int, xStride: Int, outStride: Int, count: Int
    private let outer: [Int], xOuter: [Int], outOuter: [Int]

    init(_ x: Tensor, dim: Int, _ out: Tensor) {
        let shape = x.shape
        length = shape.isEmpty ? 1 : shape[dim]
        xStride = shape.isEmpty ? 0 : x.strides[dim]
        outStride = shape.isEmpty ? 0 : out.strides[dim]
        let others = shape.indices.filter { $0 != dim }
        outer = others.map { shape[$0] }
        xOuter = others.map { x.strides[$0] }
        outOuter = others.map { out.strides[$0] }
        count = outer.reduce(1, *)
    }

    /// The start of line `l` in the input and in the output.
    @inline(__always) func offsets(_ l: Int) -> (Int, Int) {
        var rest = l, ox = 0, oo = 0
        for k in Swift.stride(from: outer.count - 1, through: 0, by: -1) {
            let i = rest % outer[k]
            rest /= outer[k]
            ox += i * xOuter[k]
            oo += i * outOuter[k]
        }
        return (ox, oo)
    }
}
