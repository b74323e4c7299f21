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
