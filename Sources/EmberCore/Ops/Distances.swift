// Distances and similarities of `torch.nn.functional` and `torch.cdist`: normalize,
// cosine_similarity, pairwise_distance, pdist, cdist. Compositions of norms, so they run and
// differentiate on every device.

/// `x / max(‖x‖_p, eps)` along `dim`.
public func normalize(_ x: Tensor, p: Double = 2, dim: Int = 1, eps: Double = 1e-12) -> Tensor {
    x / Linalg.vectorNorm(x, ord: p, dim: [dim], keepdim: true).clamp(min: eps)
}

/// The cosine of the angle between `a` and `b` along `dim`: each divided by its norm
/// (at least `eps`) first, as PyTorch does.
public func cosineSimilarity(_ a: Tensor, _ b: Tensor, dim: Int = 1, eps: Double = 1e-8) -> Tensor {
    let shape = checked { try broadcastShapes(a.shape, b.shape, op: "cosine_similarity") }
    let x = a.expand(shape), y = b.expand(shape)
    /// The norm with its value raised to eps and its gradient unclamped (PyTorch clamps in
    /// place under no_grad).
    func norm(_ t: Tensor) -> Tensor {
        let n = Linalg.vectorNorm(t, ord: 2, dim: [dim], keepdim: true)
        return n + withNoGrad { n.clamp(min: eps) - n }
    }
    return ((x / norm(x)) * (y / norm(y))).sum(dim: dim)
}

/// `‖a − b + eps‖_p` over the last dimension.
public func pairwiseDistance(_ a: Tensor, _ b: Tensor, p: Double = 2, eps: Double = 1e-6, keepdim: Bool = false) -> Tensor {
    let r = Swift.max(a.rank, b.rank)
    let diff = a - b + eps
    if r == 0 { return Linalg.vectorNorm(diff, ord: p) }
    return Linalg.vectorNorm(diff, ord: p, dim: [r - 1], keepdim: keepdim)
}

/// The p-norm distances between the rows of a 2-D tensor, for every pair i < j in
/// row-major order.
public func pdist(_ x: Tensor, p: Double = 2) -> Tensor {
    checked { try require(x.rank == 2, "pdist only supports 2D tensors, got: \(x.rank)D") }
    let n = x.shape[0]
    var first: [Int] = [], second: [Int] = []
    for i in 0..<n { for j in (i + 1)..<Swift.max(n, i + 1) { first.append(i); second.append(j) } }
    if first.isEmpty { return Tensor.zeros([0], dtype: x.dtype, device: x.device) }
    let d = x.indexSelect(0, x.indexTensor(first)) - x.indexSelect(0, x.indexTensor(second))
    return Linalg.vectorNorm(d, ord: p, dim: [1])
}

extension Tensor {
    /// The p-norm distance between every row of `a [.., P, M]` and every row of
    /// `b [.., R, M]`: `[.., P, R]`.
    public static func cdist(_ a: Tensor, _ b: Tensor, p: Double = 2) -> Tensor {
        checked {
            try require(a.rank >= 2 && b.rank >= 2 && a.shape.last == b.shape.last,
                        "cdist: X1 and X2 must have the same number of columns. X1: \(a.shape.last ?? 0) X2: \(b.shape.last ?? 0)")
        }
        let pRows = a.shape[a.rank - 2], rRows = b.shape[b.rank - 2]
        if p == 2 && (pRows > 25 || rRows > 25) {
            // Euclidean distances of many rows as PyTorch computes them: ‖a‖² + ‖b‖² − 2·a·bᵀ
            // (a matrix product instead of a [P, R, M] difference), clamped at 0.
            let a2 = (a * a).sum(dim: -1, keepdim: true), b2 = (b * b).sum(dim: -1, keepdim: true)
            let d2 = a2 + b2.mT - 2 * a.matmul(b.mT)
            return d2.clamp(min: 0).sqrt()
        }
        let diff = a.unsqueeze(-2) - b.unsqueeze(-3)
        return Linalg.vectorNorm(diff, ord: p, dim: [diff.rank - 1])
    }
}
