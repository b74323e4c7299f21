import EmberCore

// PyTorch's OpInfo names (`op_db`) in Ember's API: each adapter reads a sample's arguments
// as PyTorch binds them (position or keyword) and calls Ember's op. Scripts/opinfo_table.py
// lists the same names with their Ember spelling; Scripts/op_coverage.py counts them.

func unary(_ f: @escaping (Tensor) -> Tensor) -> (OpCall) -> [Tensor] { { c in [f(c.input)] } }
func binary(_ f: @escaping (Tensor, Tensor) -> Tensor) -> (OpCall) -> [Tensor] {
    { c in [f(c.input, c.operand(1, "other", like: c.input)!)] }
}
/// `dim` and `keepdim` of a reduction (`x.sum(dim=..., keepdim=...)`).
func reduction(_ f: @escaping (Tensor, [Int]?, Bool) -> Tensor) -> (OpCall) -> [Tensor] {
    { c in [f(c.input, c.ints(1, "dim"), c.bool(2, "keepdim") ?? false)] }
}
/// The input cast to the call's `dtype` keyword, as PyTorch casts it before the op.
func castInput(_ c: OpCall, _ i: Int? = nil) -> Tensor {
    let x = c.input
    if let d = c.dtype(i, "dtype") { return x.to(d) }
    return x
}
/// An integer argument PyTorch also takes as a 0-dim tensor (`narrow`'s start).
func intOrItem(_ c: OpCall, _ i: Int, _ name: String) -> Int {
    if case .tensor = c.arg(i, name) { return Int(c.tensor(i, name)!.item()) }
    return c.int(i, name)!
}
/// `*_like` factories: dtype and device keywords (the device is the input's: the fixtures
/// compare values on whichever device runs them).
func like(_ f: @escaping (Tensor, DType?) -> Tensor) -> (OpCall) -> [Tensor] {
    { c in
        _ = c.string(nil, "device")
        return [f(c.input, c.dtype(nil, "dtype"))]
    }
}
func scaledProduct(_ f: @escaping (Tensor, Tensor, Tensor, Double, Double) -> Tensor) -> (OpCall) -> [Tensor] {
    { c in [f(c.input, c.tensor(1)!, c.tensor(2)!, c.double(nil, "beta") ?? 1, c.double(nil, "alpha") ?? 1)] }
}

/// A loss's `reduction` keyword.
func reductionArg(_ c: OpCall) -> Reduction {
    switch c.string(nil, "reduction") ?? "mean" {
    case "sum": .sum
    case "none": .none
    case "batchmean": .batchMean
    default: .mean
    }
}
/// `var`/`std` arguments: `dim`, `correction` (or the older `unbiased`), `keepdim`.
func spread(_ c: OpCall) -> (dims: [Int]?, correction: Double, keepdim: Bool) {
    var correction = 1.0
    if let unbiased = c.bool(1, "unbiased") { correction = unbiased ? 1 : 0 }
    if let k = c.double(nil, "correction") { correction = k }
    return (c.ints(nil, "dim"), correction, c.bool(nil, "keepdim") ?? false)
}
/// A dtype conversion method (`x.float()`), with its memory_format keyword.
func convert(_ d: DType) -> (OpCall) -> [Tensor] {
    { c in
        c.memoryFormat(nil, "memory_format")
        return [c.input.to(d)]
    }
}
/// `new_*` factories: the shape, then dtype and device keywords (the input's by default).
func newTensor(_ f: @escaping (Tensor, [Int], DType) -> Tensor) -> (OpCall) -> [Tensor] {
    { c in
        _ = c.string(nil, "device")
        return [f(c.input, c.ints(1, "size")!, c.dtype(nil, "dtype") ?? c.input.dtype)]
    }
}

/// A factory's `dtype` keyword (and its `device` and `requires_grad`, which do not change
/// values; the tensor is made where the case runs).
func factoryOptions(_ c: OpCall) -> DType? {
    _ = c.string(nil, "device")
    _ = c.bool(nil, "requires_grad")
    return c.dtype(nil, "dtype")
}
/// Sections (a number) or indices (a list, or a tensor: 0-dim sections, 1-D indices).
func splitArgument(_ c: OpCall, _ i: Int, _ name: String) -> (sections: Int?, indices: [Int]?) {
    switch c.arg(i, name) {
    case .list?: return (nil, c.ints(i, name))
    case .tensor?:
        let t = c.tensor(i, name)!
        return t.rank == 0 ? (Int(t.item()), nil) : (nil, t.to(.cpu).toArray(Int64.self).map { Int($0) })
    default: return (c.int(i, name), nil)
    }
}
/// A number that PyTorch also takes as a 0-dim tensor (`linspace`'s start).
func numberOrItem(_ c: OpCall, _ i: Int, _ name: String) -> Double? {
    if case .tensor? = c.arg(i, name) { return c.tensor(i, name)!.item() }
    return c.double(i, name)
}

/// Elementwise ops, reductions, scans, shape ops, products and activations.
let opInfoElementwiseAndShapes: [String: (OpCall) -> [Tensor]] = [
    // Elementwise, one tensor.
    "abs": unary { $0.abs() },
    "neg": unary { -$0 },
    "positive": unary { $0.positive() },
    "sign": unary { $0.sign() },
    "sgn": unary { $0.sgn() },
    "exp": unary { $0.exp() },
    "exp2": unary { $0.exp2() },
    "expm1": unary { $0.expm1() },
    "log": unary { $0.log() },
    "log2": unary { $0.log2() },
    "log10": unary { $0.log10() },
    "log1p": unary { $0.log1p() },
    "sqrt": unary { $0.sqrt() },
    "rsqrt": unary { $0.rsqrt() },
    "square": unary { $0.square() },
    "reciprocal": unary { $0.reciprocal() },
    "sin": unary { $0.sin() },
    "cos": unary { $0.cos() },
    "tan": unary { $0.tan() },
    "asin": unary { $0.asin() },
    "acos": unary { $0.acos() },
    "atan": unary { $0.atan() },
    "sinh": unary { $0.sinh() },
    "cosh": unary { $0.cosh() },
    "tanh": unary { $0.tanh() },
    "asinh": unary { $0.asinh() },
    "acosh": unary { $0.acosh() },
    "atanh": unary { $0.atanh() },
    "sigmoid": unary { $0.sigmoid() },
    "erf": unary { $0.erf() },
    "erfc": unary { $0.erfc() },
    "floor": unary { $0.floor() },
    "ceil": unary { $0.ceil() },
    "trunc": unary { $0.trunc() },
    "frac": unary { $0.frac() },
    "round": { c in [c.input.round(decimals: c.int(1, "decimals") ?? 0)] },
    "sinc": unary { $0.sinc() },
    "deg2rad": unary { $0.deg2rad() },
    "rad2deg": unary { $0.rad2deg() },
    "logit": { c in [c.input.logit(eps: c.double(1, "eps"))] },
    "isnan": unary { $0.isnan() },
    "isinf": unary { $0.isinf() },
    "isposinf": unary { $0.isposinf() },
    "isneginf": unary { $0.isneginf() },
    "isfinite": unary { $0.isfinite() },
    "isreal": unary { $0.isreal() },
    "signbit": unary { $0.signbit() },
    "nan_to_num": { c in [c.input.nanToNum(nan: c.double(1, "nan") ?? 0, posinf: c.double(2, "posinf"), neginf: c.double(3, "neginf"))] },
    "clamp": { c in
        let x = c.input
        return [x.clamp(min: c.operand(1, "min", like: x), max: c.operand(2, "max", like: x))]
    },
    "clamp_min": { c in [c.input.clamp(min: c.operand(1, "min", like: c.input), max: nil)] },
    "clamp_max": { c in [c.input.clamp(min: nil, max: c.operand(1, "max", like: c.input))] },
    "logical_not": unary { $0.logicalNot() },
    // Elementwise, two tensors.
    "add": { c in [c.input.add(c.operand(1, "other", like: c.input)!, alpha: c.double(nil, "alpha") ?? 1)] },
    "sub": { c in [c.input.sub(c.operand(1, "other", like: c.input)!, alpha: c.double(nil, "alpha") ?? 1)] },
    "rsub": { c in [Tensor.rsub(c.input, c.operand(1, "other", like: c.input)!, alpha: c.double(nil, "alpha") ?? 1)] },
    "mul": binary { $0 * $1 },
    "div": { c in
        let mode = c.string(nil, "rounding_mode").map { Tensor.RoundingMode(rawValue: $0)! }
        return [c.input.div(c.operand(1, "other", like: c.input)!, roundingMode: mode)]
    },
    "true_divide": binary { $0.trueDivide($1) },
    "floor_divide": binary { $0.floorDivide($1) },
    "remainder": binary { $0.remainder($1) },
    "fmod": binary { $0.fmod($1) },
    "pow": binary { $0.pow($1) },
    "float_power": binary { $0.floatPower($1) },
    "atan2": binary { Tensor.atan2($0, $1) },
    "hypot": binary { Tensor.hypot($0, $1) },
    "copysign": binary { $0.copysign($1) },
    "xlogy": binary { Tensor.xlogy($0, $1) },
    "special.xlog1py": binary { Tensor.xlog1py($0, $1) },
    "logaddexp": binary { Tensor.logaddexp($0, $1) },
    "logaddexp2": binary { Tensor.logaddexp2($0, $1) },
    "maximum": binary { Tensor.maximum($0, $1) },
    "minimum": binary { Tensor.minimum($0, $1) },
    "fmax": binary { Tensor.fmax($0, $1) },
    "fmin": binary { Tensor.fmin($0, $1) },
    "heaviside": { c in [c.input.heaviside(c.tensor(1, "values")!)] },
    "lerp": { c in
        let x = c.input, end = c.tensor(1, "end")!
        if case .tensor = c.arg(2, "weight") { return [x.lerp(end, weight: c.tensor(2, "weight")!)] }
        return [x.lerp(end, weight: c.double(2, "weight")!)]
    },
    "addcmul": { c in [c.input.addcmul(c.tensor(1)!, c.tensor(2)!, value: c.double(nil, "value") ?? 1)] },
    "addcdiv": { c in [c.input.addcdiv(c.tensor(1)!, c.tensor(2)!, value: c.double(nil, "value") ?? 1)] },
    "eq": binary { $0.eq($1) },
    "ne": binary { $0.ne($1) },
    "lt": binary { $0.lt($1) },
    "le": binary { $0.le($1) },
    "gt": binary { $0.gt($1) },
    "ge": binary { $0.ge($1) },
    "logical_and": binary { $0.logicalAnd($1) },
    "logical_or": binary { $0.logicalOr($1) },
    "logical_xor": binary { $0.logicalXor($1) },
    // OpInfo's `where` is `lambda self, condition, other: torch.where(condition, self, other)`.
    "where": { c in [Tensor.where(c.tensor(1, "condition")!, c.input, c.operand(2, "other", like: c.input)!)] },
    // Reductions.
    "sum": reduction { $0.sum(dims: $1, keepdim: $2) },
    "nansum": reduction { $0.nansum(dims: $1, keepdim: $2) },
    "mean": reduction { $0.mean(dims: $1, keepdim: $2) },
    "nanmean": reduction { $0.nanmean(dims: $1, keepdim: $2) },
    "prod": { c in [castInput(c).prod(dim: c.int(1, "dim"), keepdim: c.bool(2, "keepdim") ?? false)] },
    "amax": reduction { $0.amax(dims: $1, keepdim: $2) },
    "amin": reduction { $0.amin(dims: $1, keepdim: $2) },
    "aminmax": { c in
        let r = c.input.aminmax(dim: c.int(nil, "dim"), keepdim: c.bool(nil, "keepdim") ?? false)
        return [r.min, r.max]
    },
    "any": reduction { $0.any(dims: $1, keepdim: $2) },
    "all": reduction { $0.all(dims: $1, keepdim: $2) },
    "count_nonzero": { c in [c.input.countNonzero(dims: c.ints(1, "dim"))] },
    "logsumexp": { c in [c.input.logsumexp(dims: c.ints(1, "dim")!, keepdim: c.bool(2, "keepdim") ?? false)] },
    "argmax": { c in [c.input.argmax(dim: c.int(1, "dim"), keepdim: c.bool(2, "keepdim") ?? false)] },
    "argmin": { c in [c.input.argmin(dim: c.int(1, "dim"), keepdim: c.bool(2, "keepdim") ?? false)] },
    "softmax": { c in [castInput(c, 2).softmax(dim: c.int(1, "dim")!)] },
    "log_softmax": { c in [castInput(c, 2).logSoftmax(dim: c.int(1, "dim")!)] },
    // Scans.
    "cumsum": { c in [c.input.cumsum(dim: c.int(1, "dim")!, dtype: c.dtype(2, "dtype"))] },
    "cumprod": { c in [c.input.cumprod(dim: c.int(1, "dim")!, dtype: c.dtype(2, "dtype"))] },
    "logcumsumexp": { c in [c.input.logcumsumexp(dim: c.int(1, "dim")!)] },
    // Shape and copy.
    "tril": { c in [c.input.tril(diagonal: c.int(1, "diagonal") ?? 0)] },
    "triu": { c in [c.input.triu(diagonal: c.int(1, "diagonal") ?? 0)] },
    "flip": { c in [c.input.flip(c.ints(1, "dims")!)] },
    "fliplr": unary { $0.fliplr() },
    "flipud": unary { $0.flipud() },
    "roll": { c in [c.input.roll(c.ints(1, "shifts")!, dims: c.ints(2, "dims") ?? [])] },
    "rot90": { c in [c.input.rot90(k: c.int(1, "k") ?? 1, dims: c.ints(2, "dims") ?? [0, 1])] },
    "repeat": { c in [c.input.repeated(c.intsFrom(1)!)] },
    "tile": { c in [c.input.tile(c.ints(1, "dims")!)] },
    "movedim": { c in [c.input.movedim(c.ints(1, "source")!, c.ints(2, "destination")!)] },
    "diagonal": { c in
        [c.input.diagonal(offset: c.int(1, "offset") ?? 0, dim1: c.int(2, "dim1") ?? 0, dim2: c.int(3, "dim2") ?? 1)]
    },
    "trace": unary { $0.trace() },
    "t": unary { $0.t() },
    "transpose": { c in [c.input.transpose(c.int(1, "dim0")!, c.int(2, "dim1")!)] },
    "permute": { c in [c.input.permute(c.intsFrom(1, "dims")!)] },
    "unsqueeze": { c in [c.input.unsqueeze(c.int(1, "dim")!)] },
    "flatten": { c in [c.input.flatten(startDim: c.int(1, "start_dim") ?? 0, endDim: c.int(2, "end_dim") ?? -1)] },
    "ravel": unary { $0.ravel() },
    "narrow": { c in
        [c.input.narrow(c.int(1, "dim")!, start: intOrItem(c, 2, "start"), length: c.int(3, "length")!)]
    },
    "select": { c in [c.input.select(c.int(1, "dim")!, c.int(2, "index")!)] },
    "contiguous": unary { $0.contiguous() },
    "clone": unary { $0.clone() },
    "cat": { c in [Tensor.cat(c.tensorList(0), dim: c.int(1, "dim") ?? 0)] },
    "stack": { c in [Tensor.stack(c.tensorList(0), dim: c.int(1, "dim") ?? 0)] },
    "hstack": { c in [Tensor.hstack(c.tensorList(0))] },
    "vstack": { c in [Tensor.vstack(c.tensorList(0))] },
    "dstack": { c in [Tensor.dstack(c.tensorList(0))] },
    "column_stack": { c in [Tensor.columnStack(c.tensorList(0))] },
    "atleast_1d": { c in c.tensorList(0).map { $0.atleast1d() } },
    "atleast_2d": { c in c.tensorList(0).map { $0.atleast2d() } },
    "atleast_3d": { c in c.tensorList(0).map { $0.atleast3d() } },
    "expand_as": { c in [c.input.expand(as: c.tensor(1, "other")!)] },
    "reshape_as": { c in [c.input.reshape(as: c.tensor(1, "other")!)] },
    "view_as": { c in [c.input.view(as: c.tensor(1, "other")!)] },
    "zeros_like": like { Tensor.zerosLike($0, dtype: $1) },
    "ones_like": like { Tensor.onesLike($0, dtype: $1) },
    // Linear algebra.
    "mm": { c in [c.input.mm(c.tensor(1, "mat2")!)] },
    "bmm": { c in [c.input.bmm(c.tensor(1, "mat2")!)] },
    "mv": { c in [c.input.mv(c.tensor(1, "vec")!)] },
    "dot": { c in [c.input.dot(c.tensor(1)!)] },
    "vdot": { c in [c.input.vdot(c.tensor(1)!)] },
    "inner": { c in [Tensor.inner(c.input, c.tensor(1)!)] },
    "outer": { c in [Tensor.outer(c.input, c.tensor(1, "vec2")!)] },
    "addmm": scaledProduct { Tensor.addmm($0, $1, $2, beta: $3, alpha: $4) },
    "addmv": scaledProduct { Tensor.addmv($0, $1, $2, beta: $3, alpha: $4) },
    "addr": scaledProduct { Tensor.addr($0, $1, $2, beta: $3, alpha: $4) },
    "baddbmm": scaledProduct { Tensor.baddbmm($0, $1, $2, beta: $3, alpha: $4) },
    "addbmm": scaledProduct { Tensor.addbmm($0, $1, $2, beta: $3, alpha: $4) },
    // nn.functional.
    "nn.functional.relu": unary { $0.relu() },
    "nn.functional.relu6": unary { $0.relu6() },
    "nn.functional.elu": { c in [c.input.elu(alpha: c.double(1, "alpha") ?? 1)] },
    "nn.functional.selu": unary { $0.selu() },
    "nn.functional.celu": { c in [c.input.celu(alpha: c.double(1, "alpha") ?? 1)] },
    "nn.functional.mish": unary { $0.mish() },
    "nn.functional.hardswish": unary { $0.hardswish() },
    "nn.functional.hardsigmoid": unary { $0.hardsigmoid() },
    "nn.functional.hardtanh": { c in [c.input.hardtanh(minVal: c.double(1, "min_val") ?? -1, maxVal: c.double(2, "max_val") ?? 1)] },
    "nn.functional.logsigmoid": unary { $0.logsigmoid() },
    "nn.functional.softsign": unary { $0.softsign() },
    "nn.functional.tanhshrink": unary { $0.tanhshrink() },
    "nn.functional.softshrink": { c in [c.input.softshrink(lambda: c.double(1, "lambd") ?? 0.5)] },
    "nn.functional.hardshrink": { c in [c.input.hardshrink(lambda: c.double(1, "lambd") ?? 0.5)] },
    "nn.functional.threshold": { c in [c.input.threshold(c.double(1, "threshold")!, c.double(2, "value")!)] },
    "nn.functional.silu": unary { $0.silu() },
    "nn.functional.gelu": { c in [c.input.gelu(approximate: (c.string(nil, "approximate") ?? "none") == "tanh")] },
    "nn.functional.leaky_relu": { c in [c.input.leakyRelu(c.double(1, "negative_slope") ?? 0.01)] },
    "nn.functional.softplus": { c in
        [c.input.softplus(beta: c.double(1, "beta") ?? 1, threshold: c.double(2, "threshold") ?? 20)]
    },
    "nn.functional.glu": { c in [c.input.glu(dim: c.int(1, "dim") ?? -1)] },
    "nn.functional.softmin": { c in [castInput(c, 2).softmin(dim: c.int(1, "dim")!)] },
    "special.entr": unary { Special.entr($0) },
    "special.ndtr": unary { Special.ndtr($0) },
    "special.log_ndtr": unary { Special.logNdtr($0) },
]

/// Every OpInfo name Ember covers, with its adapter (the parts are split by family; a name
/// in two parts stops here).
public let opInfoTable: [String: (OpCall) -> [Tensor]] = [opInfoIndexingAndNN, opInfoLinalg, opInfoMore].reduce(opInfoElementwiseAndShapes) {
    $0.merging($1) { _, _ in fatalError("an OpInfo name has two adapters") }
}
