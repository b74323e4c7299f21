/// Loss functions (`torch.nn.functional`'s losses), and cross-entropy's fused rows op: one
/// pass per row forward (log-sum-exp and the target's logit together) and one backward.

extension Tensor {
    /// Cross-entropy of logits `[N, C]` against class indices `[N]` in one pass per row.
    /// Returns the per-sample losses (0 at `ignoreIndex`) and the number of counted samples,
    /// as a 0-dimensional tensor on the logits' device that takes part in type promotion
    /// like a Swift number. The gradient is `softmax(logits) − onehot(target)` on counted
    /// rows, scaled by the upstream gradient. The backend checks the targets: the CPU before
    /// the pass, a GPU in the kernel (reported at its next synchronisation, with no round
    /// trip to the host).
    public func crossEntropyPerSample(_ target: Tensor, ignoreIndex: Int) -> (losses: Tensor, counted: Tensor) {
        checked {
            try require(rank == 2 && target.rank == 1 && target.count == shape[0],
                        "crossEntropy: logits \(fmt(shape)) and targets \(fmt(target.shape)) do not match")
            try require(target.dtype == .int64, "crossEntropy: expected int64 class indices, got \(target.dtype)")
            try require(target.device == device,
                        "crossEntropy: expected all tensors to be on the same device, but found \(device) and \(target.device)")
        }
        let x = cast(dtype.floatResult.computeType).contiguous()
        let losses = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device)
        let lse = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device)
        let valid = Tensor(uninitialized: [shape[0]], dtype: x.dtype, device: device)
        let t = target.contiguous()
        if shape[0] > 0 { device.backend.crossEntropyRows(x, t, ignoreIndex: ignoreIndex, losses, lse, valid) }
        let counted = valid.sum()
        counted.isWrappedNumber = true
        let out = losses.cast(dtype.floatResult)
        if anyNeedsGrad(self) {
            let logits = self
            record(out, "NllLossBackward", [self], save: [self]) { c in
                if !c.createGraph && logits.dtype == x.dtype && logits.isContiguous && c.grad.rank == 1 && c.grad.dtype == x.dtype {
                    let dx = Tensor(uninitialized: logits.shape, dtype: x.dtype, device: logits.device)
                    if dx.count > 0 {
                        logits.device.backend.crossEntropyRowsBackward(logits, t, ignoreIndex: ignoreIndex, lse, c.grad, dx)
                    }
                    return [dx]
                }
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


/// How a loss combines per-element values.
public enum Reduction: String, Sendable {
    case mean, sum, none
    /// `kl_div`'s recommended mode: sum divided by the batch size.
    case batchMean
}

private func reduce(_ l: Tensor, _ r: Reduction) -> Tensor {
    switch r {
    case .mean: return l.mean()
    case .sum: return l.sum()
    case .none: return l
    case .batchMean: return l.sum() / Double(Swift.max(l.shape.first ?? 1, 1))
    }
}

/// Moves the class dimension (1) last and flattens: `[N, C, d…]` → `[N·d…, C]`.
private func classesLast(_ x: Tensor) -> Tensor {
    if x.rank <= 2 { return x }
    var perm = [0] + Array(2..<x.rank)
    perm.append(1)
    return x.permute(perm).reshape([-1, x.shape[1]])
}

/// Negative log-likelihood of class indices under log-probabilities `[N, C, d…]` (`nll_loss`).
/// Targets equal to `ignoreIndex` contribute nothing; `mean` divides by the summed weights
/// of the counted targets.
public func nllLoss(_ logProbs: Tensor, _ target: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100,
                    reduction: Reduction = .mean) -> Tensor {
    checked {
        try require(target.dtype == .int64 || target.dtype == .int32,
                    "nllLoss: expected class indices of dtype int64, got \(target.dtype)")
        try require(logProbs.rank >= 1 && (logProbs.rank == 1 ? target.rank == 0 : target.count * logProbs.shape[1] == logProbs.count),
                    "nllLoss: input shape \(fmt(logProbs.shape)) and target shape \(fmt(target.shape)) do not match")
    }
    let lp = logProbs.rank == 1 ? logProbs.unsqueeze(0) : classesLast(logProbs)
    let t = target.reshape([-1]).to(.int64)
    let valid = t.ne(Double(ignoreIndex))
    let safe = Tensor.where(valid, t, Tensor.zerosLike(t))
    let picked = lp.gather(1, safe.unsqueeze(1)).squeeze(1)
    var w = valid.to(lp.dtype)
    if let weight { w = w * weight.indexSelect(0, safe) }
    let losses = -(picked * w)
    switch reduction {
    case .mean: return losses.sum() / w.sum()
    case .none: return losses.reshape(target.shape)
    default: return losses.sum()
    }
}

/// Cross-entropy between logits `[N, C, d…]` and class indices `[N, d…]` or class
/// probabilities `[N, C, d…]` (`cross_entropy`), with class weights, `ignoreIndex` and
/// label smoothing, computed through a stable log-softmax.
public func crossEntropy(_ logits: Tensor, _ target: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100,
                         reduction: Reduction = .mean, labelSmoothing: Double = 0) -> Tensor {
    checked {
        try require(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy: labelSmoothing must be in [0, 1], got \(labelSmoothing)")
        try require(logits.rank >= 1, "crossEntropy: expected logits of at least 1 dimension, got shape \(fmt(logits.shape))")
    }
    if logits.rank == 2 && target.rank == 1 && target.dtype == .int64 && weight == nil && labelSmoothing == 0
        && target.device == logits.device
        && (reduction == .mean || reduction == .sum || reduction == .none) {
        // One pass per row; the common case of training.
        let (losses, counted) = logits.crossEntropyPerSample(target, ignoreIndex: ignoreIndex)
        switch reduction {
        case .mean: return losses.sum() / counted
        case .sum: return losses.sum()
        default: return losses
        }
    }
    let classDim = logits.rank == 1 ? 0 : 1
    let c = logits.shape[classDim]
    let logp = logits.logSoftmax(dim: classDim)
    if target.dtype.isFloatingPoint {
        // Class probabilities.
        checked {
            try require(target.shape == logits.shape,
                        "crossEntropy: probability target shape \(fmt(target.shape)) must equal input shape \(fmt(logits.shape))")
        }
        var t = target
        if labelSmoothing > 0 { t = t * (1 - labelSmoothing) + labelSmoothing / Double(c) }
        var prod = logp * t
        if let weight {
            var shape = [Int](repeating: 1, count: logits.rank)
            shape[classDim] = c
            prod = prod * weight.reshape(shape)
        }
        let losses = -prod.sum(dim: classDim)
        return reduce(losses, reduction == .batchMean ? .mean : reduction)
    }
    let nll = nllLoss(logp, target, weight: weight, ignoreIndex: ignoreIndex, reduction: reduction)
    if labelSmoothing == 0 { return nll }
    let lp = logp.rank == 1 ? logp.unsqueeze(0) : classesLast(logp)
    let t = target.reshape([-1]).to(.int64)
    let valid = t.ne(Double(ignoreIndex))
    var smooth = -(weight.map { lp * $0 } ?? lp).sum(dim: 1)
    smooth = Tensor.where(valid, smooth, Tensor.zerosLike(smooth))
    let smoothReduced: Tensor
    switch reduction {
    case .mean:
        if let weight {
            smoothReduced = smooth.sum() / (weight.indexSelect(0, Tensor.where(valid, t, Tensor.zerosLike(t))) * valid.to(lp.dtype)).sum()
        } else {
            smoothReduced = smooth.sum() / valid.to(lp.dtype).sum()
        }
    case .none: smoothReduced = smooth.reshape(target.shape)
    default: smoothReduced = smooth.sum()
    }
    return nll * (1 - labelSmoothing) + smoothReduced * (labelSmoothing / Double(c))
}

/// Checks that a loss's input and target broadcast together (PyTorch broadcasts them too),
/// naming the loss and both shapes when they do not.
private func checkShapes(_ input: Tensor, _ target: Tensor, _ loss: String) {
    checked {
        do { _ = try broadcastShapes(input.shape, target.shape, op: loss) } catch {
            throw EmberError.invalidArgument("\(loss): input \(fmt(input.shape)) and target \(fmt(target.shape)) cannot be broadcast together")
        }
    }
}

public func mseLoss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    checkShapes(input, target, "mseLoss")
    let d = input - target
    return reduce(d * d, reduction)
}

public func l1Loss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    checkShapes(input, target, "l1Loss")
    return reduce((input - target).abs(), reduction)
}

/// Quadratic below `beta`, linear above (`smooth_l1_loss`).
public func smoothL1Loss(_ input: Tensor, _ target: Tensor, beta: Double = 1, reduction: Reduction = .mean) -> Tensor {
    checkShapes(input, target, "smoothL1Loss")
    let d = (input - target).abs()
    if beta == 0 { return reduce(d, reduction) }
    return reduce(Tensor.where(d.lt(beta), d * d * (0.5 / beta), d - 0.5 * beta), reduction)
}

/// `huber_loss`: `smoothL1Loss · delta`.
public func huberLoss(_ input: Tensor, _ target: Tensor, delta: Double = 1, reduction: Reduction = .mean) -> Tensor {
    checkShapes(input, target, "huberLoss")
    let d = (input - target).abs()
    return reduce(Tensor.where(d.lt(delta), d * d * 0.5, (d - 0.5 * delta) * delta), reduction)
}

/// Binary cross-entropy on probabilities; logs are clamped at -100 as in PyTorch.
public func binaryCrossEntropy(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean) -> Tensor {
    checkShapes(input, target, "binaryCrossEntropy")
    var l = -(target * input.log().clamp(min: -100) + (1 - target) * (1 - input).log().clamp(min: -100))
    if let weight { l = l * weight }
    return reduce(l, reduction)
}

/// Binary cross-entropy on logits, computed stably; `posWeight` scales the positive term.
public func binaryCrossEntropyWithLogits(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil, posWeight: Tensor? = nil,
                                         reduction: Reduction = .mean) -> Tensor {
    checkShapes(input, target, "binaryCrossEntropyWithLogits")
    // log(1 + exp(-|x|)) + max(-x, 0) = -log σ(x)
    let logSigNeg = (-input.abs()).exp().log1p() + (-input).clamp(min: 0)
    var l: Tensor
    if let posWeight {
        let lw = (posWeight - 1) * target + 1
        l = (1 - target) * input + lw * logSigNeg
    } else {
        l = (1 - target) * input + logSigNeg
    }
    if let weight { l = l * weight }
    return reduce(l, reduction)
}

/// Kullback–Leibler divergence with `input` as log-probabilities (`kl_div`).
public func klDiv(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean, logTarget: Bool = false) -> Tensor {
    checkShapes(input, target, "klDiv")
    let l: Tensor
    if logTarget {
        l = target.exp() * (target - input)
    } else {
        // xlogy: 0 where target == 0.
        let safe = Tensor.where(target.gt(0), target, Tensor.onesLike(target))
        l = Tensor.where(target.gt(0), target * (safe.log() - input), Tensor.zerosLike(target) - 0 * input)
    }
    return reduce(l, reduction)
}

// MARK: - margin and likelihood losses (`torch.nn.functional`), as PyTorch computes them

/// `max(0, −y·(a − b) + margin)`.
public func marginRankingLoss(_ a: Tensor, _ b: Tensor, _ target: Tensor, margin: Double = 0, reduction: Reduction = .mean) -> Tensor {
    reduce((-target * (a - b) + margin).clamp(min: 0), reduction)
}

/// `x` where `y = 1`, `max(0, margin − x)` where `y = −1`.
public func hingeEmbeddingLoss(_ x: Tensor, _ target: Tensor, margin: Double = 1, reduction: Reduction = .mean) -> Tensor {
    let zeros = Tensor.zerosLike(x)
    let marginPart = Tensor.where(target.ne(1), (-x + margin).clamp(min: 0), zeros)
    let selfPart = Tensor.where(target.ne(-1), x, zeros)
    return reduce(marginPart + selfPart, reduction)
}

/// `log(1 + exp(−y·x))`.
public func softMarginLoss(_ x: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    reduce((-x * target).exp().log1p(), reduction)
}

/// The mean over classes of the binary cross-entropies of `sigmoid(x)`, per sample.
public func multilabelSoftMarginLoss(_ x: Tensor, _ target: Tensor, weight: Tensor? = nil, reduction: Reduction = .mean) -> Tensor {
    var l = -(target * x.logsigmoid() + (1 - target) * (-x).logsigmoid())
    if let weight { l = l * weight }
    let c = x.rank == 0 ? 1 : x.shape[x.rank - 1]
    return reduce(l.sum(dim: x.rank == 0 ? 0 : x.rank - 1) / Double(c), reduction)
}

/// `1 − cos(a, b)` where `y = 1`, `max(0, cos(a, b) − margin)` where `y = −1`.
public func cosineEmbeddingLoss(_ a: Tensor, _ b: Tensor, _ target: Tensor, margin: Double = 0, reduction: Reduction = .mean) -> Tensor {
    let d = a.rank == 2 ? 1 : 0
    let eps = 1e-12
    let prod = (a * b).sum(dim: d)
    let denom = (((a * a).sum(dim: d) + eps) * ((b * b).sum(dim: d) + eps)).sqrt()
    let cos = prod / denom
    let zeros = Tensor.zerosLike(cos)
    return reduce(Tensor.where(target.eq(1), 1 - cos, zeros) + Tensor.where(target.eq(-1), (cos - margin).clamp(min: 0), zeros), reduction)
}

/// The negative log-likelihood of a Poisson distribution with rate `exp(x)` (`logInput`)
/// or `x`; `full` adds Stirling's approximation of `log(target!)`.
public func poissonNLLLoss(_ x: Tensor, _ target: Tensor, logInput: Bool = true, full: Bool = false, eps: Double = 1e-8,
                           reduction: Reduction = .mean) -> Tensor {
    var l = logInput ? x.exp() - target * x : x - target * (x + eps).log()
    if full {
        let safe = Tensor.where(target.gt(1), target, Tensor.onesLike(target))
        let stirling = safe * safe.log() - safe + (safe * (2 * Double.pi)).log() * 0.5
        l = l + Tensor.where(target.gt(1), stirling, Tensor.zerosLike(stirling))
    }
    return reduce(l, reduction)
}

/// The negative log-likelihood of a Gaussian: `(log(var) + (x − target)² / var) / 2`, the
/// variance raised to `eps` (its gradient unclamped, as PyTorch's in-place clamp).
public func gaussianNLLLoss(_ x: Tensor, _ target: Tensor, _ variance: Tensor, full: Bool = false, eps: Double = 1e-6,
                            reduction: Reduction = .mean) -> Tensor {
    var v = variance
    if v.rank == x.rank - 1 && Array(x.shape.dropLast()) == v.shape { v = v.unsqueeze(-1) }
    checked { try require(v.layout.broadcast(to: x.shape) != nil, "gaussian_nll_loss: var is of incorrect size \(fmt(variance.shape)) for input \(fmt(x.shape))") }
    v = v + withNoGrad { v.clamp(min: eps) - v }
    var l = (v.log() + (x - target).square() / v) * 0.5
    if full { l = l + 0.9189385332046727 }  // log(2π) / 2
    return reduce(l, reduction)
}

/// `max(d(a, p) − d(a, n) + margin, 0)` with pairwise p-norm distances; `swap` uses the
/// smaller of `d(a, n)` and `d(p, n)`.
public func tripletMarginLoss(_ anchor: Tensor, _ positive: Tensor, _ negative: Tensor, margin: Double = 1, p: Double = 2,
                              eps: Double = 1e-6, swap: Bool = false, reduction: Reduction = .mean) -> Tensor {
    let dp = pairwiseDistance(anchor, positive, p: p, eps: eps)
    var dn = pairwiseDistance(anchor, negative, p: p, eps: eps)
    if swap { dn = Tensor.minimum(dn, pairwiseDistance(positive, negative, p: p, eps: eps)) }
    return reduce((dp - dn + margin).clamp(min: 0), reduction)
}
