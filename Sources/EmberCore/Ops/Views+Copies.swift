// Shape ops with PyTorch's names that copy (flip, roll, rot90, repeat, tile, tril/triu,
// stacking) or view (diagonal, movedim, atleast_nd): compositions of views, index_select,
// cat and where, so they run and differentiate on every device.

extension Tensor {
    /// An int64 index tensor on this tensor's device.
    func indexTensor(_ values: [Int]) -> Tensor {
        let t = Tensor(values.map { Int64($0) }, shape: [values.count], dtype: .int64)
        return device == .cpu ? t : t.to(device)
    }

    // MARK: triangles

    /// The lower triangle of the last two dimensions: elements with `col − row ≤ diagonal`;
    /// the rest 0.
    public func tril(diagonal: Int = 0) -> Tensor { triangle(diagonal, lower: true) }
    /// The upper triangle: elements with `col − row ≥ diagonal`; the rest 0.
    public func triu(diagonal: Int = 0) -> Tensor { triangle(diagonal, lower: false) }

    private func triangle(_ k: Int, lower: Bool) -> Tensor {
        let name = lower ? "tril" : "triu"
        checked { try require(rank >= 2, "\(name): input tensor must have at least 2 dimensions (shape \(fmt(shape)))") }
        let m = shape[rank - 2], n = shape[rank - 1]
        let rows = Tensor.arange(m, device: device).reshape([m, 1]), cols = Tensor.arange(n, device: device).reshape([1, n])
        let offset = cols - rows
        let keep = lower ? offset.le(Double(k)) : offset.ge(Double(k))
        return Tensor.where(keep, self, Tensor.zeros([], dtype: dtype, device: device))
    }

    // MARK: flips and rotations

    /// Reverses the order of elements along `dims`.
    public func flip(_ dims: [Int]) -> Tensor {
        let ds = checked { () throws -> [Int] in
            let d = try dims.map { try normalizeDim($0, rank, op: "flip") }
            try require(Set(d).count == d.count, "flip: dim appears multiple times in the list of dims \(fmt(dims))")
            return d
        }
        if rank == 0 { return clone() }
        var r = self
        for d in ds where shape[d] > 1 {
            r = r.indexSelect(d, indexTensor(Array((0..<shape[d]).reversed())))
        }
        return r === self ? clone() : r
    }
    public func flip(_ dims: Int...) -> Tensor { flip(dims) }
    /// `flip([1])` (at least 2-D).
    public func fliplr() -> Tensor {
        checked { try require(rank >= 2, "fliplr: Input must be >= 2-d (shape \(fmt(shape)))") }
        return flip([1])
    }
    /// `flip([0])` (at least 1-D).
    public func flipud() -> Tensor {
        checked { try require(rank >= 1, "flipud: Input must be >= 1-d (shape \(fmt(shape)))") }
        return flip([0])
    }

    /// Rolls elements along `dims` by `shifts` (wrapping around); with no dims, the
    /// flattened tensor rolls and is reshaped back.
    public func roll(_ shifts: [Int], dims: [Int] = []) -> Tensor {
        if dims.isEmpty {
            checked { try require(shifts.count == 1, "roll: shifts (\(shifts)) must have one value when no dims are given") }
            return flatten().roll(shifts, dims: [0]).reshape(shape)
        }
        checked {
            try require(shifts.count == dims.count,
                        "roll: shifts and dimensions must align. shifts: \(shifts.count), dims: \(dims.count)")
        }
        var r = self
        for (s, dim) in zip(shifts, dims) {
            let d = checked { try normalizeDim(dim, rank, op: "roll") }
            let n = shape[d]
            if n == 0 { continue }
            let k = ((s % n) + n) % n
            if k == 0 { continue }
            r = Tensor.cat([r.narrow(d, start: n - k, length: k), r.narrow(d, start: 0, length: n - k)], dim: d)
        }
        return r === self ? clone() : r
    }
    public func roll(_ shift: Int, dim: Int) -> Tensor { roll([shift], dims: [dim]) }

    /// Rotates by 90° `k` times in the plane of `dims`, from the first axis toward the second.
    public func rot90(k: Int = 1, dims: [Int] = [0, 1]) -> Tensor {
        checked {
            try require(dims.count == 2, "rot90: expected total rotation dims == 2, but got dims = \(dims.count)")
            try require(rank >= 2, "rot90: expected total dims >= 2, but got total dims = \(rank)")
        }
        let (d0, d1) = checked { (try normalizeDim(dims[0], rank, op: "rot90"), try normalizeDim(dims[1], rank, op: "rot90")) }
        checked { try require(d0 != d1, "rot90: expected rotation dims to be different, but got dim0 = \(d0) and dim1 = \(d1)") }
        switch ((k % 4) + 4) % 4 {
        case 1: return flip([d1]).transpose(d0, d1)
        case 2: return flip([d0, d1])
        case 3: return flip([d0]).transpose(d0, d1)
        default: return clone()
        }
    }

    // MARK: repeats

    /// Repeats the tensor `sizes[i]` times along each dimension (`sizes` may have more
    /// entries than the rank: leading ones add dimensions).
    public func repeated(_ sizes: [Int]) -> Tensor {
        checked {
            try require(sizes.count >= rank,
                        "repeat: Number of dimensions of repeat dims (\(sizes.count)) can not be smaller than number of dimensions of tensor (\(rank))")
            try require(sizes.allSatisfy { $0 >= 0 }, "repeat: repeats must be non-negative, got \(sizes)")
        }
        let padded = [Int](repeating: 1, count: sizes.count - rank) + shape
        var interleaved: [Int] = [], expanded: [Int] = [], final: [Int] = []
        for (r, s) in zip(sizes, padded) {
            interleaved += [1, s]
            expanded += [r, s]
            final.append(r * s)
        }
        return reshape(interleaved).expand(expanded).contiguous().reshape(final)
    }
    /// `repeat` (PyTorch's `Tensor.repeat`).
    public func `repeat`(_ sizes: [Int]) -> Tensor { repeated(sizes) }
    public func `repeat`(_ sizes: Int...) -> Tensor { repeated(sizes) }
    /// Like `repeat`, with ones prepended to `dims` when it is shorter than the rank.
    public func tile(_ dims: [Int]) -> Tensor {
        repeated([Int](repeating: 1, count: Swift.max(0, rank - dims.count)) + dims)
    }

    // MARK: views

    /// Moves dimensions `source` to positions `destination`, the others keeping their order.
    public func movedim(_ source: [Int], _ destination: [Int]) -> Tensor {
        let (src, dst) = checked { () throws -> ([Int], [Int]) in
            try require(source.count == destination.count,
                        "movedim: Invalid source or destination dims: source (\(source) dims) should contain the same number of dims as destination (\(destination) dims)")
            let s = try source.map { try normalizeDim($0, rank, op: "movedim") }
            let d = try destination.map { try normalizeDim($0, rank, op: "movedim") }
            try require(Set(s).count == s.count, "movedim: repeated dim in `source` (\(source))")
            try require(Set(d).count == d.count, "movedim: repeated dim in `destination` (\(destination))")
            return (s, d)
        }
        if rank == 0 { return self }
        var order = [Int](repeating: -1, count: rank)
        for (s, d) in zip(src, dst) { order[d] = s }
        var rest = (0..<rank).filter { !src.contains($0) }.makeIterator()
        for i in 0..<rank where order[i] < 0 { order[i] = rest.next()! }
        return permute(order)
    }
    public func movedim(_ source: Int, _ destination: Int) -> Tensor { movedim([source], [destination]) }

    /// The diagonal of the `dim1`/`dim2` planes shifted by `offset` (above the main one when
    /// positive), as a view; its dimension comes last.
    public func diagonal(offset: Int = 0, dim1: Int = 0, dim2: Int = 1) -> Tensor {
        let (a, b) = checked { () throws -> (Int, Int) in
            let a = try normalizeDim(dim1, rank, op: "diagonal"), b = try normalizeDim(dim2, rank, op: "diagonal")
            try require(rank >= 2, "diagonal: expected a tensor of at least 2 dimensions, got shape \(fmt(shape))")
            try require(a != b, "diagonal: diagonal dimensions cannot be identical \(dim1), \(dim2)")
            return (a, b)
        }
        var l = layout
        let len = offset >= 0 ? Swift.max(0, Swift.min(shape[a], shape[b] - offset)) : Swift.max(0, Swift.min(shape[a] + offset, shape[b]))
        if len > 0 { l.offset += offset >= 0 ? offset * strides[b] : -offset * strides[a] }
        let diagStride = strides[a] + strides[b]
        for d in [a, b].sorted(by: >) {
            l.shape.remove(at: d)
            l.strides.remove(at: d)
        }
        l.shape.append(len)
        l.strides.append(diagStride)
        return partialView(l, "DiagonalBackward") { $0.diagonal(offset: offset, dim1: a, dim2: b) }
    }

    /// The sum of the main diagonal of a matrix.
    public func trace() -> Tensor {
        checked { try require(rank == 2, "trace: expected a matrix, but got tensor with dim \(rank)") }
        return diagonal().sum()
    }

    /// The elements as one dimension (a view when possible).
    public func ravel() -> Tensor { reshape([-1]) }
    /// `reshape(other.shape)`.
    public func reshape(as other: Tensor) -> Tensor { reshape(other.shape) }
    /// `view(other.shape)`.
    public func view(as other: Tensor) -> Tensor { view(other.shape) }

    /// At least one dimension (a 0-dim tensor becomes `[1]`).
    public func atleast1d() -> Tensor { rank >= 1 ? self : reshape([1]) }
    /// At least two dimensions (`[n]` becomes `[1, n]`).
    public func atleast2d() -> Tensor {
        switch rank {
        case 0: reshape([1, 1])
        case 1: unsqueeze(0)
        default: self
        }
    }
    /// At least three dimensions (`[n]` becomes `[1, n, 1]`, `[m, n]` becomes `[m, n, 1]`).
    public func atleast3d() -> Tensor {
        switch rank {
        case 0: reshape([1, 1, 1])
        case 1: unsqueeze(0).unsqueeze(2)
        case 2: unsqueeze(2)
        default: self
        }
    }

    // MARK: stacking

    /// Concatenates along the first dimension after `atleast1d` (the second for 2-D and more).
    public static func hstack(_ tensors: [Tensor]) -> Tensor {
        let ts = tensors.map { $0.atleast1d() }
        return cat(ts, dim: ts.first?.rank == 1 ? 0 : 1)
    }
    /// Concatenates along the first dimension after `atleast2d`.
    public static func vstack(_ tensors: [Tensor]) -> Tensor { cat(tensors.map { $0.atleast2d() }, dim: 0) }
    /// Concatenates along the third dimension after `atleast3d`.
    public static func dstack(_ tensors: [Tensor]) -> Tensor { cat(tensors.map { $0.atleast3d() }, dim: 2) }
    /// Stacks 0-D and 1-D tensors as columns, and concatenates 2-D ones along dimension 1.
    public static func columnStack(_ tensors: [Tensor]) -> Tensor {
        cat(tensors.map { $0.rank <= 1 ? $0.reshape([$0.count, 1]) : $0 }, dim: 1)
    }

    // MARK: more views

    /// Removes the size-1 dimensions among `dims` (others stay).
    public func squeeze(dims: [Int]) -> Tensor {
        let ds = checked { try Set(dims.map { try normalizeDim($0, rank, op: "squeeze") }) }
        if rank == 0 { return self }
        let keep = shape.indices.filter { !(ds.contains($0) && shape[$0] == 1) }
        return reshape(keep.map { shape[$0] })
    }
    /// `expand(shape)` (`torch.broadcast_to`).
    public func broadcast(to shape: [Int]) -> Tensor { expand(shape) }
    /// The slices along `dim`, each without that dimension.
    public func unbind(dim: Int = 0) -> [Tensor] {
        let d = checked { try normalizeDim(dim, rank, op: "unbind") }
        checked { try require(rank > 0, "unbind: dimension specified as 0 but tensor has no dimensions") }
        return (0..<shape[d]).map { select(d, $0) }
    }
    /// Picks values along `dim` at `indices` (broadcast with self except along dim), or from
    /// the flattened tensor when `dim` is nil (`torch.take_along_dim`).
    public func takeAlongDim(_ indices: Tensor, dim: Int? = nil) -> Tensor {
        guard let dim else { return flatten().gather(0, indices.flatten()) }
        let d = checked { try normalizeDim(dim, rank, op: "take_along_dim") }
        checked {
            try require(indices.rank == rank,
                        "take_along_dim: input and indices should have the same number of dimensions, but got \(rank) dimensions for input, and \(indices.rank) dimensions for indices")
        }
        var a = shape, b = indices.shape
        a[d] = 1
        b[d] = 1
        let common = checked { try broadcastShapes(a, b, op: "take_along_dim") }
        var xs = common, ys = common
        xs[d] = shape[d]
        ys[d] = indices.shape[d]
        return expand(xs).gather(d, indices.expand(ys).contiguous())
    }
    /// Where `mask` is true, `value` (a 0-dim tensor, differentiable), else self.
    public func maskedFill(_ mask: Tensor, _ value: Tensor) -> Tensor {
        checked {
            try require(value.rank == 0,
                        "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with \(value.rank) dimension(s).")
        }
        return Tensor.where(mask, value.to(dtype), self)
    }
}

// MARK: - shuffles (`torch.nn.functional`)

/// `[*, C·r², H, W]` to `[*, C, H·r, W·r]`.
public func pixelShuffle(_ x: Tensor, upscaleFactor r: Int) -> Tensor {
    checked {
        try require(x.rank >= 3, "pixel_shuffle expects input to have at least 3 dimensions, but got input with \(x.rank) dimension(s)")
        try require(r > 0 && x.shape[x.rank - 3] % (r * r) == 0,
                    "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of upscale_factor, but input.size(-3)=\(x.shape[x.rank - 3]) is not divisible by \(r * r)")
    }
    let lead = Array(x.shape.dropLast(3)), c = x.shape[x.rank - 3] / (r * r), h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
    let k = lead.count
    return x.reshape(lead + [c, r, r, h, w]).permute(Array(0..<k) + [k, k + 3, k + 1, k + 4, k + 2]).reshape(lead + [c, h * r, w * r])
}

/// `[*, C, H·r, W·r]` to `[*, C·r², H, W]`.
public func pixelUnshuffle(_ x: Tensor, downscaleFactor r: Int) -> Tensor {
    checked {
        try require(x.rank >= 3, "pixel_unshuffle expects input to have at least 3 dimensions, but got input with \(x.rank) dimension(s)")
        try require(r > 0 && x.shape[x.rank - 2] % r == 0 && x.shape[x.rank - 1] % r == 0,
                    "pixel_unshuffle expects height and width to be divisible by downscale_factor (\(r)), got shape \(fmt(x.shape))")
    }
    let lead = Array(x.shape.dropLast(3)), c = x.shape[x.rank - 3], h = x.shape[x.rank - 2] / r, w = x.shape[x.rank - 1] / r
    let k = lead.count
    return x.reshape(lead + [c, h, r, w, r]).permute(Array(0..<k) + [k, k + 2, k + 4, k + 1, k + 3]).reshape(lead + [c * r * r, h, w])
}

/// Interleaves the channels of `groups` groups: `[N, g·k, *]` → `[N, k·g, *]` transposed.
public func channelShuffle(_ x: Tensor, groups g: Int) -> Tensor {
    checked {
        try require(x.rank >= 3, "channel_shuffle expects input to have at least 3 dimensions, but got input with \(x.rank) dimension(s)")
        try require(g > 0 && x.shape[1] % g == 0, "Number of channels must be divisible by groups. Got \(x.shape[1]) channels and \(g) groups.")
    }
    let rest = Array(x.shape.dropFirst(2))
    return x.reshape([x.shape[0], g, x.shape[1] / g] + rest).transpose(1, 2).reshape(x.shape)
}

extension Tensor {
    /// The Cartesian product of 1-D tensors as rows `[Πnᵢ, k]` (`torch.cartesian_prod`; one
    /// tensor is returned as it is).
    public static func cartesianProd(_ tensors: [Tensor]) -> Tensor {
        checked {
            try require(!tensors.isEmpty && tensors.allSatisfy { $0.rank == 1 },
                        "cartesian_prod: expects 1-D tensors, got shapes \(tensors.map { fmt($0.shape) })")
        }
        if tensors.count == 1 { return tensors[0] }
        return Tensor.stack(Tensor.meshgrid(tensors, indexing: "ij").map { $0.reshape([-1]) }, dim: 1)
    }

    /// The length-`r` combinations of the elements of a 1-D tensor, in lexicographic order of
    /// positions, as rows `[count, r]` (`torch.combinations`); with `withReplacement`, an
    /// element may repeat.
    public func combinations(r: Int = 2, withReplacement: Bool = false) -> Tensor {
        checked {
            try require(rank == 1, "combinations: Expect a 1D vector, but got shape \(fmt(shape))")
            try require(r >= 0, "combinations: Expect a non-negative number, but got \(r)")
        }
        let n = shape[0]
        var picks: [Int64] = [], count = 0
        var current = [Int]()
        func extend(_ from: Int) {
            if current.count == r { picks += current.map(Int64.init); count += 1; return }
            if from >= n { return }
            for i in from..<n {
                current.append(i)
                extend(withReplacement ? i : i + 1)
                current.removeLast()
            }
        }
        if r > 0 { extend(0) }
        let index = Tensor(picks, shape: [picks.count], dtype: .int64, device: device)
        return indexSelect(0, index).reshape([count, r])
    }

    /// Each slice along `dim` whose p-norm exceeds `maxnorm` scaled down to norm `maxnorm`
    /// (`torch.renorm`; the scale is `maxnorm / (norm + 1e-7)`, as PyTorch's).
    public func renorm(p: Double, dim: Int, maxnorm: Double) -> Tensor {
        checked {
            try require(p > 0, "renorm: non-positive-norm not supported (p = \(p))")
            try require(rank > 1, "renorm: input needs at least 2 dimensions, got \(rank) dimensions")
        }
        let d = dim < 0 ? dim + rank : dim
        let others = (0..<rank).filter { $0 != d }
        let norms = Linalg.vectorNorm(self, ord: p, dim: others, keepdim: true)
        let factor = Tensor.where(norms.gt(maxnorm), maxnorm / (norms + 1e-7), Tensor.onesLike(norms))
        return self * factor
    }
}
