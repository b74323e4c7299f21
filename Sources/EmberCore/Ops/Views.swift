/// Views share storage with their base: writes through a view are visible in the base.
extension Tensor {
    /// A view with another layout over the same storage, recorded for autograd.
    /// `back` maps the view's gradient to the base's.
    private func view(_ layout: Layout, _ name: String, _ back: @escaping (Tensor) -> Tensor) -> Tensor {
        let v = makeView(layout)
        if anyNeedsGrad(self) { record(v, name, [self]) { c in [back(c.grad)] } }
        return v
    }

    /// A view that selects part of `self` (narrow, select, strided slices). Its gradient is
    /// the upstream gradient placed into zeros of the base's shape, itself differentiable.
    func partialView(_ layout: Layout, _ name: String, _ sameView: @escaping (Tensor) -> Tensor) -> Tensor {
        let baseShape = shape
        return view(layout, name) { g in Tensor.embed(g, baseShape: baseShape, sameView, name) }
    }

    /// Zeros of `baseShape` with `g` written into `sameView(zeros)`.
    private static func embed(_ g: Tensor, baseShape: [Int], _ sameView: @escaping (Tensor) -> Tensor, _ name: String) -> Tensor {
        let z = Tensor.zeros(baseShape, dtype: g.dtype, device: g.device)
        let dst = sameView(z)
        g.device.backend.copy(g, into: dst)
        if anyNeedsGrad(g) { record(z, name + "Backward", [g]) { c in [sameView(c.grad)] } }
        return z
    }

    // MARK: reshape

    /// A tensor of `newShape` with the same elements (`reshape`): a view when the strides
    /// allow it, else a copy. One dimension may be -1.
    public func reshape(_ newShape: [Int]) -> Tensor {
        let s = checked { try inferShape(newShape, op: "reshape") }
        if let st = layout.viewStrides(s) {
            let old = shape
            return view(Layout(shape: s, strides: st, offset: layout.offset), "ViewBackward") { $0.reshape(old) }
        }
        return contiguous().reshape(s)
    }

    /// `reshape` that never copies (`view`): stops with a message when the strides don't allow it.
    public func view(_ newShape: [Int]) -> Tensor {
        let s = checked { try inferShape(newShape, op: "view") }
        let st = checked { () throws -> [Int] in
            guard let st = layout.viewStrides(s) else {
                throw EmberError.invalidArgument(
                    "view: size \(fmt(s)) is not compatible with input tensor's size \(fmt(shape)) and stride \(fmt(strides)) (at least one dimension spans across two contiguous subspaces). Use reshape instead.")
            }
            return st
        }
        let old = shape
        return view(Layout(shape: s, strides: st, offset: layout.offset), "ViewBackward") { $0.reshape(old) }
    }

    func inferShape(_ newShape: [Int], op: String) throws -> [Int] {
        var s = newShape
        let unknown = s.indices.filter { s[$0] == -1 }
        try require(unknown.count <= 1, "\(op): only one dimension can be inferred, got shape \(fmt(newShape))")
        try require(s.allSatisfy { $0 >= -1 }, "\(op): invalid shape dimension in \(fmt(newShape))")
        let known = s.filter { $0 != -1 }.reduce(1, *)
        if let u = unknown.first {
            try require(known != 0 && count % known == 0,
                        "\(op): shape \(fmt(newShape)) is invalid for input of size \(count)")
            s[u] = count / known
        }
        try require(s.reduce(1, *) == count, "\(op): shape \(fmt(newShape)) is invalid for input of size \(count)")
        return s
    }

    /// Flattens dimensions `startDim...endDim` into one.
    public func flatten(startDim: Int = 0, endDim: Int = -1) -> Tensor {
        if rank == 0 { return reshape([1]) }
        let (a, b) = checked { (try normalizeDim(startDim, rank, op: "flatten"), try normalizeDim(endDim, rank, op: "flatten")) }
        if a >= b { return self }
        let s = Array(shape[..<a]) + [shape[a...b].reduce(1, *)] + Array(shape[(b + 1)...])
        return reshape(s)
    }

    // MARK: permutations

    /// Reorders dimensions (`permute`).
    public func permute(_ dims: [Int]) -> Tensor {
        let d = checked { () throws -> [Int] in
            try require(dims.count == rank, "permute: number of dims \(dims.count) don't match the tensor's rank \(rank) (shape \(fmt(shape)))")
            let n = try dims.map { try normalizeDim($0, rank, op: "permute") }
            try require(Set(n).count == n.count, "permute: repeated dim in \(fmt(dims))")
            return n
        }
        var inverse = [Int](repeating: 0, count: d.count)
        for (i, p) in d.enumerated() { inverse[p] = i }
        let l = Layout(shape: d.map { shape[$0] }, strides: d.map { strides[$0] }, offset: layout.offset)
        return view(l, "PermuteBackward") { $0.permute(inverse) }
    }

    public func permute(_ dims: Int...) -> Tensor { permute(dims) }

    /// Swaps two dimensions.
    public func transpose(_ d0: Int, _ d1: Int) -> Tensor {
        if rank == 0 { return self }
        let (a, b) = checked { (try normalizeDim(d0, rank, op: "transpose"), try normalizeDim(d1, rank, op: "transpose")) }
        var p = Array(0..<rank)
        p.swapAt(a, b)
        return permute(p)
    }

    /// The transpose of a matrix (`t()`); 0-D and 1-D tensors are returned as they are.
    public func t() -> Tensor {
        checked { try require(rank <= 2, "t: expects a tensor with <= 2 dimensions, but self is \(rank)D (shape \(fmt(shape)))") }
        return rank < 2 ? self : transpose(0, 1)
    }

    /// The last two dimensions swapped (`mT`).
    public var mT: Tensor { transpose(-2, -1) }

    // MARK: squeeze / unsqueeze / expand

    /// Removes all size-1 dimensions, or only `dim` if it has size 1.
    public func squeeze(_ dim: Int? = nil) -> Tensor {
        var keep = Array(0..<rank)
        if let dim {
            let d = checked { try normalizeDim(dim, rank, op: "squeeze") }
            if rank == 0 || shape[d] != 1 { return self }
            keep.remove(at: d)
        } else {
            keep = keep.filter { shape[$0] != 1 }
        }
        let old = shape
        return view(Layout(shape: keep.map { shape[$0] }, strides: keep.map { strides[$0] }, offset: layout.offset),
                    "SqueezeBackward") { $0.reshape(old) }
    }

    /// Inserts a size-1 dimension at `dim`.
    public func unsqueeze(_ dim: Int) -> Tensor {
        let d = checked { try normalizeDim(dim, rank + 1, op: "unsqueeze") }
        var s = shape, st = strides
        let stride = d < rank ? strides[d] * shape[d] : 1
        s.insert(1, at: d)
        st.insert(stride, at: d)
        let old = shape
        return view(Layout(shape: s, strides: st, offset: layout.offset), "UnsqueezeBackward") { $0.reshape(old) }
    }

    /// A view broadcast to `newShape` (stride 0 along stretched dimensions); -1 keeps a size.
    public func expand(_ newShape: [Int]) -> Tensor {
        var target = newShape
        let extra = newShape.count - rank
        for i in 0..<target.count where target[i] == -1 {
            checked { try require(i >= extra, "expand: -1 is not allowed in a leading, non-existing dimension") }
            target[i] = shape[i - extra]
        }
        let l = checked { () throws -> Layout in
            guard let l = layout.broadcast(to: target) else {
                throw EmberError.invalidArgument(
                    "expand: the expanded size of the tensor \(fmt(target)) must match the existing size \(fmt(shape)) at non-singleton dimensions")
            }
            return l
        }
        if l.shape == shape && l.strides == strides { return self }
        let old = shape
        // The engine reduces a gradient of the expanded shape back to `old`.
        return view(l, "ExpandBackward") { $0.sumTo(old) }
    }

    public func expand(_ newShape: Int...) -> Tensor { expand(newShape) }
    public func expand(as other: Tensor) -> Tensor { expand(other.shape) }

    /// Broadcast views of several tensors to their common shape.
    public static func broadcastTensors(_ ts: [Tensor]) -> [Tensor] {
        let shape = checked { try ts.dropFirst().reduce(ts.first?.shape ?? []) { try broadcastShapes($0, $1.shape, op: "broadcastTensors") } }
        return ts.map { $0.expand(shape) }
    }

    // MARK: narrowing, selecting, slicing

    /// Elements `start..<start+length` along `dim`, as a view (`narrow`).
    public func narrow(_ dim: Int, start: Int, length: Int) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "narrow") }
        let s0 = start < 0 ? start + shape[d] : start
        checked {
            try require(s0 >= 0 && length >= 0 && s0 + length <= shape[d],
                        "narrow: start (\(start)) + length (\(length)) exceeds dimension size (\(shape[d])) of shape \(fmt(shape))")
        }
        var l = layout
        l.shape[d] = length
        l.offset += s0 * strides[d]
        return partialView(l, "NarrowBackward") { $0.narrow(d, start: s0, length: length) }
    }

    /// The slice at `index` along `dim`, with that dimension removed (`select`).
    public func select(_ dim: Int, _ index: Int) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "select") }
        let i = index < 0 ? index + shape[d] : index
        checked {
            try require(i >= 0 && i < shape[d],
                        "select: index \(index) is out of bounds for dimension \(d) with size \(shape[d]) (shape \(fmt(shape)))")
        }
        var l = layout
        l.offset += i * strides[d]
        l.shape.remove(at: d)
        l.strides.remove(at: d)
        return partialView(l, "SelectBackward") { $0.select(d, i) }
    }

    /// Every `step`-th element of `start..<end` along `dim`, as a view.
    public func slice(_ dim: Int, start: Int? = nil, end: Int? = nil, step: Int = 1) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "slice") }
        checked { try require(step > 0, "slice: step must be positive, got \(step)") }
        let n = shape[d]
        func clampIndex(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + n : v, 0), n) }
        let s = clampIndex(start ?? 0), e = Swift.max(clampIndex(end ?? n), clampIndex(start ?? 0))
        var l = layout
        l.shape[d] = (e - s + step - 1) / step
        l.offset += s * strides[d]
        l.strides[d] *= step
        return partialView(l, "SliceBackward") { $0.slice(d, start: s, end: e, step: step) }
    }

    /// Indexes with integers, ranges, strides, `.all`, `.newAxis` and `.ellipsis`:
    ///
    ///     x[0]              // select
    ///     x[1..<3, .all, 2] // narrow, keep, select
    ///     x[.range(0, 10, step: 2)]   // every other element
    ///     x[0] = Tensor.zeros([4])   // writes through the view
    public subscript(_ indices: TensorIndex...) -> Tensor {
        get { index(indices) }
        set { index(indices).copy_(newValue) }
    }

    func index(_ items: [TensorIndex]) -> Tensor {
        let consumed = items.filter { if case .newAxis = $0 { return false }; if case .ellipsis = $0 { return false }; return true }.count
        checked { try require(consumed <= rank, "index: too many indices for tensor of dimension \(rank) (got \(consumed))") }
        var t = self
        var d = 0
        for item in items {
            switch item {
            case .index(let i):
                t = t.select(d, i)
            case .range(let lo, let hi, let step):
                t = t.slice(d, start: lo, end: hi, step: step)
                d += 1
            case .all:
                d += 1
            case .newAxis:
                t = t.unsqueeze(d)
                d += 1
            case .ellipsis:
                d += rank - consumed
            }
        }
        return t
    }

    // MARK: joining and splitting

    /// Concatenates tensors along `dim` (`torch.cat`).
    public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        checked { try require(!tensors.isEmpty, "cat: expected a non-empty list of Tensors") }
        // PyTorch's legacy rule: 1-D empty tensors are skipped when other tensors are not.
        let isLegacyEmpty = { (t: Tensor) in t.rank == 1 && t.shape[0] == 0 }
        if tensors.contains(where: isLegacyEmpty) && !tensors.allSatisfy(isLegacyEmpty) {
            return cat(tensors.filter { !isLegacyEmpty($0) }, dim: dim)
        }
        let first = tensors[0]
        let d = checked { try normalizeDim(dim, first.rank, op: "cat") }
        let dtype = tensors.dropFirst().reduce(first.dtype) { DType.promote($0, $1.dtype) }
        var size = 0
        checked {
            for (i, t) in tensors.enumerated() {
                try require(t.rank == first.rank, "cat: tensors must have same number of dimensions: got \(first.rank) and \(t.rank) (tensor \(i))")
                try require(t.device == first.device, "cat: expected all tensors on the same device, got \(first.device) and \(t.device)")
                for k in 0..<t.rank where k != d {
                    try require(t.shape[k] == first.shape[k],
                                "cat: sizes of tensors must match except in dimension \(d). Expected size \(first.shape[k]) but got size \(t.shape[k]) for tensor number \(i) in the list (shapes \(fmt(first.shape)) and \(fmt(t.shape)))")
                }
                size += t.shape[d]
            }
        }
        var outShape = first.shape
        outShape[d] = size
        let out = Tensor(uninitialized: outShape, dtype: dtype, device: first.device)
        var offset = 0
        var sizes: [Int] = []
        for t in tensors {
            var l = out.layout
            l.shape[d] = t.shape[d]
            l.offset += offset * out.strides[d]
            out.device.backend.copy(t, into: Tensor(storage: out.storage, layout: l, dtype: dtype))
            offset += t.shape[d]
            sizes.append(t.shape[d])
        }
        if anyNeedsGrad(tensors) {
            let dtypes = tensors.map(\.dtype)
            record(out, "CatBackward", tensors) { c in
                var start = 0
                return sizes.enumerated().map { i, n in
                    defer { start += n }
                    return c.grad.narrow(d, start: start, length: n).to(dtypes[i])
                }
            }
        }
        return out
    }

    /// Stacks same-shaped tensors along a new dimension (`torch.stack`).
    public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        checked {
            try require(!tensors.isEmpty, "stack: expects a non-empty list of Tensors")
            for (i, t) in tensors.enumerated() {
                try require(t.shape == tensors[0].shape,
                            "stack: expects each tensor to be equal size, but got \(fmt(tensors[0].shape)) at entry 0 and \(fmt(t.shape)) at entry \(i)")
            }
        }
        let d = checked { try normalizeDim(dim, tensors[0].rank + 1, op: "stack") }
        return cat(tensors.map { $0.unsqueeze(d) }, dim: d)
    }

    /// Views of consecutive pieces of `size` elements along `dim` (the last may be smaller).
    public func split(_ size: Int, dim: Int = 0) -> [Tensor] {
        let d = checked { try normalizeDim(dim, rank, op: "split") }
        checked { try require(size > 0, "split: split_size must be positive, got \(size)") }
        return stride(from: 0, to: Swift.max(shape[d], 1), by: size).map { narrow(d, start: $0, length: Swift.min(size, shape[d] - $0)) }
    }

    /// Views of pieces of the given sizes along `dim`.
    public func split(sizes: [Int], dim: Int = 0) -> [Tensor] {
        let d = checked { try normalizeDim(dim, rank, op: "split") }
        checked {
            try require(sizes.reduce(0, +) == shape[d],
                        "split: split sizes \(fmt(sizes)) must sum to the dimension size \(shape[d]) (shape \(fmt(shape)))")
        }
        var start = 0
        return sizes.map { n in defer { start += n }; return narrow(d, start: start, length: n) }
    }

    /// `chunks` views of (nearly) equal size along `dim` (`torch.chunk`).
    public func chunk(_ chunks: Int, dim: Int = 0) -> [Tensor] {
        checked { try require(chunks > 0, "chunk: number of chunks must be positive, got \(chunks)") }
        let d = checked { try normalizeDim(dim, rank, op: "chunk") }
        let size = (shape[d] + chunks - 1) / chunks
        return split(Swift.max(size, 1), dim: d)
    }
}

/// One index in a tensor subscript.
public enum TensorIndex: ExpressibleByIntegerLiteral {
    case index(Int)
    case range(Int?, Int?, step: Int)
    /// Every element of this dimension (`:` in Python).
    case all
    /// A new size-1 dimension (`None` in Python).
    case newAxis
    /// As many `.all` as needed (`...` in Python).
    case ellipsis

    public init(integerLiteral value: Int) { self = .index(value) }
}

/// Types usable inside a tensor subscript.
public protocol TensorIndexConvertible { var tensorIndex: TensorIndex { get } }
extension Int: TensorIndexConvertible { public var tensorIndex: TensorIndex { .index(self) } }
extension Range: TensorIndexConvertible where Bound == Int { public var tensorIndex: TensorIndex { .range(lowerBound, upperBound, step: 1) } }
extension ClosedRange: TensorIndexConvertible where Bound == Int { public var tensorIndex: TensorIndex { .range(lowerBound, upperBound + 1, step: 1) } }
extension PartialRangeFrom: TensorIndexConvertible where Bound == Int { public var tensorIndex: TensorIndex { .range(lowerBound, nil, step: 1) } }
extension PartialRangeUpTo: TensorIndexConvertible where Bound == Int { public var tensorIndex: TensorIndex { .range(nil, upperBound, step: 1) } }
extension PartialRangeThrough: TensorIndexConvertible where Bound == Int { public var tensorIndex: TensorIndex { .range(nil, upperBound + 1, step: 1) } }
extension TensorIndex: TensorIndexConvertible { public var tensorIndex: TensorIndex { self } }

extension Tensor {
    /// Subscript with ranges mixed with integers: `x[1..<3, 0]`, `x[..<2]`, `x[2...]`.
    public subscript(_ indices: any TensorIndexConvertible...) -> Tensor {
        get { index(indices.map(\.tensorIndex)) }
        set { index(indices.map(\.tensorIndex)).copy_(newValue) }
    }
}
