// Covariance and correlation (`torch.cov`, `torch.corrcoef`): rows are variables, columns
// observations, as numpy and PyTorch read them.

extension Tensor {
    /// The covariance matrix of the variables (rows) of `x` `[V, N]` (or one variable `[N]`):
    /// `correction` 1 is Bessel's; `fweights` (integer frequencies) and `aweights`
    /// (observation weights) as `torch.cov` applies them. A 0-dim result for one variable.
    public static func cov(_ x: Tensor, correction: Int = 1, fweights: Tensor? = nil, aweights: Tensor? = nil) -> Tensor {
        checked {
            try require(x.rank <= 2, "cov(): expected input to have two or fewer dimensions but got an input with \(x.rank) dimensions")
            let n = x.rank == 0 ? 1 : x.shape[x.rank - 1]
            if let f = fweights {
                try require(f.rank <= 1 && f.count == n, "cov(): expected fweights to have one dimension and the same number of elements as observations (\(n)), got shape \(fmt(f.shape))")
                try require(!f.dtype.isFloatingPoint, "cov(): expected fweights to have integral dtype, got \(f.dtype)")
            }
            if let a = aweights {
                try require(a.rank <= 1 && a.count == n, "cov(): expected aweights to have one dimension and the same number of elements as observations (\(n)), got shape \(fmt(a.shape))")
                try require(a.dtype.isFloatingPoint, "cov(): expected aweights to have floating point dtype, got \(a.dtype)")
            }
        }
        let xs = x.dtype.isFloatingPoint ? x : x.to(.defaultFloat)
        let m = xs.rank < 2 ? xs.reshape([1, -1]) : xs
        let n = m.shape[1]
        // The weights keep their own dtype, as in PyTorch (float32 weights of a float64 input
        // are multiplied and summed in float32).
        var w: Tensor? = fweights
        if let a = aweights { w = w.map { $0 * a } ?? a }
        let avg: Tensor, wSum: Tensor
        if let w {
            wSum = w.sum()
            avg = (m * w).sum(dim: 1) / wSum
        } else {
            wSum = Tensor.number(Double(n), like: m)
            avg = m.mean(dim: 1)
        }
        var normFactor: Tensor
        if let w, correction != 0 {
            normFactor = aweights.map { wSum - Double(correction) * (w * $0).sum() / wSum } ?? wSum - Double(correction)
        } else {
            normFactor = wSum - Double(correction)
        }
        normFactor = Tensor.where(normFactor.gt(0), normFactor, Tensor.zerosLike(normFactor))
        let xm = m - avg.unsqueeze(1)
        let xw = w.map { xm * $0 } ?? xm
        let c = xm.matmul(xw.mT) / normFactor
        return c.shape == [1, 1] ? c.reshape([]) : c
    }

    /// Pearson correlation coefficients of the variables (rows) of `x` (`torch.corrcoef`),
    /// clipped to [−1, 1].
    public static func corrcoef(_ x: Tensor) -> Tensor {
        let c = cov(x)
        if c.rank == 0 { return c / c }
        let d = c.diagonal(offset: 0, dim1: 0, dim2: 1)
        let s = d.sqrt()
        return (c / s.unsqueeze(1) / s.unsqueeze(0)).clamp(min: -1, max: 1)
    }
}

/// How `quantile` picks a value between two sorted neighbours (numpy's and PyTorch's names).
public enum QuantileInterpolation: String, Sendable, CaseIterable {
    case linear, lower, higher, midpoint, nearest
}

extension Tensor {
    /// The q-th quantiles along `dim` (all elements when nil) (`torch.quantile`): `q` a number
    /// (no new dimension) or a 1-D tensor of values in [0, 1] (a leading dimension of its
    /// size). A row holding NaN gives NaN. Differentiable through the sort.
    public func quantile(_ q: Tensor, dim: Int? = nil, keepdim: Bool = false, interpolation: QuantileInterpolation = .linear) -> Tensor {
        quantiles(q, dim: dim, keepdim: keepdim, interpolation: interpolation, ignoreNaN: false)
    }
    public func quantile(_ q: Double, dim: Int? = nil, keepdim: Bool = false, interpolation: QuantileInterpolation = .linear) -> Tensor {
        quantile(Tensor.full([], q, dtype: dtype, device: device), dim: dim, keepdim: keepdim, interpolation: interpolation)
    }
    /// `quantile` ignoring NaN (`torch.nanquantile`): a row of NaN only gives NaN.
    public func nanquantile(_ q: Tensor, dim: Int? = nil, keepdim: Bool = false, interpolation: QuantileInterpolation = .linear) -> Tensor {
        quantiles(q, dim: dim, keepdim: keepdim, interpolation: interpolation, ignoreNaN: true)
    }
    public func nanquantile(_ q: Double, dim: Int? = nil, keepdim: Bool = false, interpolation: QuantileInterpolation = .linear) -> Tensor {
        nanquantile(Tensor.full([], q, dtype: dtype, device: device), dim: dim, keepdim: keepdim, interpolation: interpolation)
    }

    /// PyTorch's `quantile_compute`: ranks `q·(n − 1)` into the sorted rows (n counting only
    /// non-NaN values when `ignoreNaN`), then the neighbours gathered and interpolated.
    private func quantiles(_ q: Tensor, dim: Int?, keepdim: Bool, interpolation: QuantileInterpolation, ignoreNaN: Bool) -> Tensor {
        let op = ignoreNaN ? "nanquantile" : "quantile"
        checked {
            try require(dtype == .float32 || dtype == .float64, "\(op)() input tensor must be either float or double dtype, got \(dtype)")
            try require(q.rank <= 1, "\(op)() q must be a scalar or 1D tensor, got shape \(fmt(q.shape))")
            try require(q.dtype == dtype, "\(op)() q tensor must be same dtype as the input tensor (\(q.dtype) and \(dtype))")
            try require(count > 0, "\(op)() input tensor must be non-empty")
            let v = q.toArray(Double.self)
            try require(v.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(op)() q values must be in the range [0, 1]")
            if let dim { try require(dim >= -Swift.max(rank, 1) && dim < Swift.max(rank, 1), "\(op)(): dim \(dim) out of range for a \(rank)-D input") }
        }
        // Rows along the last dimension: [lead..., n].
        var outShape: [Int]
        let rows: Tensor
        if let dim {
            let d = rank == 0 ? 0 : (dim < 0 ? dim + rank : dim)
            let x = rank == 0 ? reshape([1]) : self
            rows = x.movedim(d, x.rank - 1)
            outShape = x.shape
            if keepdim { outShape[d] = 1 } else { outShape.remove(at: d) }
            if rank == 0 { outShape = [] }
        } else {
            rows = reshape([count])
            outShape = keepdim ? [Int](repeating: 1, count: rank) : []
        }
        let sorted = rows.sort(dim: -1).values
        let n = sorted.shape[sorted.rank - 1]
        let q1 = q.reshape([q.count])
        let lead = Array(sorted.shape.dropLast())
        let qRow = q1.reshape([Int](repeating: 1, count: lead.count) + [q1.count])  // [1…, Q]
        // Differentiable in q (PyTorch differentiates a quantile in q too).
        var ranks: Tensor
        if ignoreNaN {
            let valid = withNoGrad { sorted.isnan().logicalNot().to(dtype).sum(dim: -1, keepdim: true) }
            let r = qRow * (valid - 1)
            ranks = Tensor.where(r.lt(0), Tensor.zerosLike(r), r)
        } else {
            let r = (qRow * Double(n - 1)).expand(lead + [q1.count])
            let hasNaN = withNoGrad { sorted.isnan().any(dim: -1, keepdim: true).expand(lead + [q1.count]) }
            ranks = Tensor.where(hasNaN, Tensor.fullLike(r, Double(n - 1)), r)
        }
        switch interpolation {
        case .lower: ranks = ranks.floor()
        case .higher: ranks = ranks.ceil()
        case .nearest: ranks = ranks.round()
        default: break
        }
        let below = withNoGrad { ranks.floor() }.detach().to(.int64)
        var values = sorted.gather(sorted.rank - 1, below)
        if interpolation == .linear || interpolation == .midpoint {
            let weights = interpolation == .midpoint ? Tensor.fullLike(ranks, 0.5) : ranks - below.to(dtype)
            let above = sorted.gather(sorted.rank - 1, withNoGrad { ranks.ceil() }.detach().to(.int64))
            // at::lerp: from the nearer end.
            let diff = above - values
            values = Tensor.where(weights.lt(0.5), values + weights * diff, above - diff * (1 - weights))
        }
        // [lead..., Q] → [Q, out...] (no Q dimension for a number q).
        let moved = values.movedim(values.rank - 1, 0)
        return q.rank == 0 ? moved.reshape(outShape) : moved.reshape([q1.count] + outShape)
    }

    /// Counts of the values in `bins` equal-width bins over [min, max] (`torch.histc`; the data's
    /// own range when min = max; values outside, and NaN, are not counted).
    public func histc(bins: Int = 100, min: Double = 0, max: Double = 0) -> Tensor {
        checked {
            try require(bins > 0, "histc: bins must be > 0, but got \(bins) for dimension 0")
            try require(dtype.isFloatingPoint, "histc: \"histogram_cpu\" not implemented for '\(dtype)'")
            try require(!(min > max), "histc: max must be larger than min (min \(min), max \(max))")
        }
        // PyTorch's binning, in the input's precision: (x − lo)·bins / (hi − lo), truncated.
        var counts = [Double](repeating: 0, count: bins)
        func run<T: BinaryFloatingPoint>(_ v: [T]) {
            var lo = T(min), hi = T(max)
            if lo == hi, !v.isEmpty { lo = v.min()!; hi = v.max()! }
            if lo == hi { lo -= 1; hi += 1 }
            for e in v where e >= lo && e <= hi {
                var pos = Int(((e - lo) * T(bins) / (hi - lo)).rounded(.towardZero))
                if pos == bins { pos -= 1 }
                counts[pos] += 1
            }
        }
        if dtype == .float64 { run(toArray(Double.self)) } else { run(toArray(Float.self)) }
        return Tensor(counts, shape: [bins], dtype: dtype, device: device)
    }

    /// The number of times each non-negative integer occurs in a 1-D tensor, or the sum of
    /// their `weights` (`torch.bincount`); at least `minlength` long.
    public func bincount(weights: Tensor? = nil, minlength: Int = 0) -> Tensor {
        checked {
            try require(rank == 1 && !dtype.isFloatingPoint && dtype != .bool, "bincount only supports 1-d non-negative integral inputs (got \(dtype), shape \(fmt(shape)))")
            try require(minlength >= 0, "bincount: minlength should be >= 0")
            if let weights { try require(weights.shape == shape, "bincount: weights should be 1-d and have the same length as input (\(fmt(weights.shape)) vs \(fmt(shape)))") }
            try require(count == 0 || min().item() >= 0, "bincount only supports 1-d non-negative integral inputs.")
        }
        let length = Swift.max(minlength, count == 0 ? 0 : Int(max().item()) + 1)
        let outDType: DType = weights.map { $0.dtype.isFloatingPoint ? $0.dtype : .float64 } ?? .int64
        let src = weights.map { $0.to(outDType) } ?? Tensor.ones([count], dtype: outDType, device: device)
        return Tensor.zeros([length], dtype: outDType, device: device).indexAdd(0, to(.int64), src)
    }
}
