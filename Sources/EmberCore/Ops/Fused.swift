import CEmberKernels
import EmberCPU

extension Tensor {
    /// Cross-entropy of logits `[N, C]` against class indices `[N]` in one pass per row
    /// (log-sum-exp and the target's logit together). Returns the per-sample losses (0 at
    /// `ignoreIndex`) and the number of counted samples, as a 0-dimensional tensor on the
    /// logits' device that takes part in type promotion like a Swift number. The gradient is
    /// `softmax(logits) − onehot(target)` on counted rows, scaled by the upstream gradient.
    /// On the CPU the targets are checked before the pass; a GPU checks them in the kernel
    /// and reports a bad one at its next synchronisation (no round trip to the host).
    public func crossEntropyPerSample(_ target: Tensor, ignoreIndex: Int) -> (losses: Tensor, counted: Tensor) {
        checked {
            try require(rank == 2 && target.rank == 1 && target.count == shape[0],
                        "crossEntropy: logits \(fmt(shape)) and targets \(fmt(target.shape)) do not match")
            try require(target.dtype == .int64, "crossEntropy: expected int64 class indices, got \(target.dtype)")
        }
        let x = cast(dtype.floatResult.computeType).contiguous()
        let losses = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device)
        let lse = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device)
        var t = target.contiguous()
        let counted: Tensor
        if device != .cpu && t.device == device,
           case let valid = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device),
           device.backend.crossEntropyRowsChecked(x, t, ignoreIndex: ignoreIndex, losses, lse, valid) {
            counted = valid.sum()
        } else {
            if device != .cpu && t.device != device {
                misuse(EmberError.invalidArgument("crossEntropy: expected all tensors to be on the same device, but found \(device) and \(t.device)"))
            }
            let hostTarget = t.device == .cpu ? t : t.to(.cpu)  // class indices are checked on the host
            let tp = hostTarget.ptr(Int64.self)
            var n = 0
            for i in 0..<t.count where Int(tp[i]) != ignoreIndex {
                n += 1
                checked { try require(tp[i] >= 0 && Int(tp[i]) < shape[1], "crossEntropy: target \(tp[i]) is out of bounds for \(shape[1]) classes") }
            }
            if device == .cpu { t = hostTarget }
            device.backend.crossEntropyRows(x, t, ignoreIndex: ignoreIndex, losses, lse)
            counted = Tensor.wrapped(Double(n), like: x)
        }
        counted.isWrappedNumber = true
        let out = losses.cast(dtype.floatResult)
        if anyNeedsGrad(self) {
            let logits = self
            let target = t
            record(out, "NllLossBackward", [self], save: [self]) { c in
                if !c.createGraph && logits.dtype == x.dtype && logits.isContiguous && c.grad.rank == 1 && c.grad.dtype == x.dtype {
                    let dx = Tensor(uninitialized: logits.shape, dtype: x.dtype, device: logits.device)
                    if logits.device.backend.crossEntropyRowsBackward(logits, target, ignoreIndex: ignoreIndex, lse, c.grad, dx) {
                        return [dx]
                    }
                }
                let valid = target.ne(Double(ignoreIndex))
                let safe = Tensor.where(valid, target, Tensor.zerosLike(target)).unsqueeze(1)
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
    static func applicable(_ ts: [Tensor], on device: Device = .cpu) -> Bool {
        let d = ts[0].dtype
        return ts.allSatisfy { $0.device == device && $0.dtype == d && $0.isContiguous && $0.count == ts[0].count }
            && (d == .float32 || d == .float64)
    }

    /// The same step on another device, by its backend's fused kernel (if it has one):
    /// `written` are updated in place, `read` only read.
    static func onDevice(written: [Tensor], read: [Tensor], _ run: (Backend) -> Bool) -> Bool {
        let device = written[0].device
        guard device != .cpu, applicable(written + read, on: device), run(device.backend) else { return false }
        for t in written { t.storage.bumpVersion() }
        return true
    }

    /// Adam/AdamW for one parameter (PyTorch's single-tensor algorithm). `bc1`, `bc2` are the
    /// bias corrections `1 - β^step`.
    public static func adam(param p: Tensor, grad g: Tensor, expAvg m: Tensor, expAvgSq v: Tensor, maxExpAvgSq vmax: Tensor?,
                            lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double, decoupled: Bool,
                            bc1: Double, bc2: Double) -> Bool {
        let k = AdamCoefficients(beta1: beta1, beta2: beta2, eps: eps, lr: lr, weightDecay: weightDecay, decoupled: decoupled,
                                 bc1: bc1, bc2: bc2)
        guard applicable([p, g, m, v] + (vmax.map { [$0] } ?? [])) else {
            return onDevice(written: [p, m, v] + (vmax.map { [$0] } ?? []), read: [g]) { $0.adamStep(p, g, m, v, vmax, k) }
        }
        if p.dtype == .float32 {
            adamFloat(p.ptr(Float.self), g.ptr(Float.self), m.ptr(Float.self), v.ptr(Float.self), vmax?.ptr(Float.self), p.count, k)
        } else {
            let (pp, gp, mp, vp, xp) = (p.ptr(Double.self), g.ptr(Double.self), m.ptr(Double.self), v.ptr(Double.self), vmax?.ptr(Double.self))
            parallelFor(p.count, grain: elementwiseGrain) { r in adamLoop(pp, gp, mp, vp, xp, r, k) }
        }
        for t in [p, m, v] + (vmax.map { [$0] } ?? []) { t.storage.bumpVersion() }
        return true
    }

    /// The scalars of one Adam step: `bc1`, `bc2` are the bias corrections `1 - β^step`.
    /// Every kernel rounds the same derived coefficients once to the parameter's dtype:
    /// `1 - β1`, `β2`, `1 - β2`, `eps`, `weightDecay`, `1 - lr·weightDecay`, `lr / bc1`, `√bc2`.
    public struct AdamCoefficients: Sendable {
        public let beta1, beta2, eps, lr, weightDecay: Double, decoupled: Bool, bc1, bc2: Double
        /// The eight derived coefficients above, in that order.
        public var derived: [Double] {
            [1 - beta1, beta2, 1 - beta2, eps, weightDecay, 1 - lr * weightDecay, lr / bc1, bc2.squareRoot()]
        }
    }

    /// The scalars of one SGD step.
    public struct SGDCoefficients: Sendable {
        public let lr, momentum, dampening, weightDecay: Double, nesterov, firstStep: Bool
    }

    /// The scalar Adam loop over `range` (tails of the vector loop, and float64).
    @inline(__always)
    static func adamLoop<T: BinaryFloatingPoint>(_ pp: UnsafeMutablePointer<T>, _ gp: UnsafeMutablePointer<T>,
                                                 _ mp: UnsafeMutablePointer<T>, _ vp: UnsafeMutablePointer<T>,
                                                 _ xp: UnsafeMutablePointer<T>?, _ range: Range<Int>, _ k: AdamCoefficients) {
        // Coefficients in Double, rounded once (as PyTorch passes Python floats to its kernels).
        let (c1, b2, c2, e, wd) = (T(1 - k.beta1), T(k.beta2), T(1 - k.beta2), T(k.eps), T(k.weightDecay))
        let decay = T(1 - k.lr * k.weightDecay), step = T(k.lr / k.bc1), sbc2 = T(k.bc2.squareRoot())
        for i in range {
            var gi = gp[i]
            if k.weightDecay != 0 { if k.decoupled { pp[i] *= decay } else { gi += wd * pp[i] } }
            let mi = mp[i] + c1 * (gi - mp[i])
            let vi = b2 * vp[i] + c2 * gi * gi
            mp[i] = mi
            vp[i] = vi
            var second = vi
            if let xp { second = Swift.max(xp[i], vi); xp[i] = second }
            pp[i] -= step * mi / (second.squareRoot() / sbc2 + e)
        }
    }

    /// Adam over float32 parameters: the C loop (vectorised, square root included), split
    /// across threads. The same operations in the same order as `adamLoop`.
    static func adamFloat(_ pp: UnsafeMutablePointer<Float>, _ gp: UnsafeMutablePointer<Float>, _ mp: UnsafeMutablePointer<Float>,
                          _ vp: UnsafeMutablePointer<Float>, _ xp: UnsafeMutablePointer<Float>?, _ count: Int, _ k: AdamCoefficients) {
        let flags: Int32 = (k.weightDecay != 0 ? 1 : 0) | (k.decoupled ? 2 : 0)
        let kernel = switch CPUFeatures.active {
        case .avx512: ember_adam_f32_avx512
        case .avx2: ember_adam_f32_avx2
        case .baseline: ember_adam_f32
        }
        // The coefficients on the stack (this runs for every parameter of every step).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 8) { c in
            c[0] = Float(1 - k.beta1); c[1] = Float(k.beta2); c[2] = Float(1 - k.beta2); c[3] = Float(k.eps)
            c[4] = Float(k.weightDecay); c[5] = Float(1 - k.lr * k.weightDecay); c[6] = Float(k.lr / k.bc1)
            c[7] = Float(k.bc2.squareRoot())
            parallelFor(count, grain: elementwiseGrain) { r in
                let o = r.lowerBound
                kernel(pp + o, gp + o, mp + o, vp + o, xp.map { $0 + o }, r.count, c.baseAddress, flags)
            }
        }
    }

    /// SGD with momentum, dampening, Nesterov and weight decay for one parameter. With
    /// `firstStep`, the momentum buffer is set to the gradient (as PyTorch does).
    public static func sgd(param p: Tensor, grad g: Tensor, momentumBuffer buf: Tensor?, lr: Double, momentum: Double,
                           dampening: Double, nesterov: Bool, weightDecay: Double, firstStep: Bool) -> Bool {
        guard applicable([p, g] + (buf.map { [$0] } ?? [])) else {
            let k = SGDCoefficients(lr: lr, momentum: momentum, dampening: dampening, weightDecay: weightDecay,
                                    nesterov: nesterov, firstStep: firstStep)
            return onDevice(written: [p] + (buf.map { [$0] } ?? []), read: [g]) { $0.sgdStep(p, g, buf, k) }
        }
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
                if relu, let y = c.output { g = c.createGraph ? g * y.gt(0).to(g.dtype) : Tensor.binaryKernel(.reluBackward, g, y, "relu backward") }
                let gx = c.needsGrad(0) ? g.matmul(weight) : nil
                let gw = c.needsGrad(1) ? g.t().matmul(x) : nil
                let gb = bias != nil && c.needsGrad(2) ? g.sum(dim: 0) : nil
                return [gx, gw] + (bias != nil ? [gb] : [])
            }
        }
        return out
    }
}
