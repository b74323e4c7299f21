// Pooling over 1, 2 or 3 spatial dimensions (`max_pool1d/2d/3d` with `ceil_mode`, dilation
// and indices, `avg_pool1d/2d/3d` with `count_include_pad` and `divisor_override`,
// `adaptive_max_pool*`, `adaptive_avg_pool1d/3d`, `max_unpool*`). A box of windows is
// separable: one dimension at a time, each output position reads the few input positions
// of its window (gathered slices), so the same code serves every rank, and the derivative
// comes from the gathers. The 2-D max pool without `ceil_mode` keeps its direct kernel.

/// The windows of a pooling op along one dimension.
struct PoolAxis {
    /// `index[t][o]`: the t-th position of output o's window (clamped into the input);
    /// `inside[t][o]`: whether that position is really inside (else it is padding).
    var index: [[Int]], inside: [[Bool]]
    /// Per output: the window's size counting padding (`avg_pool`'s count_include_pad) and
    /// counting only input positions.
    var withPadding: [Int], valid: [Int]
    var count: Int { index.first?.count ?? 0 }
}

/// PyTorch's `pooling_output_shape`: with `ceilMode` a last, partial window counts when it
/// starts inside the input or its left padding.
func poolOutputSize(_ n: Int, kernel k: Int, stride s: Int, padding p: Int, dilation d: Int, ceilMode: Bool) -> Int {
    let span = n + 2 * p - d * (k - 1) - 1 + (ceilMode ? s - 1 : 0)
    var out = (span >= 0 ? span / s : -((-span + s - 1) / s)) + 1
    if ceilMode && (out - 1) * s >= n + p { out -= 1 }
    return out
}

func poolAxis(_ n: Int, kernel k: Int, stride s: Int, padding p: Int, dilation d: Int, ceilMode: Bool) -> PoolAxis {
    let m = poolOutputSize(n, kernel: k, stride: s, padding: p, dilation: d, ceilMode: ceilMode)
    var axis = PoolAxis(index: Array(repeating: Array(repeating: 0, count: m), count: k),
                        inside: Array(repeating: Array(repeating: false, count: m), count: k),
                        withPadding: Array(repeating: 0, count: m), valid: Array(repeating: 0, count: m))
    for o in 0..<Swift.max(m, 0) {
        let start = o * s - p
        for t in 0..<k {
            let pos = start + t * d
            axis.index[t][o] = Swift.min(Swift.max(pos, 0), n - 1)
            axis.inside[t][o] = pos >= 0 && pos < n
        }
        let end = Swift.min(start + k, n + p)
        axis.withPadding[o] = end - start
        axis.valid[o] = Swift.min(end, n) - Swift.max(start, 0)
    }
    return axis
}

/// Adaptive windows: output o covers `[⌊o·n/m⌋, ⌈(o+1)·n/m⌉)`.
func adaptiveAxis(_ n: Int, output m: Int) -> PoolAxis {
    let spans = (0..<m).map { o in (o * n / m, ((o + 1) * n + m - 1) / m) }
    let width = spans.map { $0.1 - $0.0 }.max() ?? 1
    var axis = PoolAxis(index: Array(repeating: Array(repeating: 0, count: m), count: width),
                        inside: Array(repeating: Array(repeating: false, count: m), count: width),
                        withPadding: spans.map { $0.1 - $0.0 }, valid: spans.map { $0.1 - $0.0 })
    for (o, (a, b)) in spans.enumerated() {
        for t in 0..<width {
            axis.index[t][o] = Swift.min(a + t, n - 1)
            axis.inside[t][o] = a + t < b
        }
    }
    return axis
}

extension Tensor {
    /// The t-th taps of `axis` along `dim`, and a bool mask (broadcast along the others) of
    /// which are inside.
    func poolTap(_ axis: PoolAxis, _ t: Int, dim: Int) -> (Tensor, Tensor?) {
        let idx = Tensor(axis.index[t].map(Int64.init), shape: [axis.count], dtype: .int64, device: device)
        let v = indexSelect(dim, idx)
        if axis.inside[t].allSatisfy({ $0 }) { return (v, nil) }
        var shape = [Int](repeating: 1, count: rank)
        shape[dim] = axis.count
        return (v, Tensor(axis.inside[t], shape: shape, device: device))
    }

    /// Max over the windows of every axis (dims 2…), with each maximum's flat position in its
    /// plane (the first maximum in row-major order; NaN wins).
    func separableMax(_ axes: [PoolAxis]) -> (values: Tensor, indices: Tensor) {
        let spatial = Array(shape.dropFirst(2))
        var v = self
        var idx = Tensor.arange(spatial.reduce(1, *), device: device).reshape([1, 1] + spatial).expand(shape)
        for (i, axis) in axes.enumerated().reversed() {
            let dim = 2 + i
            var taps: [Tensor] = [], positions: [Tensor] = []
            for t in 0..<axis.index.count {
                let (tv, inside) = v.poolTap(axis, t, dim: dim)
                taps.append(inside.map { Tensor.where($0, tv, Tensor.fullLike(tv, -.infinity)) } ?? tv)
                positions.append(idx.poolTap(axis, t, dim: dim).0)
            }
            let best = Tensor.stack(taps, dim: 0).max(dim: 0)
            v = best.values
            idx = Tensor.stack(positions, dim: 0).gather(0, best.indices.unsqueeze(0)).squeeze(0)
        }
        return (v, idx)
    }

    /// Sums over the windows of every axis (out-of-input taps read 0).
    func separableSum(_ axes: [PoolAxis]) -> Tensor {
        var v = self
        for (i, axis) in axes.enumerated() {
            let dim = 2 + i
            var sum: Tensor? = nil
            for t in 0..<axis.index.count {
                let (tv, inside) = v.poolTap(axis, t, dim: dim)
                let term = inside.map { Tensor.where($0, tv, Tensor.zerosLike(tv)) } ?? tv
                sum = sum.map { $0 + term } ?? term
            }
            v = sum!
        }
        return v
    }
}

/// The batched `[N, C, …]` form of a pooling input (an unbatched `[C, …]` gains N = 1).
func poolInput(_ x: Tensor, spatial: Int, _ op: String) -> (Tensor, batched: Bool) {
    checked {
        try require(x.rank == spatial + 1 || x.rank == spatial + 2,
                    "\(op): Expected \(spatial + 1)D or \(spatial + 2)D (batch mode) tensor with optional 0 dim batch size for input, but got shape \(fmt(x.shape))")
        try require(x.dtype.isFloatingPoint, "\(op): expected a floating point input, got \(x.dtype)")
    }
    return x.rank == spatial + 1 ? (x.unsqueeze(0), false) : (x, true)
}

/// One value per spatial dimension from PyTorch's int-or-tuple arguments.
func perDim(_ v: [Int], _ spatial: Int, _ name: String, _ op: String) -> [Int] {
    checked { try require(v.count == 1 || v.count == spatial, "\(op): \(name) must be a single int or a tuple of \(spatial) ints, got \(v)") }
    return v.count == 1 ? Array(repeating: v[0], count: spatial) : v
}

/// Max pooling over the last 1–3 dimensions of `[N, C, …]` or `[C, …]`
/// (`torch.nn.functional.max_pool1d/2d/3d`); `stride` defaults to `kernel`. Returns the
/// maxima and, as PyTorch's `return_indices`, each one's flat position in its plane.
public func maxPool(_ x: Tensor, spatial: Int, kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0], dilation: [Int] = [1],
                    ceilMode: Bool = false) -> (values: Tensor, indices: Tensor) {
    let op = "max_pool\(spatial)d"
    let (x4, batched) = poolInput(x, spatial: spatial, op)
    let k = perDim(kernel, spatial, "kernel_size", op)
    let s = perDim(stride.map { $0.isEmpty ? kernel : $0 } ?? kernel, spatial, "stride", op)
    let p = perDim(padding, spatial, "padding", op), d = perDim(dilation, spatial, "dilation", op)
    checked {
        for i in 0..<spatial {
            try require(k[i] > 0 && s[i] > 0 && d[i] > 0, "\(op): kernel_size, stride and dilation must be greater than zero, got \(k), \(s), \(d)")
            try require(p[i] * 2 <= k[i], "\(op): pad should be at most half of effective kernel size, but got pad=\(p[i]), kernel_size=\(k[i]) and dilation=\(d[i])")
        }
    }
    let spatialShape = Array(x4.shape.dropFirst(2))
    let axes = (0..<spatial).map { poolAxis(spatialShape[$0], kernel: k[$0], stride: s[$0], padding: p[$0], dilation: d[$0], ceilMode: ceilMode) }
    checked {
        try require(axes.allSatisfy { $0.count > 0 },
                    "\(op): Given input size \(fmt(spatialShape)), calculated output size \(fmt(axes.map(\.count))) is too small")
    }
    var (v, i) = x4.count == 0
        ? (Tensor.empty(Array(x4.shape.prefix(2)) + axes.map(\.count), dtype: x4.dtype, device: x4.device),
           Tensor.empty(Array(x4.shape.prefix(2)) + axes.map(\.count), dtype: .int64, device: x4.device))
        : x4.separableMax(axes)
    if !batched { v = v.squeeze(0); i = i.squeeze(0) }
    return (v, i.contiguous())
}

/// Average pooling over the last 1–3 dimensions (`torch.nn.functional.avg_pool1d/2d/3d`):
/// `countIncludePad` divides by the window's size with padding, else by the input positions
/// it covers; `divisorOverride` replaces both.
public func avgPool(_ x: Tensor, spatial: Int, kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0], ceilMode: Bool = false,
                    countIncludePad: Bool = true, divisorOverride: Int? = nil) -> Tensor {
    let op = "avg_pool\(spatial)d"
    let (x4, batched) = poolInput(x, spatial: spatial, op)
    let k = perDim(kernel, spatial, "kernel_size", op)
    let s = perDim(stride.map { $0.isEmpty ? kernel : $0 } ?? kernel, spatial, "stride", op)
    let p = perDim(padding, spatial, "padding", op)
    checked {
        for i in 0..<spatial {
            try require(p[i] * 2 <= k[i], "\(op): pad should be at most half of effective kernel size, but got pad=\(p[i]), kernel_size=\(k[i])")
        }
        if let dv = divisorOverride { try require(dv != 0, "\(op): divisor must be not zero") }
    }
    let spatialShape = Array(x4.shape.dropFirst(2))
    let axes = (0..<spatial).map { poolAxis(spatialShape[$0], kernel: k[$0], stride: s[$0], padding: p[$0], dilation: 1, ceilMode: ceilMode) }
    let outShape = Array(x4.shape.prefix(2)) + axes.map(\.count)
    if x4.count == 0 { return Tensor.empty(batched ? outShape : Array(outShape.dropFirst()), dtype: x4.dtype, device: x4.device) }
    let sum = x4.separableSum(axes)
    var y: Tensor
    if let dv = divisorOverride {
        y = sum / Double(dv)
    } else {
        var divisor: Tensor? = nil
        for (i, axis) in axes.enumerated() {
            var shape = [Int](repeating: 1, count: x4.rank)
            shape[2 + i] = axis.count
            let counts = (countIncludePad ? axis.withPadding : axis.valid).map(Double.init)
            let t = Tensor(counts, shape: shape, dtype: x4.dtype, device: x4.device)
            divisor = divisor.map { $0 * t } ?? t
        }
        y = sum / divisor!
    }
    return batched ? y : y.squeeze(0)
}

/// Adaptive max pooling to `outputSize` (`adaptive_max_pool1d/2d/3d`), with indices.
public func adaptiveMaxPool(_ x: Tensor, outputSize: [Int]) -> (values: Tensor, indices: Tensor) {
    let spatial = outputSize.count
    let op = "adaptive_max_pool\(spatial)d"
    let (x4, batched) = poolInput(x, spatial: spatial, op)
    let spatialShape = Array(x4.shape.dropFirst(2))
    checked { try require(spatialShape.allSatisfy { $0 > 0 }, "\(op): Expected input to have non-zero size for non-batch dimensions, but input has sizes \(fmt(x.shape))") }
    let axes = zip(spatialShape, outputSize).map { adaptiveAxis($0.0, output: $0.1) }
    var (v, i) = x4.count == 0
        ? (Tensor.empty(Array(x4.shape.prefix(2)) + outputSize, dtype: x4.dtype, device: x4.device),
           Tensor.empty(Array(x4.shape.prefix(2)) + outputSize, dtype: .int64, device: x4.device))
        : x4.separableMax(axes)
    if !batched { v = v.squeeze(0); i = i.squeeze(0) }
    return (v, i.contiguous())
}

/// Adaptive average pooling to `outputSize` over 1–3 dimensions (`adaptive_avg_pool1d/3d`).
public func adaptiveAvgPool(_ x: Tensor, outputSize: [Int]) -> Tensor {
    let spatial = outputSize.count
    let op = "adaptive_avg_pool\(spatial)d"
    let (x4, batched) = poolInput(x, spatial: spatial, op)
    let spatialShape = Array(x4.shape.dropFirst(2))
    let axes = zip(spatialShape, outputSize).map { adaptiveAxis($0.0, output: $0.1) }
    if x4.count == 0 {
        let s = Array(x4.shape.prefix(2)) + outputSize
        return Tensor.empty(batched ? s : Array(s.dropFirst()), dtype: x4.dtype, device: x4.device)
    }
    var divisor: Tensor? = nil
    for (i, axis) in axes.enumerated() {
        var shape = [Int](repeating: 1, count: x4.rank)
        shape[2 + i] = axis.count
        let t = Tensor(axis.valid.map(Double.init), shape: shape, dtype: x4.dtype, device: x4.device)
        divisor = divisor.map { $0 * t } ?? t
    }
    let y = x4.separableSum(axes) / divisor!
    return batched ? y : y.squeeze(0)
}

/// The inverse of `maxPool` (`max_unpool1d/2d/3d`): each value written at its index in a
/// zero plane of `outputSize` (default `(in − 1)·stride − 2·padding + kernel`).
public func maxUnpool(_ x: Tensor, indices: Tensor, spatial: Int, kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0],
                      outputSize: [Int]? = nil) -> Tensor {
    let op = "max_unpool\(spatial)d"
    let (x4, batched) = poolInput(x, spatial: spatial, op)
    let i4 = batched ? indices : indices.unsqueeze(0)
    checked {
        try require(i4.shape == x4.shape && indices.dtype == .int64,
                    "\(op): Expected shape of indices to be same as that of the input tensor (\(fmt(x.shape))) and int64, got \(fmt(indices.shape)) \(indices.dtype)")
    }
    let k = perDim(kernel, spatial, "kernel_size", op)
    let s = perDim(stride.map { $0.isEmpty ? kernel : $0 } ?? kernel, spatial, "stride", op)
    let p = perDim(padding, spatial, "padding", op)
    let inSpatial = Array(x4.shape.dropFirst(2))
    var out = outputSize.map { Array($0.suffix(spatial)) } ?? (0..<spatial).map { (inSpatial[$0] - 1) * s[$0] - 2 * p[$0] + k[$0] }
    if out.count != spatial { out = Array(out.suffix(spatial)) }
    let (n, c) = (x4.shape[0], x4.shape[1])
    let plane = out.reduce(1, *)
    let flatIdx = i4.reshape([n, c, -1])
    checked {
        let v = flatIdx.toArray(Int64.self)
        if let bad = v.first(where: { $0 < 0 || $0 >= Int64(plane) }) {
            try require(false, "\(op): Found an invalid max index: \(bad) (output volumes are of size \(out.map(String.init).joined(separator: "x")))")
        }
    }
    let zeros = Tensor.zeros([n, c, plane], dtype: x4.dtype, device: x4.device)
    let y = zeros.scatter(2, flatIdx, x4.reshape([n, c, -1])).reshape([n, c] + out)
    return batched ? y : y.squeeze(0)
}
