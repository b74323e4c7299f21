extension Tensor {
    private func checkIndex(_ index: Tensor, _ op: String) throws {
        // An empty index of any integral type indexes nothing (PyTorch accepts it too).
        try require(index.dtype == .int64 || index.dtype == .int32 || (index.count == 0 && !index.dtype.isFloatingPoint),
                    "\(op): expected index to be an integer tensor (int64), but got \(index.dtype)")
    }

    /// The index as the backends take it: contiguous int64 on `self`'s device (the backend
    /// checks the values, counting negative ones from the end).
    private func indexOperand(_ index: Tensor, _ op: String) -> Tensor {
        checked {
            try require(index.device == device,
                        "\(op): expected index on the same device as self (\(device)), but found it on \(index.device)")
        }
        return index.cast(.int64).contiguous()
    }

    /// Values along `dim` at positions `index` (`torch.gather`); `index` has the output's
    /// shape and is no larger than `self` in the other dimensions.
    public func gather(_ dim: Int, _ index: Tensor) -> Tensor {
        if rank == 0 {
            // A 0-dim tensor gathers as one element of one dimension.
            _ = checked { try normalizeDim(dim, 0, op: "gather") }
            return reshape([1]).gather(0, index.rank == 0 ? index.reshape([1]) : index).reshape(index.shape)
        }
        if index.count == 0 {
            checked { try checkIndex(index, "gather") }
            return Tensor.zeros(index.shape, dtype: dtype, device: device)
        }
        let d = checked { () throws -> Int in
            try checkIndex(index, "gather")
            let d = try normalizeDim(dim, rank, op: "gather")
            try require(index.rank == rank, "gather: index tensor must have the same number of dimensions as input tensor (index \(fmt(index.shape)), input \(fmt(shape)))")
            for k in 0..<rank where k != d {
                try require(index.shape[k] <= shape[k],
                            "gather: size does not match at dimension \(k) expected index \(fmt(index.shape)) to be no larger than self \(fmt(shape)) apart from dimension \(d)")
            }
            return d
        }
        let idx = indexOperand(index, "gather")
        let out = Tensor(uninitialized: idx.shape, dtype: dtype, device: device)
        device.backend.gather(self, dim: d, idx, out)
        if anyNeedsGrad(self) {
            let inShape = shape
            record(out, "GatherBackward", [self]) { c in
                [Tensor.zeros(inShape, dtype: c.grad.dtype, device: c.grad.device).scatterAdd(d, idx, c.grad)]
            }
        }
        return out
    }

    private func scatterCheck(_ dim: Int, _ index: Tensor, _ src: Tensor?, _ op: String) -> Int {
        checked {
            try checkIndex(index, op)
            let d = try normalizeDim(dim, rank, op: op)
            try require(index.rank == rank, "\(op): index tensor must have the same number of dimensions as self (index \(fmt(index.shape)), self \(fmt(shape)))")
            for k in 0..<rank where k != d {
                try require(index.shape[k] <= shape[k], "\(op): expected index \(fmt(index.shape)) to be no larger than self \(fmt(shape)) apart from dimension \(d)")
            }
            if let src {
                for k in 0..<rank {
                    try require(index.shape[k] <= src.shape[k], "\(op): expected index \(fmt(index.shape)) to be no larger than src \(fmt(src.shape))")
                }
            }
            return d
        }
    }

    /// A copy of `self` with `src` values written at `index` along `dim` (`scatter`).
    public func scatter(_ dim: Int, _ index: Tensor, _ src: Tensor) -> Tensor {
        if rank == 0 { return reshape([1]).scatter(dim, index.reshape([-1]), src.reshape([-1])).reshape([]) }
        let d = scatterCheck(dim, index, src, "scatter")
        let idx = indexOperand(index, "scatter")
        let out = withNoGrad { clone() }
        device.backend.scatter(out, dim: d, idx, src.cast(dtype), accumulate: false)
        if anyNeedsGrad(self, src) {
            record(out, "ScatterBackward", [self, src]) { c in
                [c.needsGrad(0) ? c.grad.scatter(d, idx, 0) : nil,
                 c.needsGrad(1) ? c.grad.gather(d, idx) : nil]
            }
        }
        return out
    }

    /// A copy of `self` with `value` written at `index` along `dim`.
    public func scatter(_ dim: Int, _ index: Tensor, _ value: Double) -> Tensor {
        scatter(dim, index, Tensor.full(index.shape, value, dtype: dtype, device: device))
    }

    /// A copy of `self` with `src` added at `index` along `dim` (`scatter_add`).
    public func scatterAdd(_ dim: Int, _ index: Tensor, _ src: Tensor) -> Tensor {
        if rank == 0 { return reshape([1]).scatterAdd(dim, index.reshape([-1]), src.reshape([-1])).reshape([]) }
        let d = scatterCheck(dim, index, src, "scatterAdd")
        let idx = indexOperand(index, "scatterAdd")
        // Half types add in float32 and round once, on every device (the CPU kernels take no
        // 16-bit floats; the GPU would otherwise round after every add).
        let acc = dtype.computeType
        let out = withNoGrad { () -> Tensor in
            let o = acc == dtype ? clone() : cast(acc)
            device.backend.scatter(o, dim: d, idx, src.cast(acc), accumulate: true)
            return o.cast(dtype)
        }
        if anyNeedsGrad(self, src) {
            record(out, "ScatterAddBackward", [self, src]) { c in
                [c.grad, c.needsGrad(1) ? c.grad.gather(d, idx) : nil]
            }
        }
        return out
    }

    /// Slices along `dim` picked by a 1-D integer `index` (`index_select`).
    public func indexSelect(_ dim: Int, _ index: Tensor) -> Tensor {
        if rank == 0 {
            checked { try require(index.count == 1, "indexSelect: index of a 0-dim tensor must have one element, got \(fmt(index.shape))") }
            _ = checked { try normalizeDim(dim, 0, op: "indexSelect") }
            return reshape([1]).indexSelect(0, index.reshape([1])).reshape([])
        }
        let d = checked { () throws -> Int in
            try checkIndex(index, "indexSelect")
            try require(index.rank <= 1, "indexSelect: index must be 1-D, got shape \(fmt(index.shape))")
            return try normalizeDim(dim, Swift.max(rank, 1), op: "indexSelect")
        }
        let idx = indexOperand(index.reshape([-1]), "indexSelect")
        var outShape = shape
        outShape[d] = idx.count
        let out = Tensor(uninitialized: outShape, dtype: dtype, device: device)
        device.backend.indexSelect(contiguous(), dim: d, idx, out)
        if anyNeedsGrad(self) {
            let inShape = shape
            record(out, "IndexSelectBackward", [self]) { c in
                [Tensor.zeros(inShape, dtype: c.grad.dtype, device: c.grad.device).indexAdd(d, idx, c.grad)]
            }
        }
        return out
    }

    /// A copy of `self` with slices of `src` added at `index` along `dim` (`index_add`).
    public func indexAdd(_ dim: Int, _ index: Tensor, _ src: Tensor) -> Tensor {
        if rank == 0 { return reshape([1]).indexAdd(dim, index.reshape([-1]), src.reshape([-1])).reshape([]) }
        let d = checked { try normalizeDim(dim, rank, op: "indexAdd") }
        let idx = indexOperand(index.reshape([-1]), "indexAdd")
        checked {
            var expected = shape
            expected[d] = idx.count
            try require(src.shape == expected, "indexAdd: source shape \(fmt(src.shape)) must be \(fmt(expected))")
        }
        let acc = dtype.computeType  // half types add in float32, as in scatterAdd
        let out = withNoGrad { () -> Tensor in
            let o = acc == dtype ? clone() : cast(acc)
            device.backend.indexAdd(o, dim: d, idx, src.cast(acc).contiguous())
            return o.cast(dtype)
        }
        if anyNeedsGrad(self, src) {
            record(out, "IndexAddBackward", [self, src]) { c in
                [c.grad, c.needsGrad(1) ? c.grad.indexSelect(d, idx) : nil]
            }
        }
        return out
    }

    /// `value` where `mask` is true, else `self` (`masked_fill`); mask broadcasts.
    public func maskedFill(_ mask: Tensor, _ value: Double) -> Tensor {
        checked { try require(mask.dtype == .bool, "maskedFill: expected mask of dtype bool, got \(mask.dtype)") }
        return Tensor.where(mask, Tensor.full([], value, dtype: dtype, device: device), self)
    }

    /// The elements where `mask` (broadcast with `self`) is true, as a 1-D tensor.
    public func maskedSelect(_ mask: Tensor) -> Tensor {
        let shape = checked { () throws -> [Int] in
            try require(mask.dtype == .bool, "maskedSelect: expected mask of dtype bool, got \(mask.dtype)")
            try require(mask.device == device, "maskedSelect: expected all tensors to be on the same device, but found \(device) and mask on \(mask.device)")
            return try broadcastShapes(self.shape, mask.shape, op: "maskedSelect")
        }
        let x = expand(shape)
        let m = mask.broadcastView(shape)
        let out = device.backend.maskedSelect(x.broadcastView(shape), m)
        if anyNeedsGrad(self) {
            let n = shape.reduce(1, *)
            let positions = device.backend.maskedSelect(Tensor.arange(n, device: device).reshape(shape), m)
            record(out, "MaskedSelectBackward", [x]) { c in
                [Tensor.zeros([n], dtype: c.grad.dtype, device: c.grad.device).indexAdd(0, positions, c.grad).reshape(shape)]
            }
        }
        return out
    }

    /// One-hot encoding of an integer tensor (`one_hot`): shape `self.shape + [numClasses]`, int64.
    public func oneHot(numClasses: Int = -1) -> Tensor {
        checked { try require(dtype == .int64 || dtype == .int32, "oneHot: expected an integer tensor, got \(dtype)") }
        let n = numClasses >= 0 ? numClasses : Int(max().item()) + 1
        checked {
            if count > 0 {
                try require(min().item() >= 0, "oneHot: class values must be non-negative")
                try require(Int(max().item()) < n, "oneHot: class values must be smaller than numClasses (\(n))")
            }
        }
        return unsqueeze(-1).eq(Tensor.arange(n, device: device)).to(.int64)
    }
}

/// Rows of `weight` picked by integer `indices` (`torch.nn.functional.embedding`): shape
/// `indices.shape + [embeddingDim]`. Rows at `paddingIndex` get no gradient.
public func embedding(_ indices: Tensor, _ weight: Tensor, paddingIndex: Int? = nil) -> Tensor {
    checked { try require(weight.rank == 2, "embedding: weight must be 2-D, got shape \(fmt(weight.shape))") }
    var w = weight
    if let p = paddingIndex, weight.requiresGrad {
        let pi = p < 0 ? p + weight.shape[0] : p
        w = weight.registeringGradMask(row: pi)
    }
    return w.indexSelect(0, indices.reshape([-1])).reshape(indices.shape + [weight.shape[1]])
}

extension Tensor {
    /// Identity whose backward zeroes gradient row `row` (embedding's padding index).
    fileprivate func registeringGradMask(row: Int) -> Tensor {
        let n = shape[0]
        let keep = Tensor.arange(n, device: device).ne(Double(row)).unsqueeze(1)
        return try! CustomFunction.apply([self], name: "EmbeddingPaddingBackward", forward: { $0[0] },
                                    backward: { g, _, _ in [g * keep] })
    }
}
