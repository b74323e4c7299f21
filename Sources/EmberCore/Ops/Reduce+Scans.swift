// More reductions (amax/amin with PyTorch's even split among ties, any/all, count_nonzero,
// the NaN-ignoring sum and mean) and the inclusive scans (cumsum, cumprod, logcumsumexp).

extension Tensor {
    // MARK: amax, amin, aminmax

    /// The maximum over `dims` (all when nil or empty); the gradient is split evenly among
    /// tied maxima, unlike `max(dim:)`, which gives it to one.
    public func amax(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor { extreme(.max, dims, keepdim, "amax") }
    /// The minimum over `dims` (all when nil or empty), the gradient split among ties.
    public func amin(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor { extreme(.min, dims, keepdim, "amin") }
    public func amax(dim: Int, keepdim: Bool = false) -> Tensor { amax(dims: [dim], keepdim: keepdim) }
    public func amin(dim: Int, keepdim: Bool = false) -> Tensor { amin(dims: [dim], keepdim: keepdim) }

    /// `(amin, amax)` over `dim` (all when nil).
    public func aminmax(dim: Int? = nil, keepdim: Bool = false) -> (min: Tensor, max: Tensor) {
        let dims = dim.map { [$0] }
        return (amin(dims: dims, keepdim: keepdim), amax(dims: dims, keepdim: keepdim))
    }

    private func extreme(_ op: ReduceOp, _ dims: [Int]?, _ keepdim: Bool, _ name: String) -> Tensor {
        let d = reductionDims(dims, op: name)
        let kept = reduceKernel(op, d)
        var outShape = shape
        for i in d.reversed() { if keepdim { outShape[i] = 1 } else { outShape.remove(at: i) } }
        let out = kept.reshape(outShape)
        if dtype.isFloatingPoint && anyNeedsGrad(self) {
            let x = self, keptShape = kept.shape
            record(out, name == "amax" ? "AmaxBackward" : "AminBackward", [self], save: [self], saveOutput: true) { c in
                let m = (c.createGraph ? x.extreme(op, dims, true, name) : c.output!.reshape(keptShape))
                let hit = x.eq(m).to(x.dtype)
                let count = hit.sum(dims: d, keepdim: true)
                return [c.grad.reshape(keptShape) * hit / count]
            }
        }
        return out
    }

    // MARK: any, all, count_nonzero

    /// True where any element over `dims` (all when nil) is non-zero.
    public func any(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        ne(0).sum(dims: reductionDims(dims, op: "any"), keepdim: keepdim).gt(0)
    }
    public func any(dim: Int, keepdim: Bool = false) -> Tensor { any(dims: [dim], keepdim: keepdim) }
    /// True where every element over `dims` (all when nil) is non-zero.
    public func all(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        eq(0).sum(dims: reductionDims(dims, op: "all"), keepdim: keepdim).eq(0)
    }
    public func all(dim: Int, keepdim: Bool = false) -> Tensor { all(dims: [dim], keepdim: keepdim) }
    /// The number of non-zero elements over `dims` (all when nil), as int64.
    public func countNonzero(dims: [Int]? = nil) -> Tensor { ne(0).sum(dims: reductionDims(dims, op: "count_nonzero")) }

    /// `ne(0)` that also holds for NaN (NaN is non-zero).
    private func nonzeroMask() -> Tensor { ne(0) }

    // MARK: nansum, nanmean

    /// The sum over `dims` treating NaN as 0.
    public func nansum(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        guard dtype.isFloatingPoint else { return sum(dims: dims, keepdim: keepdim) }
        return Tensor.where(isnan(), Tensor.zerosLike(self), self).sum(dims: dims, keepdim: keepdim)
    }
    /// The mean over `dims` of the elements that are not NaN.
    public func nanmean(dims: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        checked {
            try require(dtype.isFloatingPoint,
                        "nanmean(): expected input to have floating point dtype but got \(dtype)")
        }
        let n = isnan().logicalNot().sum(dims: dims, keepdim: keepdim).to(dtype)
        return nansum(dims: dims, keepdim: keepdim) / n
    }

    // MARK: scans

    /// Runs a scan primitive along `dim` in the compute dtype.
    func scanKernel(_ op: ScanOp, dim: Int, dtype outType: DType) -> Tensor {
        let x = cast(outType.computeType)
        let out = Tensor(uninitialized: shape, dtype: x.dtype, device: device)
        if count > 0 { device.backend.scan(op, x, dim: dim, out) }
        return out.cast(outType)
    }

    /// The dim of a scan (0-dim tensors take 0 and −1).
    private func scanDim(_ dim: Int, _ op: String) -> Int {
        checked { try normalizeDim(dim, Swift.max(rank, 1), op: op) }
    }

    /// The reversed inclusive sum along `d`: `out[i] = Σ_{j ≥ i} x[j]`.
    func reverseCumsum(_ d: Int) -> Tensor {
        rank == 0 ? self : flip([d]).cumsum(dim: d).flip([d])
    }

    /// Running sums along `dim`. Integer and bool inputs give int64 (or `dtype`).
    public func cumsum(dim: Int, dtype: DType? = nil) -> Tensor {
        let d = scanDim(dim, "cumsum")
        let outType = dtype ?? (self.dtype.isFloatingPoint ? self.dtype : .int64)
        let out = scanKernel(.sum, dim: d, dtype: outType)
        if out.dtype.isFloatingPoint && anyNeedsGrad(self) {
            let inType = self.dtype
            record(out, "CumsumBackward", [self]) { c in [c.grad.reverseCumsum(d).to(inType)] }
        }
        return out
    }

    /// Running products along `dim`. Integer and bool inputs give int64 (or `dtype`).
    public func cumprod(dim: Int, dtype: DType? = nil) -> Tensor {
        let d = scanDim(dim, "cumprod")
        let outType = dtype ?? (self.dtype.isFloatingPoint ? self.dtype : .int64)
        let out = scanKernel(.prod, dim: d, dtype: outType)
        if out.dtype.isFloatingPoint && anyNeedsGrad(self) {
            let x = self
            record(out, "CumprodBackward", [self], save: [self], saveOutput: true) { c in
                if c.createGraph { return [Tensor.cumprodGradExact(c.grad, x.to(outType), d).to(x.dtype)] }
                return [Tensor.cumprodGrad(c.grad, x.to(outType), c.output!, d).to(x.dtype)]
            }
        }
        return out
    }

    /// `∂/∂x_i Σ_j g_j · Π_{m ≤ j} x_m`, exact where x has zeros: before a line's first zero
    /// `Σ_{j ≥ i} g_j y_j / x_i`; at the first zero the products that skip it; after it 0.
    private static func cumprodGrad(_ g: Tensor, _ x: Tensor, _ y: Tensor, _ d: Int) -> Tensor {
        if x.rank == 0 || x.count == 0 { return g }
        let zero = x.eq(0)
        let zerosSoFar = zero.cumsum(dim: d)
        if withNoGrad({ zerosSoFar.max().item() }) == 0 { return (g * y).reverseCumsum(d) / x }
        let before = zerosSoFar.eq(0), first = zero.logicalAnd(zerosSoFar.eq(1))
        let one = Tensor.onesLike(x)
        let a = (g * y).reverseCumsum(d) / Tensor.where(before, x, one)
        let skip = Tensor.where(first, one, x).cumprod(dim: d)
        let b = (g * skip).reverseCumsum(d)
        return Tensor.where(before, a, Tensor.where(first, b, Tensor.zerosLike(g)))
    }

    /// The same gradient as a differentiable O(n²) formula (for higher orders, where the
    /// zeros of x still have derivatives): `Σ_{j ≥ i} g_j · Π_{m ≤ j, m ≠ i} x_m`, from the
    /// cumulative products of x with x_i replaced by 1, one row per i.
    private static func cumprodGradExact(_ g: Tensor, _ x: Tensor, _ d: Int) -> Tensor {
        if x.rank == 0 || x.count == 0 { return g }
        let n = x.shape[d]
        let xm = x.movedim(d, x.rank - 1), gm = g.movedim(d, g.rank - 1)
        let rows = Tensor.arange(n, device: x.device)
        let diagonal = rows.reshape([n, 1]).eq(rows.reshape([1, n]))
        let later = rows.reshape([n, 1]).le(rows.reshape([1, n])).to(x.dtype)
        var expanded = xm.shape
        expanded.insert(n, at: expanded.count - 1)
        let replaced = Tensor.where(diagonal, Tensor.onesLike(xm).unsqueeze(-2), xm.unsqueeze(-2).expand(expanded))
        let products = replaced.cumprod(dim: -1)
        return (products * gm.unsqueeze(-2) * later).sum(dim: -1).movedim(x.rank - 1, d)
    }

    /// `log Σ_{j ≤ i} exp(x_j)` along `dim`, without overflow.
    public func logcumsumexp(dim: Int) -> Tensor {
        let d = scanDim(dim, "logcumsumexp")
        checked { try require(dtype.isFloatingPoint, "logcumsumexp: expected a floating-point input, got \(dtype)") }
        let out = scanKernel(.logSumExp, dim: d, dtype: dtype)
        if anyNeedsGrad(self) {
            let x = self
            record(out, "LogcumsumexpBackward", [self], save: [self], saveOutput: true) { c in
                // ∂/∂x_i = Σ_{j ≥ i} g_j exp(x_i − y_j), in log space by the sign of g (PyTorch's
                // formula, from TensorFlow): no overflow, and PyTorch's rounding.
                let y = c.createGraph ? x.logcumsumexp(dim: d) : c.output!
                if x.rank == 0 { return [c.grad] }
                let g = c.grad
                let lowest = Tensor.full([], -Double.greatestFiniteMagnitude, dtype: g.dtype, device: g.device)
                let logAbs = g.abs().log()
                func reverse(_ t: Tensor) -> Tensor { t.flip([d]).logcumsumexp(dim: d).flip([d]) }
                let positive = (reverse(Tensor.where(g.gt(0), logAbs, lowest) - y) + x).exp()
                let negative = (reverse(Tensor.where(g.lt(0), logAbs, lowest) - y) + x).exp()
                return [positive - negative]
            }
        }
        return out
    }
}
