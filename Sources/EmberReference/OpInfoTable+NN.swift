import EmberCore

// PyTorch's OpInfo names, continued: the ops Ember had before the OpInfo fixtures, dtype
// methods and views' copies, factories, diagonals and scatters, searches, sorting, and the
// nn.functional distances, norms and losses. The helpers are in OpInfoTable.swift.

/// Indexing, dtype methods, factories, sorting, searching, nn.functional and losses.
/// An int or a pair (`stride=2`, `stride=(2, 1)`, `stride=[2]`).
func pair(_ c: OpCall, _ i: Int?, _ name: String, _ fallback: (Int, Int)) -> (Int, Int) {
    guard let v = c.ints(i, name) else { return fallback }
    return v.count == 1 ? (v[0], v[0]) : (v[0], v[1])
}
/// A convolution's `padding`: a number, a pair, or 'same' / 'valid'.
func paddingArg(_ c: OpCall, _ i: Int?) -> Padding {
    if case .string? = c.arg(i, "padding") { return c.string(i, "padding") == "same" ? .same : .valid }
    let p = pair(c, i, "padding", (0, 0))
    return .explicit(p.0, p.1)
}

/// `size` and `scale_factor` of the resampling ops (a number is one per spatial dimension).
func resampleSizes(_ c: OpCall) -> (size: [Int]?, scale: [Double]?) {
    let spatial = c.input.rank - 2
    let size = c.ints(1, "size").map { $0.count == 1 && spatial > 1 ? Array(repeating: $0[0], count: spatial) : $0 }
    var scale: [Double]? = nil
    switch c.arg(2, "scale_factor") {
    case .list(let l)?: scale = l.map { if case .double(let v) = $0 { v } else if case .int(let v) = $0 { Double(v) } else { fatalError("scale_factor \($0)") } }
    case .some: scale = Array(repeating: c.double(2, "scale_factor")!, count: spatial)
    case nil: break
    }
    return (size, scale)
}

let opInfoIndexingAndNN: [String: (OpCall) -> [Tensor]] = [
    "nn.functional.interpolate": { c in
        let (size, scale) = resampleSizes(c)
        let mode = InterpolationMode(rawValue: c.string(3, "mode") ?? "nearest")!
        return [interpolate(c.input, size: size, scaleFactor: scale, mode: mode, alignCorners: c.bool(4, "align_corners"),
                            recomputeScaleFactor: c.bool(5, "recompute_scale_factor"))]
    },
    "nn.functional.upsample_bilinear": { c in
        let (size, scale) = resampleSizes(c)
        return [upsampleBilinear(c.input, size: size, scaleFactor: scale)]
    },
    "nn.functional.upsample_nearest": { c in
        let (size, scale) = resampleSizes(c)
        return [upsampleNearest(c.input, size: size, scaleFactor: scale)]
    },
    // Ops Ember had before the OpInfo fixtures.
    "matmul": { c in [c.input.matmul(c.tensor(1, "other")!)] },
    "max": { c in
        if case .tensor = c.arg(1, "other") { return [Tensor.maximum(c.input, c.tensor(1, "other")!)] }
        guard let d = c.int(1, "dim") else { return [c.input.max()] }
        let r = c.input.max(dim: d, keepdim: c.bool(2, "keepdim") ?? false)
        return [r.values, r.indices]
    },
    "min": { c in
        if case .tensor = c.arg(1, "other") { return [Tensor.minimum(c.input, c.tensor(1, "other")!)] }
        guard let d = c.int(1, "dim") else { return [c.input.min()] }
        let r = c.input.min(dim: d, keepdim: c.bool(2, "keepdim") ?? false)
        return [r.values, r.indices]
    },
    "var": { c in let a = spread(c); return [c.input.variance(dims: a.dims, correction: a.correction, keepdim: a.keepdim)] },
    "std": { c in let a = spread(c); return [c.input.std(dims: a.dims, correction: a.correction, keepdim: a.keepdim)] },
    "var_mean": { c in
        let a = spread(c)
        let r = c.input.varMean(dims: a.dims, correction: a.correction, keepdim: a.keepdim)
        return [r.variance, r.mean]
    },
    "std_mean": { c in
        let a = spread(c)
        let r = c.input.stdMean(dims: a.dims, correction: a.correction, keepdim: a.keepdim)
        return [r.std, r.mean]
    },
    "squeeze": { c in
        switch c.arg(1, "dim") {
        case .list?: return [c.input.squeeze(dims: c.ints(1, "dim")!)]
        case .int?: return [c.input.squeeze(c.int(1, "dim")!)]
        default: return [c.input.squeeze()]
        }
    },
    "squeeze_copy": { c in [(c.int(1, "dim").map { c.input.squeeze($0) } ?? c.input.squeeze()).contiguous()] },
    "expand": { c in [c.input.expand(c.intsFrom(1, "size")!)] },
    "expand_copy": { c in [c.input.expand(c.intsFrom(1, "size")!).contiguous()] },
    "broadcast_to": { c in [c.input.broadcast(to: c.ints(1, "size")!)] },
    "broadcast_tensors": { c in Tensor.broadcastTensors((0..<c.tensors.count).map { c.tensor($0)! }) },
    "split": { c in
        if case .list? = c.arg(1, "split_size_or_sections") {
            return c.input.split(sizes: c.ints(1, "split_size_or_sections")!, dim: c.int(2, "dim") ?? 0)
        }
        return c.input.split(c.int(1, "split_size_or_sections")!, dim: c.int(2, "dim") ?? 0)
    },
    "split_with_sizes": { c in c.input.split(sizes: c.ints(1, "split_sizes")!, dim: c.int(2, "dim") ?? 0) },
    "split_with_sizes_copy": { c in c.input.split(sizes: c.ints(1, "split_sizes")!, dim: c.int(2, "dim") ?? 0).map { $0.contiguous() } },
    "unsafe_split": { c in c.input.split(c.int(1, "split_size")!, dim: c.int(2, "dim") ?? 0) },
    "chunk": { c in c.input.chunk(c.int(1, "chunks")!, dim: c.int(2, "dim") ?? 0) },
    "unsafe_chunk": { c in c.input.chunk(c.int(1, "chunks")!, dim: c.int(2, "dim") ?? 0) },
    "unbind": { c in c.input.unbind(dim: c.int(1, "dim") ?? 0) },
    "unbind_copy": { c in c.input.unbind(dim: c.int(1, "dim") ?? 0).map { $0.contiguous() } },
    "reshape": { c in [c.input.reshape(c.intsFrom(1, "shape")!)] },
    "view": { c in [c.input.view(c.intsFrom(1, "size")!)] },
    "view_copy": { c in [c.input.view(c.intsFrom(1, "size")!).contiguous()] },
    "gather": { c in [c.input.gather(c.int(1, "dim")!, c.tensor(2, "index")!)] },
    "scatter": { c in
        let x = c.input, d = c.int(1, "dim")!, index = c.tensor(2, "index")!
        if case .tensor = c.arg(3, "src") { return [x.scatter(d, index, c.tensor(3, "src")!)] }
        return [x.scatter(d, index, c.double(3, "value")!)]
    },
    "scatter_add": { c in [c.input.scatterAdd(c.int(1, "dim")!, c.tensor(2, "index")!, c.tensor(3, "src")!)] },
    "index_select": { c in [c.input.indexSelect(c.int(1, "dim")!, c.tensor(2, "index")!)] },
    "index_add": { c in
        let alpha = c.double(nil, "alpha") ?? 1, source = c.tensor(3, "source")!
        return [c.input.indexAdd(c.int(1, "dim")!, c.tensor(2, "index")!, alpha == 1 ? source : source * alpha)]
    },
    "masked_fill": { c in
        let x = c.input, mask = c.tensor(1, "mask")!
        if case .tensor = c.arg(2, "value") { return [x.maskedFill(mask, c.tensor(2, "value")!)] }
        return [x.maskedFill(mask, c.double(2, "value")!)]
    },
    "masked_select": { c in [c.input.maskedSelect(c.tensor(1, "mask")!)] },
    "take_along_dim": { c in [c.input.takeAlongDim(c.tensor(1, "indices")!, dim: c.int(2, "dim"))] },
    "alias_copy": unary { $0.clone() },
    "permute_copy": { c in [c.input.permute(c.intsFrom(1, "dims")!).contiguous()] },
    "t_copy": unary { $0.t().contiguous() },
    "transpose_copy": { c in [c.input.transpose(c.int(1, "dim0")!, c.int(2, "dim1")!).contiguous()] },
    "unsqueeze_copy": { c in [c.input.unsqueeze(c.int(1, "dim")!).contiguous()] },
    "diagonal_copy": { c in
        [c.input.diagonal(offset: c.int(1, "offset") ?? 0, dim1: c.int(2, "dim1") ?? 0, dim2: c.int(3, "dim2") ?? 1).contiguous()]
    },
    "narrow_copy": { c in
        [c.input.narrow(c.int(1, "dim")!, start: intOrItem(c, 2, "start"), length: c.int(3, "length")!).contiguous()]
    },
    "float": convert(.float32),
    "double": convert(.float64),
    "half": convert(.float16),
    "bfloat16": convert(.bfloat16),
    "bool": convert(.bool),
    "byte": convert(.uint8),
    "int": convert(.int32),
    "long": convert(.int64),
    // `x.to(device, dtype, non_blocking, copy)`, `x.to(dtype, ...)` or `x.to(other, ...)`; the
    // device is the input's (the fixtures compare values on whichever device runs them).
    "to": { c in
        c.memoryFormat(nil, "memory_format")
        var i = 1
        if case .string? = c.arg(1) { _ = c.string(1); i = 2 }
        let target: DType
        if case .tensor? = c.arg(i) { target = c.tensor(i)!.dtype } else { target = c.dtype(i, "dtype")! }
        _ = c.bool(i + 1, "non_blocking")
        let copy = c.bool(i + 2, "copy") ?? false
        let y = c.input.to(target)
        return [copy && y === c.input ? y.clone() : y]
    },
    "full_like": { c in
        _ = c.string(nil, "device")
        return [Tensor.fullLike(c.input, c.double(1, "fill_value")!, dtype: c.dtype(nil, "dtype"))]
    },
    "new_zeros": newTensor { Tensor.zeros($1, dtype: $2, device: $0.device) },
    "new_ones": newTensor { Tensor.ones($1, dtype: $2, device: $0.device) },
    "new_full": { c in
        _ = c.string(nil, "device")
        let x = c.input
        return [Tensor.full(c.ints(1, "size")!, c.double(2, "fill_value")!, dtype: c.dtype(nil, "dtype") ?? x.dtype, device: x.device)]
    },
    "fill": { c in [Tensor.fullLike(c.input, c.double(1, "value")!)] },
    "zero_": unary { Tensor.zerosLike($0) },
    "nn.functional.linear": { c in [linear(c.input, c.tensor(1, "weight")!, c.tensor(2, "bias"))] },
    // OpInfo's embedding is `lambda weight, idx, **kwargs: F.embedding(idx, weight, **kwargs)`.
    "nn.functional.embedding": { c in
        [embedding(c.tensor(1, "idx")!, c.input, paddingIndex: c.int(nil, "padding_idx"))]
    },
    "nn.functional.one_hot": { c in [c.input.oneHot(numClasses: c.int(1, "num_classes") ?? -1)] },
    "nn.functional.mse_loss": { c in [mseLoss(c.input, c.tensor(1, "target")!, reduction: reductionArg(c))] },
    "nn.functional.l1_loss": { c in [l1Loss(c.input, c.tensor(1, "target")!, reduction: reductionArg(c))] },
    "nn.functional.smooth_l1_loss": { c in
        [smoothL1Loss(c.input, c.tensor(1, "target")!, beta: c.double(nil, "beta") ?? 1, reduction: reductionArg(c))]
    },
    "nn.functional.huber_loss": { c in
        [huberLoss(c.input, c.tensor(1, "target")!, delta: c.double(nil, "delta") ?? 1, reduction: reductionArg(c))]
    },
    "nn.functional.binary_cross_entropy": { c in
        [binaryCrossEntropy(c.input, c.tensor(1, "target")!, weight: c.tensor(nil, "weight"), reduction: reductionArg(c))]
    },
    "nn.functional.binary_cross_entropy_with_logits": { c in
        [binaryCrossEntropyWithLogits(c.input, c.tensor(1, "target")!, weight: c.tensor(nil, "weight"),
                                      posWeight: c.tensor(nil, "pos_weight"), reduction: reductionArg(c))]
    },
    "nn.functional.kl_div": { c in
        [klDiv(c.input, c.tensor(1, "target")!, reduction: reductionArg(c), logTarget: c.bool(nil, "log_target") ?? false)]
    },
    "nn.functional.nll_loss": { c in
        [nllLoss(c.input, c.tensor(1, "target")!, weight: c.tensor(nil, "weight"), ignoreIndex: c.int(nil, "ignore_index") ?? -100,
                 reduction: reductionArg(c))]
    },
    "nn.functional.cross_entropy": { c in
        [crossEntropy(c.input, c.tensor(1, "target")!, weight: c.tensor(nil, "weight"), ignoreIndex: c.int(nil, "ignore_index") ?? -100,
                      reduction: reductionArg(c), labelSmoothing: c.double(nil, "label_smoothing") ?? 0)]
    },
    // Factories.
    "zeros": { c in [Tensor.zeros(c.intsFrom(0)!, dtype: factoryOptions(c) ?? .defaultFloat, device: c.device)] },
    "ones": { c in [Tensor.ones(c.intsFrom(0)!, dtype: factoryOptions(c) ?? .defaultFloat, device: c.device)] },
    "full": { c in
        let d = factoryOptions(c)
        let v = c.double(1, "fill_value")!
        let dtype = d ?? { if case .double? = c.arg(1, "fill_value") { return DType.defaultFloat }; if case .bool? = c.arg(1, "fill_value") { return DType.bool }; return DType.int64 }()
        return [Tensor.full(c.ints(0, "size")!, v, dtype: dtype, device: c.device)]
    },
    "arange": { c in
        let d = factoryOptions(c)
        var numbers: [Double] = []
        var integral = true
        for i in 0..<3 {
            guard let a = c.arg(i, [nil, "end", "step"][i]) else { continue }
            if case .double = a { integral = false }
            numbers.append(c.double(i, [nil, "end", "step"][i])!)
        }
        let (start, end, step) = numbers.count == 1 ? (0.0, numbers[0], 1.0) : (numbers[0], numbers[1], numbers.count > 2 ? numbers[2] : 1.0)
        return [Tensor.arange(start, end, step: step, dtype: d ?? (integral ? .int64 : .defaultFloat), device: c.device)]
    },
    "linspace": { c in
        let d = factoryOptions(c) ?? .defaultFloat
        return [Tensor.linspace(numberOrItem(c, 0, "start")!, numberOrItem(c, 1, "end")!, steps: c.int(2, "steps")!, dtype: d, device: c.device)]
    },
    "logspace": { c in
        let d = factoryOptions(c) ?? .defaultFloat
        return [Tensor.logspace(numberOrItem(c, 0, "start")!, numberOrItem(c, 1, "end")!, steps: c.int(2, "steps")!,
                                base: c.double(3, "base") ?? 10, dtype: d, device: c.device)]
    },
    "eye": { c in [Tensor.eye(c.int(0, "n")!, c.int(1, "m"), dtype: factoryOptions(c) ?? .defaultFloat, device: c.device)] },
    "scalar_tensor": { c in [Tensor.full([], c.double(0, "s")!, dtype: factoryOptions(c) ?? .defaultFloat, device: c.device)] },
    // Diagonals, scatters, splits.
    "diag": { c in [c.input.diag(diagonal: c.int(1, "diagonal") ?? 0)] },
    "diag_embed": { c in [c.input.diagEmbed(offset: c.int(1, "offset") ?? 0, dim1: c.int(2, "dim1") ?? -2, dim2: c.int(3, "dim2") ?? -1)] },
    "diagflat": { c in [c.input.diagflat(offset: c.int(1, "offset") ?? 0)] },
    "block_diag": { c in [Tensor.blockDiag((0..<c.tensors.count).map { c.tensor($0)! })] },
    "diagonal_scatter": { c in
        [c.input.diagonalScatter(c.tensor(1, "src")!, offset: c.int(2, "offset") ?? 0, dim1: c.int(3, "dim1") ?? 0, dim2: c.int(4, "dim2") ?? 1)]
    },
    "index_fill": { c in
        let x = c.input, d = c.int(1, "dim")!, index = c.tensor(2, "index")!
        if case .tensor? = c.arg(3, "value") { return [x.indexFill(d, index, c.tensor(3, "value")!)] }
        return [x.indexFill(d, index, c.double(3, "value")!)]
    },
    "index_copy": { c in [c.input.indexCopy(c.int(1, "dim")!, c.tensor(2, "index")!, c.tensor(3, "source")!)] },
    "select_scatter": { c in [c.input.selectScatter(c.tensor(1, "src")!, dim: c.int(2, "dim")!, index: c.int(3, "index")!)] },
    "slice_scatter": { c in
        [c.input.sliceScatter(c.tensor(1, "src")!, dim: c.int(2, "dim") ?? 0, start: c.int(3, "start"), end: c.int(4, "end"), step: c.int(5, "step") ?? 1)]
    },
    "masked_scatter": { c in [c.input.maskedScatter(c.tensor(1, "mask")!, c.tensor(2, "source")!)] },
    "take": { c in [c.input.take(c.tensor(1, "index")!)] },
    "nonzero": { c in c.bool(nil, "as_tuple") == true ? c.input.nonzeroTuple() : [c.input.nonzero()] },
    "argwhere": unary { $0.argwhere() },
    "tensor_split": { c in
        let (sections, indices) = splitArgument(c, 1, "indices_or_sections")
        let d = c.int(2, "dim") ?? 0
        return sections.map { c.input.tensorSplit(sections: $0, dim: d) } ?? c.input.tensorSplit(indices: indices!, dim: d)
    },
    "hsplit": { c in let a = splitArgument(c, 1, "indices_or_sections"); return c.input.hsplit(sections: a.sections, indices: a.indices) },
    "vsplit": { c in let a = splitArgument(c, 1, "indices_or_sections"); return c.input.vsplit(sections: a.sections, indices: a.indices) },
    "dsplit": { c in let a = splitArgument(c, 1, "indices_or_sections"); return c.input.dsplit(sections: a.sections, indices: a.indices) },
    "unflatten": { c in [c.input.unflatten(c.int(1, "dim")!, c.ints(2, "sizes")!)] },
    "repeat_interleave": { c in
        _ = c.int(nil, "output_size")
        let d = c.int(2, "dim")
        if case .tensor? = c.arg(1, "repeats") { return [c.input.repeatInterleave(c.tensor(1, "repeats")!, dim: d)] }
        return [c.input.repeatInterleave(c.int(1, "repeats")!, dim: d)]
    },
    "diff": { c in
        [c.input.diff(n: c.int(1, "n") ?? 1, dim: c.int(2, "dim") ?? -1, prepend: c.tensor(3, "prepend"), append: c.tensor(4, "append"))]
    },
    "meshgrid": { c in
        let ts: [Tensor]
        if case .list? = c.arg(0) { ts = c.tensorList(0) } else { ts = (0..<c.tensors.count).map { c.tensor($0)! } }
        return Tensor.meshgrid(ts, indexing: c.string(nil, "indexing") ?? "ij")
    },
    "mT": unary { $0.mT },
    "mH": unary { $0.mH },
    "T": unary { $0.T },
    "H": unary { $0.H },
    "sum_to_size": { c in [c.input.sumTo(c.intsFrom(1, "size")!)] },
    // `item()` gives a Swift number; PyTorch's fixture holds its Python number as a tensor of
    // the default dtype of its kind.
    "item": unary { Tensor.full([], $0.item(), dtype: $0.dtype.isFloatingPoint ? .defaultFloat : ($0.dtype == .bool ? .bool : .int64), device: $0.device) },
    "resolve_conj": unary { $0 },
    "resolve_neg": unary { $0 },
    "conj": unary { $0 },
    "conj_physical": unary { $0.clone() },
    "real": unary { $0 },
    // Products, norms, integration.
    "kron": { c in [Tensor.kron(c.input, c.tensor(1, "other")!)] },
    "cross": { c in [Tensor.cross(c.input, c.tensor(1, "other")!, dim: c.int(2, "dim"))] },
    "linalg.cross": { c in [Linalg.cross(c.input, c.tensor(1, "other")!, dim: c.int(2, "dim") ?? -1)] },
    "tensordot": { c in
        let a = c.input, b = c.tensor(1, "b")!
        if case .list(let l)? = c.arg(2, "dims") {
            func ints(_ v: OpArg) -> [Int] {
                switch v {
                case .list(let xs): xs.map { if case .int(let i) = $0 { i } else { fatalError("tensordot dims \($0)") } }
                case .int(let i): [i]
                default: fatalError("tensordot dims \(v)")
                }
            }
            return [Tensor.tensordot(a, b, dims: (ints(l[0]), ints(l[1])))]
        }
        return [Tensor.tensordot(a, b, dims: c.int(2, "dims") ?? 2)]
    },
    "dist": { c in [Tensor.dist(c.input, c.tensor(1, "other")!, p: c.double(2, "p") ?? 2)] },
    "trapezoid": { c in [Tensor.trapezoid(c.input, x: c.tensor(1, "x"), dx: c.double(nil, "dx") ?? 1, dim: c.int(nil, "dim") ?? -1)] },
    "trapz": { c in [Tensor.trapezoid(c.input, x: c.tensor(1, "x"), dx: c.double(nil, "dx") ?? 1, dim: c.int(nil, "dim") ?? -1)] },
    "cumulative_trapezoid": { c in
        [Tensor.cumulativeTrapezoid(c.input, x: c.tensor(1, "x"), dx: c.double(nil, "dx") ?? 1, dim: c.int(nil, "dim") ?? -1)]
    },
    "linalg.vecdot": { c in [Linalg.vecdot(c.input, c.tensor(1, "y")!, dim: c.int(nil, "dim") ?? -1)] },
    "linalg.vector_norm": { c in
        [Linalg.vectorNorm(c.input, ord: c.double(1, "ord") ?? 2, dim: c.ints(2, "dim"), keepdim: c.bool(3, "keepdim") ?? false)]
    },
    "linalg.diagonal": { c in
        [Linalg.diagonal(c.input, offset: c.int(nil, "offset") ?? 0, dim1: c.int(nil, "dim1") ?? -2, dim2: c.int(nil, "dim2") ?? -1)]
    },
    "linalg.multi_dot": { c in [Linalg.multiDot(c.tensorList(0))] },
    // Comparisons and searches.
    "isin": { c in [Tensor.isin(c.input, c.tensor(1, "test_elements")!, invert: c.bool(nil, "invert") ?? false)] },
    "isclose": { c in
        [c.input.isclose(c.tensor(1, "other")!, rtol: c.double(nil, "rtol") ?? 1e-5, atol: c.double(nil, "atol") ?? 1e-8,
                         equalNan: c.bool(nil, "equal_nan") ?? false)]
    },
    "allclose": { c in
        [c.input.allclose(c.tensor(1, "other")!, rtol: c.double(nil, "rtol") ?? 1e-5, atol: c.double(nil, "atol") ?? 1e-8,
                          equalNan: c.bool(nil, "equal_nan") ?? false)]
    },
    "equal": { c in [Tensor(scalar: c.input.equal(c.tensor(1, "other")!), device: c.input.device)] },
    "bucketize": { c in
        [Tensor.bucketize(c.input, c.tensor(1, "boundaries")!, right: c.bool(nil, "right") ?? false, outInt32: c.bool(nil, "out_int32") ?? false)]
    },
    "searchsorted": { c in
        let seq = c.input
        let values = c.operand(1, "input", like: seq)!
        return [Tensor.searchsorted(seq, values, right: c.bool(nil, "right") ?? false, side: c.string(nil, "side"),
                                    outInt32: c.bool(nil, "out_int32") ?? false, sorter: c.tensor(nil, "sorter"))]
    },
    // Sorting and selection.
    "sort": { c in
        let r = c.input.sort(dim: c.int(1, "dim") ?? -1, descending: c.bool(2, "descending") ?? false, stable: c.bool(nil, "stable") ?? false)
        return [r.values, r.indices]
    },
    "argsort": { c in [c.input.argsort(dim: c.int(1, "dim") ?? -1, descending: c.bool(2, "descending") ?? false, stable: c.bool(nil, "stable") ?? false)] },
    "msort": unary { $0.msort() },
    "topk": { c in
        let r = c.input.topk(c.int(1, "k")!, dim: c.int(2, "dim") ?? -1, largest: c.bool(3, "largest") ?? true, sorted: c.bool(4, "sorted") ?? true)
        return [r.values, r.indices]
    },
    "kthvalue": { c in
        let r = c.input.kthvalue(c.int(1, "k")!, dim: c.int(2, "dim") ?? -1, keepdim: c.bool(3, "keepdim") ?? false)
        return [r.values, r.indices]
    },
    "median": { c in
        guard let d = c.int(1, "dim") else { return [c.input.median()] }
        let r = c.input.median(dim: d, keepdim: c.bool(2, "keepdim") ?? false)
        return [r.values, r.indices]
    },
    "nanmedian": { c in
        guard let d = c.int(1, "dim") else { return [c.input.nanmedian()] }
        let r = c.input.nanmedian(dim: d, keepdim: c.bool(2, "keepdim") ?? false)
        return [r.values, r.indices]
    },
    // nn.functional without layers.
    "nn.functional.normalize": { c in [normalize(c.input, p: c.double(1, "p") ?? 2, dim: c.int(2, "dim") ?? 1, eps: c.double(3, "eps") ?? 1e-12)] },
    "nn.functional.cosine_similarity": { c in
        [cosineSimilarity(c.input, c.tensor(1, "x2")!, dim: c.int(2, "dim") ?? 1, eps: c.double(3, "eps") ?? 1e-8)]
    },
    "nn.functional.pairwise_distance": { c in
        [pairwiseDistance(c.input, c.tensor(1, "x2")!, p: c.double(2, "p") ?? 2, eps: c.double(3, "eps") ?? 1e-6, keepdim: c.bool(4, "keepdim") ?? false)]
    },
    "nn.functional.pdist": { c in [pdist(c.input, p: c.double(1, "p") ?? 2)] },
    // compute_mode only picks PyTorch's kernel (a matrix product or direct differences).
    "cdist": { c in _ = c.string(3, "compute_mode"); return [Tensor.cdist(c.input, c.tensor(1, "x2")!, p: c.double(2, "p") ?? 2)] },
    "nn.functional.pixel_shuffle": { c in [pixelShuffle(c.input, upscaleFactor: c.int(1, "upscale_factor")!)] },
    "nn.functional.pixel_unshuffle": { c in [pixelUnshuffle(c.input, downscaleFactor: c.int(1, "downscale_factor")!)] },
    "nn.functional.channel_shuffle": { c in [channelShuffle(c.input, groups: c.int(1, "groups")!)] },
    "nn.functional.prelu": { c in [c.input.prelu(c.tensor(1, "weight")!)] },
    "nn.functional.rms_norm": { c in
        [c.input.rmsNorm(c.ints(1, "normalized_shape")!, weight: c.tensor(2, "weight"), eps: c.double(3, "eps"))]
    },
    "nn.functional.local_response_norm": { c in
        [c.input.localResponseNorm(size: c.int(1, "size")!, alpha: c.double(2, "alpha") ?? 1e-4, beta: c.double(3, "beta") ?? 0.75,
                                   k: c.double(4, "k") ?? 1)]
    },
    "nn.functional.margin_ranking_loss": { c in
        [marginRankingLoss(c.input, c.tensor(1, "input2")!, c.tensor(2, "target")!, margin: c.double(nil, "margin") ?? 0, reduction: reductionArg(c))]
    },
    "nn.functional.hinge_embedding_loss": { c in
        [hingeEmbeddingLoss(c.input, c.tensor(1, "target")!, margin: c.double(nil, "margin") ?? 1, reduction: reductionArg(c))]
    },
    "nn.functional.soft_margin_loss": { c in [softMarginLoss(c.input, c.tensor(1, "target")!, reduction: reductionArg(c))] },
    "nn.functional.multilabel_soft_margin_loss": { c in
        [multilabelSoftMarginLoss(c.input, c.tensor(1, "target")!, weight: c.tensor(nil, "weight"), reduction: reductionArg(c))]
    },
    "nn.functional.cosine_embedding_loss": { c in
        [cosineEmbeddingLoss(c.input, c.tensor(1, "input2")!, c.tensor(2, "target")!, margin: c.double(nil, "margin") ?? 0, reduction: reductionArg(c))]
    },
    "nn.functional.poisson_nll_loss": { c in
        [poissonNLLLoss(c.input, c.tensor(1, "target")!, logInput: c.bool(nil, "log_input") ?? true, full: c.bool(nil, "full") ?? false,
                        eps: c.double(nil, "eps") ?? 1e-8, reduction: reductionArg(c))]
    },
    "nn.functional.gaussian_nll_loss": { c in
        [gaussianNLLLoss(c.input, c.tensor(1, "target")!, c.tensor(2, "var")!, full: c.bool(nil, "full") ?? false,
                         eps: c.double(nil, "eps") ?? 1e-6, reduction: reductionArg(c))]
    },
    "nn.functional.triplet_margin_loss": { c in
        [tripletMarginLoss(c.input, c.tensor(1, "positive")!, c.tensor(2, "negative")!, margin: c.double(nil, "margin") ?? 1,
                           p: c.double(nil, "p") ?? 2, eps: c.double(nil, "eps") ?? 1e-6, swap: c.bool(nil, "swap") ?? false,
                           reduction: reductionArg(c))]
    },
    // unique and running extremes.
    "unique": { c in
        let inverse = c.bool(nil, "return_inverse") ?? false, counts = c.bool(nil, "return_counts") ?? false
        let r = c.input.unique(sorted: c.bool(nil, "sorted") ?? true, returnInverse: inverse, returnCounts: counts, dim: c.int(nil, "dim"))
        return [r.values] + (r.inverse.map { [$0] } ?? []) + (r.counts.map { [$0] } ?? [])
    },
    "unique_consecutive": { c in
        let inverse = c.bool(nil, "return_inverse") ?? false, counts = c.bool(nil, "return_counts") ?? false
        let r = c.input.uniqueConsecutive(returnInverse: inverse, returnCounts: counts, dim: c.int(nil, "dim"))
        return [r.values] + (r.inverse.map { [$0] } ?? []) + (r.counts.map { [$0] } ?? [])
    },
    "cummax": { c in let r = c.input.cummax(dim: c.int(1, "dim")!); return [r.values, r.indices] },
    "cummin": { c in let r = c.input.cummin(dim: c.int(1, "dim")!); return [r.values, r.indices] },
    // OpInfo's einsum is `lambda tensors, equation: torch.einsum(equation, tensors)`.
    "einsum": { c in [Tensor.einsum(c.string(1, "equation")!, c.tensorList(0))] },
    // Padding, convolution, pooling, unfold.
    "nn.functional.pad": { c in
        let mode = Tensor.PadMode(rawValue: c.string(2, "mode") ?? "constant")!
        return [c.input.pad(c.ints(1, "pad")!, mode: mode, value: c.double(3, "value") ?? 0)]
    },
    "constant_pad_nd": { c in [c.input.pad(c.ints(1, "pad")!, mode: .constant, value: c.double(2, "value") ?? 0)] },
    "nn.functional.conv1d": { c in
        let padding: Padding
        switch paddingArg(c, 4) {
        case .explicit(let p, _): padding = .explicit(0, p)
        case let other: padding = other
        }
        return [conv1d(c.input, c.tensor(1, "weight")!, c.tensor(2, "bias"), stride: pair(c, 3, "stride", (1, 1)).0, padding: padding,
                       dilation: pair(c, 5, "dilation", (1, 1)).0, groups: c.int(6, "groups") ?? 1)]
    },
    "nn.functional.conv2d": { c in
        [conv2d(c.input, c.tensor(1, "weight")!, c.tensor(2, "bias"), stride: pair(c, 3, "stride", (1, 1)), padding: paddingArg(c, 4),
                dilation: pair(c, 5, "dilation", (1, 1)), groups: c.int(6, "groups") ?? 1)]
    },
    "nn.functional.conv_transpose2d": { c in
        [convTranspose2d(c.input, c.tensor(1, "weight")!, c.tensor(2, "bias"), stride: pair(c, 3, "stride", (1, 1)),
                         padding: pair(c, 4, "padding", (0, 0)), outputPadding: pair(c, 5, "output_padding", (0, 0)),
                         dilation: pair(c, 7, "dilation", (1, 1)), groups: c.int(6, "groups") ?? 1)]
    },
    // A None in output_size keeps that dimension's size.
    "nn.functional.adaptive_avg_pool2d": { c in
        let x = c.input
        var size: (Int, Int)
        if case .list(let l)? = c.arg(1, "output_size") {
            func at(_ k: Int, _ d: Int) -> Int { if case .int(let v) = l[k] { v } else { x.shape[x.rank - 2 + d] } }
            size = (at(0, 0), at(l.count > 1 ? 1 : 0, 1))
        } else {
            let v = c.int(1, "output_size")!
            size = (v, v)
        }
        return [adaptiveAvgPool2d(x, outputSize: size)]
    },
    "nn.functional.unfold": { c in
        [c.input.unfold(kernel: pair(c, 1, "kernel_size", (1, 1)), dilation: pair(c, 2, "dilation", (1, 1)),
                        padding: pair(c, 3, "padding", (0, 0)), stride: pair(c, 4, "stride", (1, 1)))]
    },
]
