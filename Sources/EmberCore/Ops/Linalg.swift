extension Tensor {
    /// Matrix product with PyTorch's rules: 1-D·1-D is a dot product; a 1-D operand gains
    /// (and then loses) a dimension; batch dimensions broadcast.
    public func matmul(_ other: Tensor) -> Tensor {
        let a = self, b = other
        checked {
            try require(a.rank >= 1 && b.rank >= 1,
                        "matmul: both arguments to matmul need to be at least 1D, but they are \(a.rank)D and \(b.rank)D")
            try require(a.device == b.device, "matmul: expected both tensors on the same device, found \(a.device) and \(b.device)")
            let k1 = a.shape[a.rank - 1], k2 = b.rank == 1 ? b.shape[0] : b.shape[b.rank - 2]
            try require(k1 == k2,
                        "matmul: mat1 and mat2 shapes cannot be multiplied (\(fmt(a.shape)) and \(fmt(b.shape)); inner dimensions \(k1) and \(k2) differ)")
        }
        if a.rank == 1 && b.rank == 1 { return (a.unsqueeze(0).matmul(b.unsqueeze(1))).reshape([]) }
        if a.rank == 1 { return a.unsqueeze(0).matmul(b).squeeze(-2) }
        if b.rank == 1 { return a.matmul(b.unsqueeze(1)).squeeze(-1) }
        if b.rank == 2 && a.rank > 2 {
            // Fold the batch into rows: one large GEMM instead of many small ones.
            let lead = Array(a.shape.dropLast())
            return a.reshape([lead.reduce(1, *), a.shape[a.rank - 1]]).matmul(b).reshape(lead + [b.shape[1]])
        }
        return Tensor.batchedMatmul(a, b)
    }

    /// Matrix product of 2-D tensors (`mm`).
    public func mm(_ other: Tensor) -> Tensor {
        checked {
            try require(rank == 2 && other.rank == 2,
                        "mm: expected 2D tensors, got \(rank)D (shape \(fmt(shape))) and \(other.rank)D (shape \(fmt(other.shape)))")
        }
        return matmul(other)
    }

    /// Batched matrix product of 3-D tensors with equal batch sizes (`bmm`).
    public func bmm(_ other: Tensor) -> Tensor {
        checked {
            try require(rank == 3 && other.rank == 3,
                        "bmm: expected 3D tensors, got shapes \(fmt(shape)) and \(fmt(other.shape))")
            try require(shape[0] == other.shape[0],
                        "bmm: batch sizes must match, got shapes \(fmt(shape)) and \(fmt(other.shape))")
        }
        return matmul(other)
    }

    /// `[..., M, K] · [..., K, N]` with broadcast batch dimensions.
    static func batchedMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        let M = a.shape[a.rank - 2], K = a.shape[a.rank - 1], N = b.shape[b.rank - 1]
        let batch = checked { try broadcastShapes(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), op: "matmul") }
        let B = batch.reduce(1, *)
        let dtype = DType.promote(a.dtype, b.dtype)
        let compute = dtype.computeType
        let a3 = a.cast(compute).broadcastView(batch + [M, K]).flattenBatch(B)
        let b3 = b.cast(compute).broadcastView(batch + [K, N]).flattenBatch(B)
        let out = Tensor(uninitialized: [B, M, N], dtype: compute, device: a.device)
        if M * N > 0 {
            if K == 0 { a.device.backend.fill(out, 0) } else { a.device.backend.matmul(a3, b3, out) }
        }
        let result = Tensor(storage: out.storage, layout: Layout(contiguous: batch + [M, N]), dtype: compute).cast(dtype)
        if dtype.isFloatingPoint && anyNeedsGrad(a, b) {
            // For a transposed matrix b (a linear layer's wᵀ) the gradient is computed as
            // (gᵀ·a)ᵀ: laid out like b, so that wᵀ's backward gives w a contiguous gradient.
            let bTransposed = a.rank == 2 && b.rank == 2 && b.strides[0] == 1 && b.strides[1] == b.shape[0] && b.shape[1] > 1
            record(result, "MmBackward", [a, b], save: [a, b]) { c in
                [c.needsGrad(0) ? c.grad.matmul(b.mT) : nil,
                 c.needsGrad(1) ? (bTransposed && !c.createGraph ? c.grad.mT.matmul(a).mT : a.mT.matmul(c.grad)) : nil]
            }
        }
        return result
    }

    /// A 3-D `[B, rows, cols]` view of a tensor whose batch dims can be merged, else a copy.
    private func flattenBatch(_ B: Int) -> Tensor {
        let target = [B, shape[rank - 2], shape[rank - 1]]
        if let st = layout.viewStrides(target) {
            return Tensor(storage: storage, layout: Layout(shape: target, strides: st, offset: layout.offset), dtype: dtype)
        }
        let c = clone()
        return Tensor(storage: c.storage, layout: Layout(contiguous: target), dtype: dtype)
    }
}

/// `x · wᵀ + b` (`torch.nn.functional.linear`).
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    checked {
        try require(weight.rank == 2 || weight.rank == 1, "linear: weight must be 1-D or 2-D, got shape \(fmt(weight.shape))")
        try require(x.shape.last == weight.shape.last,
                    "linear: input shape \(fmt(x.shape)) and weight shape \(fmt(weight.shape)) cannot be multiplied (in_features \(x.shape.last ?? 0) vs \(weight.shape.last ?? 0))")
    }
    // A 1-D weight is one output feature without its dimension, as in PyTorch.
    let y = x.matmul(weight.rank == 1 ? weight : weight.t())
    return bias.map { y + $0 } ?? y
}

extension Tensor {
    /// `x·Wᵀ + b`, optionally followed by ReLU, as one op (the backend's `linear`: on the CPU
    /// the bias fills the output, the product accumulates onto it, and ReLU runs in place).
    /// Backward saves only the output (the ReLU mask) and the operands. Applies to 2-D
    /// float32/float64 operands on one device; anything else takes the composed ops.
    public static func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, relu: Bool) -> Tensor {
        let d = x.dtype, device = x.device
        let fusable = x.rank == 2 && weight.rank == 2 && (d == .float32 || d == .float64) && weight.dtype == d
            && weight.device == device && x.shape[1] == weight.shape[1]
            && (bias.map { $0.dtype == d && $0.rank == 1 && $0.device == device && $0.count == weight.shape[0] } ?? true)
        guard fusable else {
            let y = x.matmul(weight.t())
            let z = bias.map { y + $0 } ?? y
            return relu ? z.relu() : z
        }
        let out = Tensor(uninitialized: [x.shape[0], weight.shape[0]], dtype: d, device: device)
        if out.count > 0 {
            device.backend.linear(x.contiguous(), weight.contiguous(), bias?.contiguous(), relu: relu, out)
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
