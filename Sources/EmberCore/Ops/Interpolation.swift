// Resampling of images and volumes (`torch.nn.functional.interpolate` and the `upsample_*`
// spellings). Every mode PyTorch has here is separable: each spatial dimension is resampled
// in turn by a few taps per output position (gathered slices, weighted and summed), with the
// positions and weights PyTorch's kernels compute. Differentiable through the gathers.

/// How `interpolate` computes a value between input positions.
public enum InterpolationMode: String, Sendable, CaseIterable {
    case nearest, nearestExact = "nearest-exact", linear, bilinear, bicubic, trilinear, area
}

/// Resamples the spatial dimensions of `x` `[N, C, d₁, …]` (1 to 3 of them) to `size`, or to
/// `floor(dᵢ · scaleFactor[i])` (`torch.nn.functional.interpolate`). `alignCorners` (linear
/// modes only) maps the corner pixels onto each other; with a `scaleFactor` and no
/// `recomputeScaleFactor`, positions use the given factor, as PyTorch does.
public func interpolate(_ x: Tensor, size: [Int]? = nil, scaleFactor: [Double]? = nil, mode: InterpolationMode = .nearest,
                        alignCorners: Bool? = nil, recomputeScaleFactor: Bool? = nil) -> Tensor {
    let spatial = x.rank - 2
    let op = "interpolate"
    checked {
        try require(spatial >= 1 && spatial <= 3,
                    "\(op): Input Error: Only 3D, 4D and 5D input Tensors supported (got \(x.rank)D, shape \(fmt(x.shape))) for the modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact")
        try require((size == nil) != (scaleFactor == nil), "\(op): either size or scale_factor should be defined, and not both")
        if let size { try require(size.count == spatial, "\(op): Input and output must have the same number of spatial dimensions, but got input with spatial dimensions of \(fmt(Array(x.shape.dropFirst(2)))) and output size of \(fmt(size)). Please provide input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format.") }
        if let scaleFactor { try require(scaleFactor.count == spatial, "\(op): Input and scale_factor must have the same number of spatial dimensions, but got input with spatial dimensions of \(fmt(Array(x.shape.dropFirst(2)))) and scale_factor of shape \(scaleFactor).") }
        let linearModes: [InterpolationMode] = [.linear, .bilinear, .bicubic, .trilinear]
        try require(alignCorners == nil || linearModes.contains(mode),
                    "\(op): align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear")
        let needs: [InterpolationMode: Int] = [.linear: 1, .bilinear: 2, .bicubic: 2, .trilinear: 3]
        if let r = needs[mode] {
            try require(r == spatial, "\(op): Got \(x.rank)D input, but \(mode.rawValue) mode needs \(r + 2)D input")
        }
        try require(x.dtype.isFloatingPoint, "\(op): expected a floating point input, got \(x.dtype)")
    }
    let inSizes = Array(x.shape.dropFirst(2))
    let outSizes = size ?? zip(inSizes, scaleFactor!).map { Int(($0.0 == 0 ? 0 : Double($0.0) * $0.1).rounded(.down)) }
    checked {
        try require(outSizes.allSatisfy { $0 > 0 } && inSizes.allSatisfy { $0 > 0 },
                    "\(op): Input and output sizes should be greater than 0, but got input \(fmt(inSizes)) and output \(fmt(outSizes))")
    }
    // The factor positions use: PyTorch's, unless recomputed from the sizes.
    let given: [Double?] = (0..<spatial).map { i in
        guard let s = scaleFactor, recomputeScaleFactor != true else { return nil }
        return s[i]
    }
    var y = x
    for i in 0..<spatial {
        let taps = resamplingTaps(mode, input: inSizes[i], output: outSizes[i], scale: given[i], alignCorners: alignCorners ?? false)
        y = resample(y, dim: 2 + i, taps)
    }
    return y
}

/// `interpolate(x, size, scaleFactor, mode: .bilinear, alignCorners: true)`
/// (`torch.nn.functional.upsample_bilinear`).
public func upsampleBilinear(_ x: Tensor, size: [Int]? = nil, scaleFactor: [Double]? = nil) -> Tensor {
    interpolate(x, size: size, scaleFactor: scaleFactor.map { $0.count == 1 ? Array(repeating: $0[0], count: 2) : $0 },
                mode: .bilinear, alignCorners: true)
}

/// `interpolate(x, size, scaleFactor, mode: .nearest)` (`torch.nn.functional.upsample_nearest`).
public func upsampleNearest(_ x: Tensor, size: [Int]? = nil, scaleFactor: [Double]? = nil) -> Tensor {
    interpolate(x, size: size, scaleFactor: scaleFactor.map { $0.count == 1 ? Array(repeating: $0[0], count: x.rank - 2) : $0 },
                mode: .nearest)
}

/// For every output position along one dimension, the input positions it reads and their
/// weights (`taps[t].index[o]`, `taps[t].weight[o]`), as PyTorch's upsample kernels.
struct Taps {
    var index: [[Int]]
    var weight: [[Double]]?  // nil: one tap of weight 1 (nearest)
}

func resamplingTaps(_ mode: InterpolationMode, input n: Int, output m: Int, scale: Double?, alignCorners: Bool) -> Taps {
    switch mode {
    case .nearest, .nearestExact:
        // PyTorch computes these positions in float32.
        let s: Float = scale.map { $0 > 0 ? Float(1 / $0) : Float(n) / Float(m) } ?? Float(n) / Float(m)
        let idx = (0..<m).map { o -> Int in
            if mode == .nearest {
                if m == n { return o }
                if m == 2 * n { return o >> 1 }
                return Swift.min(Int((Float(o) * s).rounded(.down)), n - 1)
            }
            return Swift.min(Int(((Float(o) + 0.5) * s).rounded(.down)), n - 1)
        }
        return Taps(index: [idx], weight: nil)
    case .area:
        // Adaptive average pooling: output o averages [⌊o·n/m⌋, ⌈(o+1)·n/m⌉).
        let spans = (0..<m).map { o in (o * n / m, ((o + 1) * n + m - 1) / m) }
        let width = spans.map { $0.1 - $0.0 }.max() ?? 1
        var index = [[Int]](repeating: [Int](repeating: 0, count: m), count: width)
        var weight = [[Double]](repeating: [Double](repeating: 0, count: m), count: width)
        for (o, (a, b)) in spans.enumerated() {
            for t in 0..<(b - a) { index[t][o] = a + t; weight[t][o] = 1 / Double(b - a) }
        }
        return Taps(index: index, weight: weight)
    case .linear, .bilinear, .trilinear, .bicubic:
        let s: Double
        if alignCorners { s = m > 1 ? Double(n - 1) / Double(m - 1) : 0 } else { s = scale.map { $0 > 0 ? 1 / $0 : Double(n) / Double(m) } ?? Double(n) / Double(m) }
        func source(_ o: Int, cubic: Bool) -> Double {
            if alignCorners { return s * Double(o) }
            let v = s * (Double(o) + 0.5) - 0.5
            return !cubic && v < 0 ? 0 : v
        }
        if mode == .bicubic {
            let A = -0.75
            func c1(_ t: Double) -> Double { ((A + 2) * t - (A + 3)) * t * t + 1 }
            func c2(_ t: Double) -> Double { ((A * t - 5 * A) * t + 8 * A) * t - 4 * A }
            var index = [[Int]](repeating: [Int](repeating: 0, count: m), count: 4)
            var weight = [[Double]](repeating: [Double](repeating: 0, count: m), count: 4)
            for o in 0..<m {
                let src = source(o, cubic: true)
                let i0 = Int(src.rounded(.down)), t = src - Double(i0)
                let w = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]
                for k in 0..<4 { index[k][o] = Swift.min(Swift.max(i0 - 1 + k, 0), n - 1); weight[k][o] = w[k] }
            }
            return Taps(index: index, weight: weight)
        }
        var index = [[Int]](repeating: [Int](repeating: 0, count: m), count: 2)
        var weight = [[Double]](repeating: [Double](repeating: 0, count: m), count: 2)
        for o in 0..<m {
            let src = source(o, cubic: false)
            let i0 = Swift.min(Int(src.rounded(.down)), n - 1)
            let i1 = i0 + (i0 < n - 1 ? 1 : 0)
            let l1 = Swift.min(Swift.max(src - Double(i0), 0), 1)
            index[0][o] = i0; index[1][o] = i1
            weight[0][o] = 1 - l1; weight[1][o] = l1
        }
        return Taps(index: index, weight: weight)
    }
}

/// `Σ_t x.indexSelect(dim, index_t) · weight_t` (weights broadcast along `dim`).
func resample(_ x: Tensor, dim: Int, _ taps: Taps) -> Tensor {
    let m = taps.index[0].count
    func gathered(_ t: Int) -> Tensor {
        x.indexSelect(dim, Tensor(taps.index[t].map(Int64.init), shape: [m], dtype: .int64, device: x.device))
    }
    guard let weights = taps.weight else { return gathered(0) }
    var shape = [Int](repeating: 1, count: x.rank)
    shape[dim] = m
    var out: Tensor? = nil
    for t in 0..<taps.index.count {
        let w = Tensor(weights[t], shape: shape, dtype: x.dtype, device: x.device)
        let term = gathered(t) * w
        out = out.map { $0 + term } ?? term
    }
    return out!
}
