import EmberCore
import EmberNN

// PyTorch's OpInfo names of nn.functional's norms, statistics, combinatorics and
// torch.signal.windows in Ember's API.

/// A window function's sample: `M` as the input, then `sym`, `dtype` and its own parameters.
func window(_ f: @escaping (OpCall, Int, Bool, DType) -> Tensor) -> (OpCall) -> [Tensor] {
    { c in
        let M = c.int(0)!
        let dtype = factoryOptions(c) ?? .defaultFloat
        return [f(c, M, c.bool(nil, "sym") ?? true, dtype)]
    }
}

func maxPoolAdapter(_ spatial: Int) -> (OpCall) -> [Tensor] {
    { c in
        let r = maxPool(c.input, spatial: spatial, kernel: c.ints(1, "kernel_size")!, stride: c.ints(2, "stride"),
                        padding: c.ints(3, "padding") ?? [0], dilation: c.ints(4, "dilation") ?? [1],
                        ceilMode: c.bool(5, "ceil_mode") ?? false)
        return (c.bool(6, "return_indices") ?? false) ? [r.values, r.indices] : [r.values]
    }
}
func avgPoolAdapter(_ spatial: Int) -> (OpCall) -> [Tensor] {
    { c in
        [avgPool(c.input, spatial: spatial, kernel: c.ints(1, "kernel_size")!, stride: c.ints(2, "stride"),
                 padding: c.ints(3, "padding") ?? [0], ceilMode: c.bool(4, "ceil_mode") ?? false,
                 countIncludePad: c.bool(5, "count_include_pad") ?? true, divisorOverride: spatial == 1 ? nil : c.int(6, "divisor_override"))]
    }
}
/// An adaptive output size: an int, or a list whose None entries keep the input's size.
func adaptiveSize(_ c: OpCall, _ spatial: Int) -> [Int] {
    let inSizes = Array(c.input.shape.suffix(spatial))
    switch c.arg(1, "output_size") {
    case .int(let v)?: return Array(repeating: v, count: spatial)
    case .list(let l)?:
        return l.enumerated().map { i, a in if case .int(let v) = a { v } else { inSizes[i] } }
    default: fatalError("output_size \(String(describing: c.arg(1, "output_size")))")
    }
}
func unpoolAdapter(_ spatial: Int) -> (OpCall) -> [Tensor] {
    { c in
        [maxUnpool(c.input, indices: c.tensor(1, "indices")!, spatial: spatial, kernel: c.ints(2, "kernel_size")!,
                   stride: c.ints(3, "stride"), padding: c.ints(4, "padding") ?? [0], outputSize: c.ints(5, "output_size"))]
    }
}

func quantileAdapter(nan: Bool) -> (OpCall) -> [Tensor] {
    { c in
        let x = c.input
        let q: Tensor
        if case .tensor = c.arg(1, "q") { q = c.tensor(1, "q")! } else { q = Tensor.full([], c.double(1, "q")!, dtype: x.dtype, device: x.device) }
        let mode = QuantileInterpolation(rawValue: c.string(nil, "interpolation") ?? "linear")!
        let dim = c.int(2, "dim"), keepdim = c.bool(3, "keepdim") ?? false
        return [nan ? x.nanquantile(q, dim: dim, keepdim: keepdim, interpolation: mode)
                    : x.quantile(q, dim: dim, keepdim: keepdim, interpolation: mode)]
    }
}

let opInfoMore: [String: (OpCall) -> [Tensor]] = [
    "quantile": quantileAdapter(nan: false),
    "nanquantile": quantileAdapter(nan: true),
    "histc": { c in [c.input.histc(bins: c.int(1, "bins") ?? 100, min: c.double(2, "min") ?? 0, max: c.double(3, "max") ?? 0)] },
    "bincount": { c in [c.input.bincount(weights: c.tensor(1, "weights"), minlength: c.int(2, "minlength") ?? 0)] },
    "nn.functional.max_pool1d": maxPoolAdapter(1),
    "nn.functional.max_pool2d": maxPoolAdapter(2),
    "nn.functional.max_pool3d": maxPoolAdapter(3),
    "nn.functional.avg_pool1d": avgPoolAdapter(1),
    "nn.functional.avg_pool2d": avgPoolAdapter(2),
    "nn.functional.avg_pool3d": avgPoolAdapter(3),
    "nn.functional.adaptive_avg_pool1d": { c in [adaptiveAvgPool(c.input, outputSize: adaptiveSize(c, 1))] },
    "nn.functional.adaptive_avg_pool3d": { c in [adaptiveAvgPool(c.input, outputSize: adaptiveSize(c, 3))] },
    "nn.functional.adaptive_max_pool1d": { c in
        let r = adaptiveMaxPool(c.input, outputSize: adaptiveSize(c, 1))
        return (c.bool(2, "return_indices") ?? false) ? [r.values, r.indices] : [r.values]
    },
    "nn.functional.adaptive_max_pool2d": { c in
        let r = adaptiveMaxPool(c.input, outputSize: adaptiveSize(c, 2))
        return (c.bool(2, "return_indices") ?? false) ? [r.values, r.indices] : [r.values]
    },
    "nn.functional.adaptive_max_pool3d": { c in
        let r = adaptiveMaxPool(c.input, outputSize: adaptiveSize(c, 3))
        return (c.bool(2, "return_indices") ?? false) ? [r.values, r.indices] : [r.values]
    },
    "nn.functional.max_unpool1d": unpoolAdapter(1),
    "nn.functional.max_unpool2d": unpoolAdapter(2),
    "nn.functional.max_unpool3d": unpoolAdapter(3),
    "nn.functional.layer_norm": { c in
        [layerNorm(c.input, c.ints(1, "normalized_shape")!, c.tensor(2, "weight"), c.tensor(3, "bias"), eps: c.double(4, "eps") ?? 1e-5)]
    },
    "nn.functional.group_norm": { c in
        [groupNorm(c.input, numGroups: c.int(1, "num_groups")!, weight: c.tensor(2, "weight"), bias: c.tensor(3, "bias"), eps: c.double(4, "eps") ?? 1e-5)]
    },
    "nn.functional.batch_norm": { c in
        [batchNorm(c.input, runningMean: c.tensor(1, "running_mean"), runningVar: c.tensor(2, "running_var"), weight: c.tensor(3, "weight"),
                   bias: c.tensor(4, "bias"), training: c.bool(5, "training") ?? false, momentum: c.double(6, "momentum") ?? 0.1,
                   eps: c.double(7, "eps") ?? 1e-5)]
    },
    "nn.functional.instance_norm": { c in
        [instanceNorm(c.input, runningMean: c.tensor(1, "running_mean"), runningVar: c.tensor(2, "running_var"), weight: c.tensor(3, "weight"),
                      bias: c.tensor(4, "bias"), useInputStats: c.bool(5, "use_input_stats") ?? true, momentum: c.double(6, "momentum") ?? 0.1,
                      eps: c.double(7, "eps") ?? 1e-5)]
    },
    "nn.functional.bilinear": { c in [bilinear(c.input, c.tensor(1, "input2")!, c.tensor(2, "weight")!, c.tensor(3, "bias"))] },
    "cov": { c in
        [Tensor.cov(c.input, correction: c.int(nil, "correction") ?? 1, fweights: c.tensor(nil, "fweights"), aweights: c.tensor(nil, "aweights"))]
    },
    "corrcoef": unary { Tensor.corrcoef($0) },
    "cartesian_prod": { c in [Tensor.cartesianProd(c.tensors.indices.map { c.tensor($0)! })] },
    "combinations": { c in [c.input.combinations(r: c.int(1, "r") ?? 2, withReplacement: c.bool(2, "with_replacement") ?? false)] },
    "renorm": { c in [c.input.renorm(p: c.double(1, "p")!, dim: c.int(2, "dim")!, maxnorm: c.double(3, "maxnorm")!)] },
    "norm": { c in
        // torch.norm: a number p is a vector norm over dim (all elements by default), 'fro'
        // the 2-norm over dim, 'nuc' the nuclear norm over two dims.
        let dims = c.ints(2, "dim"), keepdim = c.bool(3, "keepdim") ?? false
        switch c.arg(1, "p") {
        case .string("nuc")?:
            let d = dims ?? [-2, -1]
            return [Linalg.matrixNorm(c.input, ord: .nuc, dim: (d[0], d[1]), keepdim: keepdim)]
        case .string?, nil:
            return [Linalg.vectorNorm(c.input, ord: 2, dim: dims, keepdim: keepdim)]
        default:
            return [Linalg.vectorNorm(c.input, ord: c.double(1, "p")!, dim: dims, keepdim: keepdim)]
        }
    },
    "signal.windows.hann": window { _, M, sym, d in SignalWindows.hann(M, sym: sym, dtype: d) },
    "signal.windows.hamming": window { _, M, sym, d in SignalWindows.hamming(M, sym: sym, dtype: d) },
    "signal.windows.blackman": window { _, M, sym, d in SignalWindows.blackman(M, sym: sym, dtype: d) },
    "signal.windows.nuttall": window { _, M, sym, d in SignalWindows.nuttall(M, sym: sym, dtype: d) },
    "signal.windows.bartlett": window { _, M, sym, d in SignalWindows.bartlett(M, sym: sym, dtype: d) },
    "signal.windows.cosine": window { _, M, sym, d in SignalWindows.cosine(M, sym: sym, dtype: d) },
    "signal.windows.general_cosine": window { c, M, sym, d in
        SignalWindows.generalCosine(M, a: c.arg(nil, "a").map { a -> [Double] in
            if case .list(let l) = a { return l.map { if case .double(let v) = $0 { v } else if case .int(let v) = $0 { Double(v) } else { 0 } } }
            return [c.double(nil, "a")!]
        } ?? [], sym: sym, dtype: d)
    },
    "signal.windows.general_hamming": window { c, M, sym, d in SignalWindows.generalHamming(M, alpha: c.double(nil, "alpha") ?? 0.54, sym: sym, dtype: d) },
    "signal.windows.exponential": window { c, M, sym, d in
        SignalWindows.exponential(M, center: c.double(nil, "center"), tau: c.double(nil, "tau") ?? 1, sym: sym, dtype: d)
    },
    "signal.windows.gaussian": window { c, M, sym, d in SignalWindows.gaussian(M, std: c.double(nil, "std") ?? 1, sym: sym, dtype: d) },
]
