extension Tensor {
    /// Normalised, sorted, unique reduction dims (nil = all).
    func reductionDims(_ dims: [Int]?, op: String) -> [Int] {
        guard let dims, !dims.isEmpty else { return Array(0..<rank) }
        if rank == 0 {
            // A 0-dim tensor takes dim 0 or -1 and has nothing to reduce.
            for d in dims { _ = checked { try normalizeDim(d, 0, op: op) } }
            return []
        }
        return checked {
            let d = try dims.map { try normalizeDim($0, rank, op: op) }
            try require(Set(d).count == d.count, "\(op): dim appears multiple times in the list of dims \(fmt(dims))")
            return d.sorted()
        }
    }

    /// Runs a reduce primitive; returns the result with `dims` kept as size 1.
    func reduceKernel(_ op: ReduceOp, _ dims: [Int]) -> Tensor {
        var x = cast(dtype.computeType)
        if (op == .sum || op == .prod) && !x.dtype.isFloatingPoint && x.dtype != .int64 { x = x.cast(.int64) }
        var kept = shape
        for d in dims { kept[d] = 1 }
        let outType: DType = (op == .argmax || op == .argmin) ? .int64 : x.dtype
        let out = Tensor(uninitialized: kept, dtype: outType, device: device)
        for d in dims where shape[d] == 0 {
            checked {
                try require(op == .sum || op == .prod,
                            "\(op): expected reduction dim \(d) to have non-zero size (shape \(fmt(shape)))")
            }
        }
        if count == 0 {
            device.backend.fill(out, op == .prod ? 1 : 0)
        } else {
            device.backend.reduce(op, x, dims: dims, out)
        }
        // Arg ops give int64; integer sums give int64; float16/bfloat16 round back.
        return (op == .argmax || op == .argmin || !dtype.isFloatingPoint) ? out : out.cast(dtype)
    }

    /// The kept-dims result reshaped without the reduced dims (no autograd: fresh tensor).
    private func dropDims(_ t: Tensor, _ dims: [Int]) -> Tensor {
        let s = t.shape.enumerated().filter { !dims.contains($0.offset) }.map(\.element)
        return Tensor(storage: t.storage, layout: Layout(contiguous: s), dtype: t.dtype)
    }

    // MARK: sum, mean, prod

    /// Sum over `dims` (all when nil). Integer and bool inputs sum to int64.
    public func sum(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        let d = reductionDims(dims, op: "sum")
        let kept = reduceKernel(.sum, d)
        let out = keepdim ? kept : dropDims(kept, d)
        if anyNeedsGrad(self) {
            let keptShape = kept.shape, inShape = shape
            record(out, "SumBackward", [self]) { c in [c.grad.reshape(keptShape).expand(inShape)] }
        }
        return out
    }
    public func sum(dim: Int, keepdim: Bool = false) -> Tensor { sum(dims: [dim], keepdim: keepdim) }

    /// Mean over `dims` (all when nil); floating-point tensors only.
    public func mean(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        checked {
            try require(dtype.isFloatingPoint,
                        "mean: could not infer output dtype. Input dtype must be floating point, but got \(dtype)")
        }
        let d = reductionDims(dims, op: "mean")
        let n = d.reduce(1) { $0 * shape[$1] }
        return sum(dims: d, keepdim: keepdim) / Double(n)
    }
    public func mean(dim: Int, keepdim: Bool = false) -> Tensor { mean(dims: [dim], keepdim: keepdim) }

    /// Product over `dim` (all when nil).
    public func prod(dim: Int? = nil, keepdim: Bool = false) -> Tensor {
        let d = reductionDims(dim.map { [$0] }, op: "prod")
        let kept = reduceKernel(.prod, d)
        let out = keepdim ? kept : dropDims(kept, d)
        if anyNeedsGrad(self) {
            let x = self, keptShape = kept.shape
            record(out, "ProdBackward", [self], save: [self]) { c in
                let g = c.grad.reshape(keptShape)
                let p = c.createGraph ? x.prod(dim: dim, keepdim: true).reshape(keptShape) : kept
                // Product of the other elements: p / x where x != 0; recomputed where x == 0.
                let hasZero = withNoGrad { x.eq(0).sum().item() } > 0
                if !hasZero { return [g * p / x] }
                return [g * x.prodOfOthers(d)]
            }
        }
        return out
    }

    /// For each element, the product of the other elements along the reduced dims: the
    /// product of those before it times the product of those after it (exclusive running
    /// products from both ends), exact where there are zeros and differentiable again.
    private func prodOfOthers(_ dims: [Int]) -> Tensor {
        let rest = (0..<rank).filter { !dims.contains($0) }
        let perm = rest + dims
        let p = permute(perm).contiguous()
        let outer = rest.reduce(1) { $0 * shape[$1] }, n = dims.reduce(1) { $0 * shape[$1] }
        let flat = p.reshape([outer, n])
        let others: Tensor
        if n == 1 {
            others = Tensor.onesLike(flat)
        } else {
            let one = Tensor.ones([outer, 1], dtype: flat.dtype, device: device)
            let before = Tensor.cat([one, flat.narrow(1, start: 0, length: n - 1).cumprod(dim: 1)], dim: 1)
            let reversed = flat.flip([1])
            let after = Tensor.cat([one, reversed.narrow(1, start: 0, length: n - 1).cumprod(dim: 1)], dim: 1).flip([1])
            others = before * after
        }
        var inverse = [Int](repeating: 0, count: perm.count)
        for (i, q) in perm.enumerated() { inverse[q] = i }
        return others.reshape(perm.map { shape[$0] }).permute(inverse)
    }

    // MARK: max, min, argmax, argmin

    /// The largest element; NaN propagates. The gradient is shared evenly among ties.
    public func max() -> Tensor { extreme(.max, "MaxBackward") }
    /// The smallest element; NaN propagates.
    public func min() -> Tensor { extreme(.min, "MinBackward") }

    private func extreme(_ op: ReduceOp, _ name: String) -> Tensor {
        checked { try require(count > 0, "\(op): Expected reduction dim to be specified for input.numel() == 0") }
        let d = Array(0..<rank)
        let out = dropDims(reduceKernel(op, d), d)
        if anyNeedsGrad(self) {
            let x = self
            record(out, name, [self], save: [self], saveOutput: true) { c in
                let mask = x.eq(c.output!).to(x.dtype)
                return [c.grad * mask / mask.sum()]
            }
        }
        return out
    }

    /// Largest values along `dim` and their indices (first occurrence).
    public func max(dim: Int, keepdim: Bool = false) -> (values: Tensor, indices: Tensor) {
        extreme(dim: dim, keepdim: keepdim, .max, .argmax, "MaxBackward")
    }
    /// Smallest values along `dim` and their indices (first occurrence).
    public func min(dim: Int, keepdim: Bool = false) -> (values: Tensor, indices: Tensor) {
        extreme(dim: dim, keepdim: keepdim, .min, .argmin, "MinBackward")
    }

    private func extreme(dim: Int, keepdim: Bool, _ op: ReduceOp, _ argOp: ReduceOp, _ name: String)
        -> (values: Tensor, indices: Tensor) {
        let d = checked { try normalizeDim(dim, rank, op: "\(op)") }
        if rank == 0 {
            let r = reshape([1]).extreme(dim: 0, keepdim: false, op, argOp, name)
            return (r.values, r.indices)
        }
        let idx = reduceKernel(argOp, [d])
        let vals = withNoGrad { self.gather(d, idx) }
        let values = keepdim ? vals : dropDims(vals, [d])
        let indices = keepdim ? idx : dropDims(idx, [d])
        if anyNeedsGrad(self) {
            let inShape = shape, keptShape = idx.shape
            record(values, name, [self]) { c in
                [Tensor.zeros(inShape, dtype: c.grad.dtype, device: c.grad.device)
                    .scatterAdd(d, idx, c.grad.reshape(keptShape))]
            }
        }
        return (values, indices)
    }

    /// Index of the largest element (over the flattened tensor when `dim` is nil).
    public func argmax(dim: Int? = nil, keepdim: Bool = false) -> Tensor {
        guard let dim else { return reshape([-1]).argmax(dim: 0) }
        let d = checked { try normalizeDim(dim, rank, op: "argmax") }
        if rank == 0 { return Tensor.zeros([], dtype: .int64, device: device) }
        let r = reduceKernel(.argmax, [d])
        return keepdim ? r : dropDims(r, [d])
    }

    /// Index of the smallest element (over the flattened tensor when `dim` is nil).
    public func argmin(dim: Int? = nil, keepdim: Bool = false) -> Tensor {
        guard let dim else { return reshape([-1]).argmin(dim: 0) }
        let d = checked { try normalizeDim(dim, rank, op: "argmin") }
        if rank == 0 { return Tensor.zeros([], dtype: .int64, device: device) }
        let r = reduceKernel(.argmin, [d])
        return keepdim ? r : dropDims(r, [d])
    }

    // MARK: statistics

    /// Variance over `dims` with Bessel's `correction` (1 = unbiased, as PyTorch's default).
    public func variance(dims: [Int]? = nil, correction: Double = 1, keepdim: Bool = false) -> Tensor {
        let d = reductionDims(dims, op: "var")
        let n = d.reduce(1) { $0 * shape[$1] }
        let diff = self - mean(dims: d, keepdim: true)
        return (diff * diff).sum(dims: d, keepdim: keepdim) / Swift.max(0, Double(n) - correction)
    }

    /// `(variance, mean)` over `dims` in one call (`torch.var_mean`).
    public func varMean(dims: [Int]? = nil, correction: Double = 1, keepdim: Bool = false) -> (variance: Tensor, mean: Tensor) {
        (variance(dims: dims, correction: correction, keepdim: keepdim), mean(dims: reductionDims(dims, op: "var_mean"), keepdim: keepdim))
    }
    /// `(std, mean)` over `dims` in one call (`torch.std_mean`).
    public func stdMean(dims: [Int]? = nil, correction: Double = 1, keepdim: Bool = false) -> (std: Tensor, mean: Tensor) {
        (std(dims: dims, correction: correction, keepdim: keepdim), mean(dims: reductionDims(dims, op: "std_mean"), keepdim: keepdim))
    }

    /// Standard deviation over `dims` with Bessel's `correction`.
    public func std(dims: [Int]? = nil, correction: Double = 1, keepdim: Bool = false) -> Tensor {
        variance(dims: dims, correction: correction, keepdim: keepdim).sqrt()
    }

    /// `log(sum(exp(x)))` over `dims`, computed stably.
    public func logsumexp(dims: [Int], keepdim: Bool = false) -> Tensor {
        let d = reductionDims(dims, op: "logsumexp")
        let m = withNoGrad { () -> Tensor in
            var m = self
            for k in d.reversed() { m = m.max(dim: k, keepdim: true).values }
            return Tensor.where(m.abs().eq(Double.infinity), Tensor.zerosLike(m), m)
        }
        let s = (self - m).exp().sum(dims: d, keepdim: true).log() + m
        return keepdim ? s : s.squeezeDims(d)
    }
    public func logsumexp(dim: Int, keepdim: Bool = false) -> Tensor { logsumexp(dims: [dim], keepdim: keepdim) }

    private func squeezeDims(_ dims: [Int]) -> Tensor {
        reshape(shape.enumerated().filter { !dims.contains($0.offset) }.map(\.element))
    }

    /// The p-norm over `dims` (all when nil): p = 2 (default), 1, `.infinity`, or any p > 0.
    public func norm(p: Double = 2, dims: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        let d = reductionDims(dims, op: "norm")
        if p == 1 { return abs().sum(dims: d, keepdim: keepdim) }
        if p == .infinity {
            var m = abs()
            for k in d.reversed() { m = m.max(dim: k, keepdim: true).values }
            return keepdim ? m : m.squeezeDims(d)
        }
        if p == 2 {
            let y = withNoGrad { (self * self).sum(dims: d, keepdim: keepdim).sqrt() }
            if anyNeedsGrad(self) {
                let x = self
                var kept = shape
                for k in d { kept[k] = 1 }
                record(y, "NormBackward", [self], save: [self], saveOutput: true) { c in
                    let yk = (c.createGraph ? x.norm(p: 2, dims: d, keepdim: true) : c.output!.reshape(kept))
                    let safe = Tensor.where(yk.eq(0), Tensor.onesLike(yk), yk)
                    return [Tensor.where(yk.eq(0), Tensor.zerosLike(x), x * c.grad.reshape(kept) / safe)]
                }
            }
            return y
        }
        return abs().pow(p).sum(dims: d, keepdim: keepdim).pow(1 / p)
    }

    // MARK: softmax

    /// `exp(x) / sum(exp(x))` along `dim`, computed stably in one fused kernel.
    public func softmax(dim: Int) -> Tensor { softmaxKernel(dim: dim, log: false) }

    /// `x - logsumexp(x)` along `dim`, in one fused kernel.
    public func logSoftmax(dim: Int) -> Tensor { softmaxKernel(dim: dim, log: true) }

    private func softmaxKernel(dim: Int, log: Bool) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: log ? "logSoftmax" : "softmax") }
        if rank == 0 { return reshape([1]).softmaxKernel(dim: 0, log: log).reshape([]) }
        let last = rank - 1
        // The kernel works on contiguous rows: move `dim` last, compute, move it back.
        let x = (d == last ? self : transpose(d, last)).cast(dtype.floatResult.computeType).contiguous()
        let y = Tensor(uninitialized: x.shape, dtype: x.dtype, device: device)
        device.backend.softmax(x, y, log: log)
        let back = d == last ? y : Tensor(storage: y.storage, layout: y.layout, dtype: y.dtype).transposeView(d, last)
        let out = back.cast(dtype.floatResult)
        if anyNeedsGrad(self) {
            let input = self
            record(out, log ? "LogSoftmaxBackward" : "SoftmaxBackward", [self], saveOutput: true) { c in
                if input.count == 0 { return [c.grad] }
                if c.createGraph {
                    // Differentiable formulation for higher-order gradients.
                    let m = withNoGrad { input.max(dim: d, keepdim: true).values }
                    let z = input - m
                    let lse = z.exp().sum(dim: d, keepdim: true).log()
                    let y = log ? z - lse : (z - lse).exp()
                    return [log ? c.grad - y.exp() * c.grad.sum(dim: d, keepdim: true)
                                : y * (c.grad - (c.grad * y).sum(dim: d, keepdim: true))]
                }
                let y = c.output!
                if log { return [c.grad - y.exp() * c.grad.sum(dim: d, keepdim: true)] }
                return [y * (c.grad - (c.grad * y).sum(dim: d, keepdim: true))]
            }
        }
        return out
    }

    /// A transposed view without autograd (kernel plumbing).
    fileprivate func transposeView(_ a: Int, _ b: Int) -> Tensor {
        var l = layout
        l.shape.swapAt(a, b)
        l.strides.swapAt(a, b)
        return Tensor(storage: storage, layout: l, dtype: dtype)
    }

    // MARK: broadcasting's inverse

    /// Sums a broadcast gradient back down to `target` (the one place autograd does this).
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var dims = Array(0..<Swift.max(lead, 0))
        for (i, s) in target.enumerated() where s == 1 && shape[lead + i] != 1 { dims.append(lead + i) }
        if dims.isEmpty { return reshape(target) }
        return sum(dims: dims, keepdim: true).reshape(target)
    }
}
