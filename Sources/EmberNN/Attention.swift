import EmberCore

/// `softmax(q·kᵀ·scale + mask)·v` (`scaled_dot_product_attention`). `attnMask` is either
/// bool (true = attend) or additive float; `isCausal` masks future positions.
public func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, attnMask: Tensor? = nil,
                                      isCausal: Bool = false, scale: Double? = nil) -> Tensor {
    attention(q, k, v, attnMask: attnMask, isCausal: isCausal, scale: scale).output
}

func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, attnMask: Tensor?, isCausal: Bool, scale: Double?)
    -> (output: Tensor, weights: Tensor) {
    Ember.check(q.rank >= 2 && k.rank >= 2 && v.rank >= 2 && q.shape.last == k.shape.last && k.shape[k.rank - 2] == v.shape[v.rank - 2],
                "scaledDotProductAttention: query \(q.shape), key \(k.shape) and value \(v.shape) do not fit (expected [..., L, E], [..., S, E], [..., S, Ev])")
    let (l, s) = (q.shape[q.rank - 2], k.shape[k.rank - 2])
    let sc = scale ?? 1 / Double(q.shape[q.rank - 1]).squareRoot()
    var scores = q.matmul(k.mT) * sc
    if isCausal {
        let causal = Tensor.arange(l, device: q.device).unsqueeze(1).ge(Tensor.arange(s, device: q.device).unsqueeze(0))
        scores = scores.maskedFill(causal.logicalNot(), -Double.infinity)
    }
    if let m = attnMask {
        scores = m.dtype == .bool ? scores.maskedFill(m.logicalNot(), -Double.infinity) : scores + m
    }
    let w = scores.softmax(dim: -1)
    return (w.matmul(v), w)
}

/// Multi-head attention (`nn.MultiheadAttention`) with PyTorch's parameters: `in_proj_weight
/// [3E, E]` (xavier-uniform), `in_proj_bias` (zeros) and `out_proj` (a Linear with zero bias).
public final class MultiheadAttention: Module {
    @Parameter public var inProjWeight: Tensor
    @Parameter public var inProjBias: Tensor?
    public let outProj: Linear
    public let embedDim: Int, numHeads: Int, batchFirst: Bool

    public init(embedDim: Int, numHeads: Int, bias: Bool = true, batchFirst: Bool = false) {
        Ember.check(embedDim % numHeads == 0, "MultiheadAttention: embed_dim (\(embedDim)) must be divisible by num_heads (\(numHeads))")
        self.embedDim = embedDim
        self.numHeads = numHeads
        self.batchFirst = batchFirst
        inProjWeight = Init.xavierUniform(Tensor.empty([3 * embedDim, embedDim]))
        inProjBias = bias ? Tensor.zeros([3 * embedDim]) : nil
        outProj = Linear(embedDim, embedDim, bias: bias)
        if let b = outProj.bias { Init.zeros(b) }
        super.init()
    }

    /// Attends `query [L, N, E]` to `key`/`value [S, N, E]` (`[N, L, E]` with `batchFirst`).
    /// Masks follow `nn.MultiheadAttention`: a bool `attnMask` `[L, S]` or `[N·H, L, S]` is
    /// true where a query may **not** attend to a key (PyTorch's causal mask is
    /// `triu(ones(L, S), 1)`); a float one is added to the scores. `keyPaddingMask [N, S]` is
    /// true where a key is padding. (`scaledDotProductAttention` reads a bool mask the other
    /// way round, true = may attend, as PyTorch's does.) Returns the output and, with
    /// `needWeights`, the attention weights `[N, L, S]` averaged over heads.
    public func forward(_ query: Tensor, _ key: Tensor, _ value: Tensor, keyPaddingMask: Tensor? = nil,
                        attnMask: Tensor? = nil, needWeights: Bool = true, isCausal: Bool = false) -> (output: Tensor, weights: Tensor?) {
        Ember.check(query.rank == 3 && key.rank == 3 && value.rank == 3 && query.shape[2] == embedDim && key.shape[2] == embedDim
                        && value.shape[2] == embedDim && key.shape == value.shape
                        && query.shape[batchFirst ? 0 : 1] == key.shape[batchFirst ? 0 : 1],
                    "MultiheadAttention: query \(query.shape), key \(key.shape) and value \(value.shape) do not fit embed_dim \(embedDim) (expected \(batchFirst ? "[N, L, E], [N, S, E]" : "[L, N, E], [S, N, E]"), batchFirst: \(batchFirst))")
        var (q, k, v) = batchFirst ? (query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)) : (query, key, value)
        let (l, n, e) = (q.shape[0], q.shape[1], q.shape[2]), s = k.shape[0]
        let h = numHeads, d = e / h
        let w = inProjWeight.chunk(3, dim: 0), b = inProjBias?.chunk(3, dim: 0)
        q = linear(q, w[0], b?[0]); k = linear(k, w[1], b?[1]); v = linear(v, w[2], b?[2])
        // [L, N, E] → [N, H, L, d]
        func heads(_ t: Tensor, _ len: Int) -> Tensor { t.reshape([len, n, h, d]).permute(1, 2, 0, 3) }
        var mask: Tensor? = nil
        if let m = attnMask {
            Ember.check(m.shape == [l, s] || m.shape == [n * h, l, s],
                        "MultiheadAttention: attn_mask of shape \(m.shape) should be [\(l), \(s)] or [\(n * h), \(l), \(s)] (L, S or N·num_heads, L, S)")
            let additive = m.dtype == .bool ? Tensor.where(m, -Double.infinity, 0.0, like: q) : m
            mask = m.rank == 3 ? additive.reshape([n, h, l, s]) : additive
        }
        if let kp = keyPaddingMask {
            let add = Tensor.where(kp, -Double.infinity, 0.0, like: q).reshape([n, 1, 1, s])
            mask = mask.map { $0 + add } ?? add
        }
        let (o, weights) = attention(heads(q, l), heads(k, s), heads(v, s), attnMask: mask, isCausal: isCausal, scale: nil)
        var out = outProj(o.permute(2, 0, 1, 3).reshape([l, n, e]))
        if batchFirst { out = out.transpose(0, 1) }
        return (out, needWeights ? weights.mean(dim: 1) : nil)
    }
}
