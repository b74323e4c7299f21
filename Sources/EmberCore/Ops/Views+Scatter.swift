// Diagonals (diag, diag_embed, diagflat, block_diag), the out-of-place scatters of PyTorch
// (index_fill, index_copy, masked_scatter, select/slice/diagonal_scatter, take), nonzero,
// the split family (tensor_split, hsplit, vsplit, dsplit), unflatten, repeat_interleave,
// diff and meshgrid: compositions of views, gather/scatter, cat and where.

extension Tensor {
    // MARK: diagonals

    /// Zeros of `shape` with `src` on the diagonal `offset` of the `dim1`/`dim2` planes
    /// (src's last dimension runs along the diagonal); differentiable in `src`.
    static func placeDiagonal(_ src: Tensor, shape: [Int], offset: Int, dim1: Int, dim2: Int) -> Tensor {
        let z = Tensor.zeros(shape, dtype: src.dtype, device: src.device)
        withNoGrad { _ = z.diagonal(offset: offset, dim1: dim1, dim2: dim2).copy_(src) }
        if src.dtype.isFloatingPoint && anyNeedsGrad(src) {
            record(z, "DiagEmbedBackward", [src]) { c in [c.grad.diagonal(offset: offset, dim1: dim1, dim2: dim2)] }
        }
        return z
    }

    /// A tensor whose `dim1`/`dim2` planes hold the last dimension of `self` on diagonal
    /// `offset` (`torch.diag_embed`).
    public func diagEmbed(offset: Int = 0, dim1: Int = -2, dim2: Int = -1) -> Tensor {
        let outRank = rank + 1
        let (a, b) = checked { () throws -> (Int, Int) in
            let a = try normalizeDim(dim1, outRank, op: "diag_embed"), b = try normalizeDim(dim2, outRank, op: "diag_embed")
            try require(a != b, "diag_embed: diagonal dimensions cannot be identical \(dim1), \(dim2)")
            return (a, b)
        }
        let n = (shape.last ?? 1) + Swift.abs(offset)
        var out = Array(shape.dropLast())
        for d in [a, b].sorted() { out.insert(n, at: d) }
        return Tensor.placeDiagonal(rank == 0 ? reshape([1]) : self, shape: out, offset: offset, dim1: a, dim2: b)
    }
    /// 1-D: a matrix with self on diagonal `diagonal`; 2-D: that diagonal, copied.
    public func diag(diagonal k: Int = 0) -> Tensor {
        checked { try require(rank == 1 || rank == 2, "diag(): Supports 1D or 2D tensors. Got \(rank)D") }
        return rank == 1 ? diagEmbed(offset: k, dim1: 0, dim2: 1) : diagonal(offset: k).contiguous()
    }
    /// `diag` of the flattened tensor.
    public func diagflat(offset: Int = 0) -> Tensor { flatten().diagEmbed(offset: offset, dim1: 0, dim2: 1) }

    /// The tensors (0-, 1- or 2-D) as blocks on the diagonal of one matrix.
    public static func blockDiag(_ tensors: [Tensor]) -> Tensor {
        let blocks = tensors.map { t -> Tensor in
            checked { try require(t.rank <= 2, "block_diag: Input tensors must have 2 or fewer dimensions. Input has \(t.rank) dimensions") }
            return t.rank == 0 ? t.reshape([1, 1]) : (t.rank == 1 ? t.unsqueeze(0) : t)
        }
        guard let first = blocks.first else { return Tensor.zeros([0, 0]) }
        let dtype = blocks.dropFirst().reduce(first.dtype) { DType.promote($0, $1.dtype) }
        let width = blocks.reduce(0) { $0 + $1.shape[1] }
        var left = 0
        var rows: [Tensor] = []
        for b in blocks {
            let r = b.shape[0], c = b.shape[1]
            rows.append(cat([Tensor.zeros([r, left], dtype: dtype, device: b.device), b.to(dtype),
                             Tensor.zeros([r, width - left - c], dtype: dtype, device: b.device)], dim: 1))
            left += c
        }
        return cat(rows, dim: 0)
    }

    /// Self with `src` written on the diagonal (`torch.diagonal_scatter`).
    public func diagonalScatter(_ src: Tensor, offset: Int = 0, dim1: Int = 0, dim2: Int = 1) -> Tensor {
        let (a, b) = checked { (try normalizeDim(dim1, rank, op: "diagonal_scatter"), try normalizeDim(dim2, rank, op: "diagonal_scatter")) }
        let target = withNoGrad { diagonal(offset: offset, dim1: a, dim2: b) }
        checked {
            try require(src.shape == target.shape,
                        "diagonal_scatter: expected src to have a size equal to the slice of self. src size = \(fmt(src.shape)), slice size = \(fmt(target.shape))")
        }
        let mask = Tensor.placeDiagonal(Tensor.ones(src.shape, dtype: .float32, device: device), shape: shape,
                                        offset: offset, dim1: a, dim2: b).ne(0)
        return Tensor.where(mask, Tensor.placeDiagonal(src.to(dtype), shape: shape, offset: offset, dim1: a, dim2: b), self)
    }

    // MARK: scatters with PyTorch's names

    /// A bool mask along `d` (shape 1 elsewhere) that is true at `index`.
    private func maskAlong(_ d: Int, _ index: Tensor) -> Tensor {
        let n = shape[d]
        let hit = Tensor.arange(n, device: device).unsqueeze(1).eq(index.reshape([1, -1]).to(.int64)
            .remainder(Tensor.number(Swift.max(n, 1), like: index))).any(dim: 1)
        var s = [Int](repeating: 1, count: rank)
        s[d] = n
        return hit.reshape(s)
    }
    /// `value` at the slices `index` along `dim` (`index_fill`).
    public func indexFill(_ dim: Int, _ index: Tensor, _ value: Tensor) -> Tensor {
        if rank == 0 { return reshape([1]).indexFill(0, index, value).reshape([]) }
        let d = checked { try normalizeDim(dim, rank, op: "index_fill") }
        return Tensor.where(maskAlong(d, index), value.to(dtype), self)
    }
    public func indexFill(_ dim: Int, _ index: Tensor, _ value: Double) -> Tensor {
        indexFill(dim, index, Tensor.full([], value, dtype: dtype, device: device))
    }
    /// The slices of `source` at `index` along `dim` (`index_copy`).
    public func indexCopy(_ dim: Int, _ index: Tensor, _ source: Tensor) -> Tensor {
        if rank == 0 { return reshape([1]).indexCopy(0, index.reshape([-1]), source.reshape([-1])).reshape([]) }
        let d = checked { try normalizeDim(dim, rank, op: "index_copy") }
        var s = [Int](repeating: 1, count: source.rank)
        s[d] = index.count
        return scatter(d, index.reshape(s).expand(source.shape).contiguous(), source)
    }
    /// The slice at `index` along `dim` replaced by `src` (`select_scatter`).
    public func selectScatter(_ src: Tensor, dim: Int, index: Int) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "select_scatter") }
        let i = index < 0 ? index + shape[d] : index
        return indexCopy(d, indexTensor([i]), src.unsqueeze(d))
    }
    /// The slice `start..<end` by `step` along `dim` replaced by `src` (`slice_scatter`).
    public func sliceScatter(_ src: Tensor, dim: Int = 0, start: Int? = nil, end: Int? = nil, step: Int = 1) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "slice_scatter") }
        let n = shape[d]
        var lo = start ?? 0, hi = end ?? n
        if lo < 0 { lo += n }
        if hi < 0 { hi += n }
        lo = Swift.min(Swift.max(lo, 0), n)
        hi = Swift.min(Swift.max(hi, lo), n)
        return indexCopy(d, indexTensor(Array(stride(from: lo, to: hi, by: step))), src)
    }
    /// Where `mask` (broadcast to self) is true, the next elements of `source` in order.
    public func maskedScatter(_ mask: Tensor, _ source: Tensor) -> Tensor {
        let shape = checked { try broadcastShapes(self.shape, mask.shape, op: "masked_scatter") }
        let x = expand(shape)
        let m = mask.expand(shape).reshape([-1])
        let position = (m.cumsum(dim: 0) - 1).clamp(min: 0)
        checked {
            try require(Double(source.count) >= withNoGrad({ m.sum().item() }),
                        "masked_scatter: Number of elements of source < number of ones in mask")
        }
        let flatSource = source.count == 0 ? Tensor.zeros([1], dtype: dtype, device: device) : source.reshape([-1]).to(dtype)
        return Tensor.where(m, flatSource.gather(0, position.contiguous()), x.reshape([-1])).reshape(shape)
    }
    /// Elements of the flattened tensor at `indices` (`torch.take`), shaped like `indices`.
    public func take(_ indices: Tensor) -> Tensor {
        flatten().gather(0, indices.reshape([-1])).reshape(indices.shape)
    }

    // MARK: nonzero

    /// The positions of the non-zero elements, one row each: `[count, rank]` int64.
    public func nonzero() -> Tensor {
        let mask = ne(0).reshape([-1])
        let flat = Tensor.arange(count, device: device).maskedSelect(mask)
        if rank == 0 { return Tensor.zeros([flat.count, 0], dtype: .int64, device: device) }
        var columns: [Tensor] = []
        var stride = 1
        for d in (0..<rank).reversed() {
            columns.insert(flat.floorDivide(Tensor.number(stride, like: flat)).remainder(Tensor.number(shape[d], like: flat)), at: 0)
            stride *= shape[d]
        }
        return Tensor.stack(columns, dim: 1)
    }
    /// `nonzero()` as one index tensor per dimension.
    public func nonzeroTuple() -> [Tensor] {
        let nz = nonzero()
        if rank == 0 { return [Tensor.zeros([nz.shape[0]], dtype: .int64, device: device)] }
        return (0..<rank).map { nz.select(1, $0).contiguous() }
    }
    /// `nonzero()` (`torch.argwhere`).
    public func argwhere() -> Tensor { nonzero() }

    // MARK: splits

    /// Splits along `dim` into `sections` nearly equal parts (the first `n % sections` one larger).
    public func tensorSplit(sections: Int, dim: Int = 0) -> [Tensor] {
        let d = checked { try normalizeDim(dim, rank, op: "tensor_split") }
        checked { try require(sections > 0, "tensor_split: number of sections must be larger than 0, got \(sections)") }
        let n = shape[d], base = n / sections, extra = n % sections
        var start = 0
        return (0..<sections).map { i in
            let len = base + (i < extra ? 1 : 0)
            defer { start += len }
            return narrow(d, start: start, length: len)
        }
    }
    /// Splits along `dim` before each of `indices`.
    public func tensorSplit(indices: [Int], dim: Int = 0) -> [Tensor] {
        let d = checked { try normalizeDim(dim, rank, op: "tensor_split") }
        let n = shape[d]
        var cuts = [0] + indices.map { Swift.min(Swift.max($0 < 0 ? $0 + n : $0, 0), n) } + [n]
        for i in 1..<cuts.count { cuts[i] = Swift.max(cuts[i], cuts[i - 1]) }
        return (0..<(cuts.count - 1)).map { narrow(d, start: cuts[$0], length: cuts[$0 + 1] - cuts[$0]) }
    }
    private func directionalSplit(_ op: String, _ d: Int, sections: Int?, indices: [Int]?) -> [Tensor] {
        if let sections {
            checked {
                try require(sections > 0 && shape[d] % sections == 0,
                            "\(op): torch.\(op) attempted to split along dimension \(d), but the size of the dimension \(shape[d]) is not divisible by the split_size \(sections)!")
            }
            return tensorSplit(sections: sections, dim: d)
        }
        return tensorSplit(indices: indices ?? [], dim: d)
    }
    /// Splits along dimension 1 (0 for 1-D tensors).
    public func hsplit(sections: Int? = nil, indices: [Int]? = nil) -> [Tensor] {
        checked { try require(rank >= 1, "hsplit: torch.hsplit requires a tensor with at least 1 dimension, but got a tensor with \(rank) dimensions!") }
        return directionalSplit("hsplit", rank == 1 ? 0 : 1, sections: sections, indices: indices)
    }
    /// Splits along dimension 0 (at least 2-D).
    public func vsplit(sections: Int? = nil, indices: [Int]? = nil) -> [Tensor] {
        checked { try require(rank >= 2, "vsplit: torch.vsplit requires a tensor with at least 2 dimension, but got a tensor with \(rank) dimensions!") }
        return directionalSplit("vsplit", 0, sections: sections, indices: indices)
    }
    /// Splits along dimension 2 (at least 3-D).
    public func dsplit(sections: Int? = nil, indices: [Int]? = nil) -> [Tensor] {
        checked { try require(rank >= 3, "dsplit: torch.dsplit requires a tensor with at least 3 dimension, but got a tensor with \(rank) dimensions!") }
        return directionalSplit("dsplit", 2, sections: sections, indices: indices)
    }

    /// Dimension `dim` as `sizes` (one of them may be −1).
    public func unflatten(_ dim: Int, _ sizes: [Int]) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "unflatten") }
        return reshape(Array(shape[..<d]) + sizes + Array(shape[(d + 1)...]))
    }

    /// Each element (or slice along `dim`) repeated `repeats` times; the flattened tensor
    /// when `dim` is nil.
    public func repeatInterleave(_ repeats: Int, dim: Int? = nil) -> Tensor {
        guard let dim else { return flatten().repeatInterleave(repeats, dim: 0) }
        let d = checked { try normalizeDim(dim, rank, op: "repeat_interleave") }
        var expanded = shape
        expanded.insert(repeats, at: d + 1)
        var merged = shape
        merged[d] *= repeats
        return unsqueeze(d + 1).expand(expanded).contiguous().reshape(merged)
    }
    /// Slice `i` along `dim` repeated `repeats[i]` times (`repeats` 1-D, or one count).
    public func repeatInterleave(_ repeats: Tensor, dim: Int? = nil) -> Tensor {
        if repeats.count == 1 && repeats.rank <= 1 { return repeatInterleave(Int(repeats.item()), dim: dim) }
        guard let dim else { return flatten().repeatInterleave(repeats, dim: 0) }
        let d = checked { try normalizeDim(dim, rank, op: "repeat_interleave") }
        let counts = repeats.to(.cpu).toArray(Int64.self)
        checked {
            try require(counts.count == shape[d], "repeat_interleave: repeats must have the same size as input along dim, but got repeats.size(0) = \(counts.count) and input.size(\(d)) = \(shape[d])")
            try require(counts.allSatisfy { $0 >= 0 }, "repeat_interleave: repeats can not be negative")
        }
        var index: [Int] = []
        for (i, k) in counts.enumerated() { index += [Int](repeating: i, count: Int(k)) }
        return indexSelect(d, indexTensor(index))
    }

    /// The `n`-th forward difference along `dim`, with `prepend`/`append` joined first.
    public func diff(n: Int = 1, dim: Int = -1, prepend: Tensor? = nil, append: Tensor? = nil) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "diff") }
        checked { try require(rank >= 1, "diff: expects input to be at least one-dimensional") }
        if n == 0 { return self }  // PyTorch: no difference taken, prepend and append unused
        var x = self
        if prepend != nil || append != nil {
            x = Tensor.cat([prepend, self, append].compactMap { $0 }.map { $0.to(dtype) }, dim: d)
        }
        for _ in 0..<n {
            let len = x.shape[d]
            if len == 0 { break }
            let hi = x.narrow(d, start: 1, length: len - 1), lo = x.narrow(d, start: 0, length: len - 1)
            x = x.dtype == .bool ? hi.logicalXor(lo) : hi - lo
        }
        return x
    }

    /// Coordinate grids from 1-D tensors: `ij` indexing gives shape `[n0, n1, …]`, `xy`
    /// swaps the first two (`torch.meshgrid`).
    public static func meshgrid(_ tensors: [Tensor], indexing: String = "ij") -> [Tensor] {
        checked {
            try require(indexing == "ij" || indexing == "xy", "meshgrid: indexing must be one of \"xy\" or \"ij\", but received: \(indexing)")
            for t in tensors { try require(t.rank <= 1, "meshgrid: Expected 0D or 1D tensor in the tensor list but got: \(fmt(t.shape))") }
        }
        var ts = tensors.map { $0.reshape([-1]) }
        let swap = indexing == "xy" && ts.count >= 2
        if swap { ts.swapAt(0, 1) }
        let shape = ts.map(\.count)
        var grids = ts.enumerated().map { i, t -> Tensor in
            var s = [Int](repeating: 1, count: ts.count)
            s[i] = t.count
            return t.reshape(s).expand(shape)
        }
        if swap { grids.swapAt(0, 1) }
        return grids
    }

    // MARK: transposes

    /// `mT` (the conjugate is the tensor itself for real dtypes).
    public var mH: Tensor { mT }
    /// All dimensions reversed.
    public var T: Tensor { rank < 2 ? self : permute(Array((0..<rank).reversed())) }
    /// `T` of a matrix (real dtypes).
    public var H: Tensor {
        checked { try require(rank <= 2, "H: tensor.H is only supported on matrices (2-D tensors). Got \(rank)-D tensor.") }
        return T
    }
}
