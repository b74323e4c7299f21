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
        let tp = t.ptr(Int64.self)
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
                for i in r {
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
