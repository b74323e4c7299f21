import EmberCPU

extension Tensor {
    /// Cross-entropy of logits `[N, C]` against class indices `[N]` in one pass per row
    /// (log-sum-exp and the target's logit together). Returns the per-sample losses (0 at
    /// `ignoreIndex`) and the number of counted samples. The gradient is
    /// `softmax(logits) − onehot(target)` on counted rows, scaled by the upstream gradient.
    public func crossEntropyPerSample(_ target: Tensor, ignoreIndex: Int) -> (losses: Tensor, counted: Int) {
        checked {
            try require(rank == 2 && target.rank == 1 && target.count == shape[0],
                        "crossEntropy: logits \(fmt(shape)) and targets \(fmt(target.shape)) do not match")
            try require(target.dtype == .int64, "crossEntropy: expected int64 class indices, got \(target.dtype)")
        }
        let t = target.contiguous()
        let hostTarget = t.device == .cpu ? t : t.to(.cpu)  // class indices are checked on the host
        let tp = hostTarget.ptr(Int64.self)
        var counted = 0
        for i in 0..<t.count where Int(tp[i]) != ignoreIndex {
            counted += 1
            checked { try require(tp[i] >= 0 && Int(tp[i]) < shape[1], "crossEntropy: target \(tp[i]) is out of bounds for \(shape[1]) classes") }
        }
        let x = cast(dtype.floatResult.computeType).contiguous()
        let losses = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device)
        let lse = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device)
        device.backend.crossEntropyRows(x, t, ignoreIndex: ignoreIndex, losses, lse)
        let out = losses.cast(dtype.floatResult)
        if anyNeedsGrad(self) {
            let logits = self
            record(out, "NllLossBackward", [self], save: [self]) { c in
                let valid = t.ne(Double(ignoreIndex))
                let safe = Tensor.where(valid, t, Tensor.zerosLike(t)).unsqueeze(1)
                let scale = (c.grad * valid.to(c.grad.dtype)).unsqueeze(1)
                let p = c.createGraph ? logits.softmax(dim: 1) : (logits - lse.cast(logits.dtype).unsqueeze(1)).exp()
                return [(p - Tensor.zerosLike(p).scatter(1, safe, 1.0)) * scale]
            }
        }
        return (out, counted)
    }
}

/// Optimizer updates as one loop over each parameter (instead of a kernel per arithmetic
/// step). Each returns false when the fused path does not apply (a device other than the
/// CPU, mixed dtypes, non-contiguous tensors); callers then use the tensor-op formulation.
public enum FusedUpdate {
    static func applicable(_ ts: [Tensor]) -> Bool {
        let d = ts[0].dtype
        return ts.allSatisfy { $0.device == .cpu && $0.dtype == d && $0.isContiguous && $0.count == ts[0].count }
            && (d == .float32 || d == .float64)
    }

    /// Adam/AdamW for one parameter (PyTorch's single-tensor algorithm). `bc1`, `bc2` are the
    /// bias corrections `1 - β^step`.
    public static func adam(param p: Tensor, grad g: Tensor, expAvg m: Tensor, expAvgSq v: Tensor, maxExpAvgSq vmax: Tensor?,
                            lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double, decoupled: Bool,
                            bc1: Double, bc2: Double) -> Bool {
        guard applicable([p, g, m, v] + (vmax.map { [$0] } ?? [])) else { return false }
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let pp = p.ptr(T.self), gp = g.ptr(T.self), mp = m.ptr(T.self), vp = v.ptr(T.self), xp = vmax?.ptr(T.self)
            // Coefficients in Double, rounded once (as PyTorch passes Python floats to its kernels).
            let (c1, b2, c2, e, wd) = (T(1 - beta1), T(beta2), T(1 - beta2), T(eps), T(weightDecay))
            let decay = T(1 - lr * weightDecay), step = T(lr / bc1), sbc2 = T(bc2.squareRoot())
            parallelFor(p.count, grain: elementwiseGrain) { r in
                var start = r.lowerBound
                if T.self == Float.self {
                    // Eight lanes at a time, the same operations in the same order as below.
                    typealias V = SIMD8<Float>
                    @inline(__always) func load(_ q: UnsafeMutablePointer<T>, _ i: Int) -> V { UnsafeRawPointer(q + i).loadUnaligned(as: V.self) }
                    @inline(__always) func store(_ q: UnsafeMutablePointer<T>, _ i: Int, _ x: V) { UnsafeMutableRawPointer(q + i).storeBytes(of: x, as: V.self) }
                    let (c1v, b2v, c2v, ev, wdv) = (V(repeating: Float(c1)), V(repeating: Float(b2)), V(repeating: Float(c2)),
                                                    V(repeating: Float(e)), V(repeating: Float(wd)))
                    let (decayv, stepv, sbc2v) = (V(repeating: Float(decay)), V(repeating: Float(step)), V(repeating: Float(sbc2)))
                    while start + 8 <= r.upperBound {
                        let i = start
                        var gi = load(gp, i), pi = load(pp, i)
                        if weightDecay != 0 { if decoupled { pi *= decayv } else { gi += wdv * pi } }
                        let m0 = load(mp, i)
                        let mi = m0 + c1v * (gi - m0)
                        let vi = b2v * load(vp, i) + c2v * gi * gi
                        store(mp, i, mi)
                        store(vp, i, vi)
                        var second = vi
                        if let xp { second = pointwiseMax(load(xp, i), vi); store(xp, i, second) }
                        pi -= stepv * mi / (second.squareRoot() / sbc2v + ev)
                        store(pp, i, pi)
                        start += 8
                    }
                }
                for i in start..<r.upperBound {
                    var gi = gp[i]
                    if weightDecay != 0 { if decoupled { pp[i] *= decay } else { gi += wd * pp[i] } }
                    let mi = mp[i] + c1 * (gi - mp[i])
                    let vi = b2 * vp[i] + c2 * gi * gi
                    mp[i] = mi
                    vp[i] = vi
                    var second = vi
                    if let xp { second = Swift.max(xp[i], vi); xp[i] = second }
                    pp[i] -= step * mi / (second.squareRoot() / sbc2 + e)
                }
            }
        }
        if p.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        for t in [p, m, v] + (vmax.map { [$0] } ?? []) { t.storage.bumpVersion() }
        return true
    }

    /// SGD with momentum, dampening, Nesterov and weight decay for one parameter. With
    /// `firstStep`, the momentum buffer is set to the gradient (as PyTorch does).
    public static func sgd(param p: Tensor, grad g: Tensor, momentumBuffer buf: Tensor?, lr: Double, momentum: Double,
                           dampening: Double, nesterov: Bool, weightDecay: Double, firstStep: Bool) -> Bool {
        guard applicable([p, g] + (buf.map { [$0] } ?? [])) else { return false }
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let pp = p.ptr(T.self), gp = g.ptr(T.self), bp = buf?.ptr(T.self)
            let (l, mo, damp, wd) = (T(lr), T(momentum), T(1 - dampening), T(weightDecay))  // rounded once from Double
            parallelFor(p.count, grain: elementwiseGrain) { r in
                for i in r {
                    var gi = gp[i] + wd * pp[i]
                    if let bp {
                        let b = firstStep ? gi : mo * bp[i] + damp * gi
                        bp[i] = b
                        gi = nesterov ? gi + mo * b : b
                    }
                    pp[i] -= l * gi
                }
            }
        }
        if p.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        p.storage.bumpVersion()
        buf?.storage.bumpVersion()
        return true
    }
}

extension Tensor {
    /// `x·Wᵀ + b`, optionally followed by ReLU, in one output buffer (`addmm` + `relu_`):
    /// the bias fills the output, the product accumulates onto it, and ReLU runs in place.
    /// Backward saves only the output (the ReLU mask) and the operands. Applies to 2-D
    /// contiguous float32/float64 CPU operands; anything else takes the composed ops.
    public static func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, relu: Bool) -> Tensor {
        let d = x.dtype
        let fusable = x.device == .cpu && weight.device == .cpu && x.rank == 2 && weight.rank == 2
            && (d == .float32 || d == .float64) && weight.dtype == d && (bias.map { $0.dtype == d && $0.rank == 1 && $0.device == .cpu } ?? true)
            && x.shape[1] == weight.shape[1] && (bias.map { $0.count == weight.shape[0] } ?? true)
        guard fusable else {
            let y = x.matmul(weight.t())
            let z = bias.map { y + $0 } ?? y
            return relu ? z.relu() : z
        }
        let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
        let xc = x.contiguous(), wc = weight.contiguous()
        let out = Tensor(uninitialized: [m, n], dtype: d)
        func run<T: BinaryFloatingPoint>(_: T.Type, _ gemm: (UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>, Bool) -> Void) {
            let o = out.ptr(T.self)
            if let bias {
                let b = bias.contiguous().ptr(T.self)
                for i in 0..<m { (o + i * n).update(from: b, count: n) }
            }
            gemm(xc.ptr(T.self), wc.ptr(T.self), o, bias != nil)
            if relu {
                parallelFor(m * n, grain: elementwiseGrain) { r in for i in r where !(o[i] > 0) && !o[i].isNaN { o[i] = 0 } }
            }
        }
        if d == .float32 {
            run(Float.self) { a, w, c, acc in
                GEMM.sgemm(m: m, n: n, k: k, a: a, rowStrideA: k, colStrideA: 1, b: w, rowStrideB: 1, colStrideB: k,
                           c: c, ldc: n, accumulate: acc)
            }
        } else {
            run(Double.self) { a, w, c, acc in
                GEMM.dgemm(m: m, n: n, k: k, a: a, rowStrideA: k, colStrideA: 1, b: w, rowStrideB: 1, colStrideB: k,
                           c: c, ldc: n, accumulate: acc)
            }
        }
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        if anyNeedsGrad(inputs) {
            record(out, relu ? "LinearReluBackward" : "AddmmBackward", inputs, save: [x, weight], saveOutput: relu) { c in
                var g = c.grad
                if relu, let y = c.output { g = g * y.gt(0).to(g.dtype) }
                let gx = c.needsGrad(0) ? g.matmul(weight) : nil
                let gw = c.needsGrad(1) ? g.t().matmul(x) : nil
                let gb = bias != nil && c.needsGrad(2) ? g.sum(dim: 0) : nil
                return [gx, gw] + (bias != nil ? [gb] : [])
            }
        }
        return out
    }
}
