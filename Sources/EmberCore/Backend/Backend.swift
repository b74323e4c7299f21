/// The primitives every device backend implements: a small, closed op table. Public ops
/// check their arguments, compute output layouts and dtypes, and call one of these.
/// Adding a case makes the compiler list every backend `switch` that must handle it.
public enum UnaryOp: Equatable, Sendable {
    case neg, abs, sign, exp, log, log1p, expm1, sqrt, rsqrt, sin, cos, tanh, sigmoid, relu
    case gelu, geluTanh, silu, erf, reciprocal, square, floor, ceil, round, logicalNot
    case softplus(beta: Double, threshold: Double)
    case leakyRelu(slope: Double)
    case powScalar(Double)
    case clamp(min: Double?, max: Double?)

    /// Ops that only exist for floating point (integer inputs are promoted first).
    var needsFloat: Bool {
        switch self {
        case .neg, .abs, .sign, .relu, .square, .floor, .ceil, .round, .logicalNot, .clamp: false
        default: true
        }
    }
}

public enum BinaryOp: Equatable, Sendable {
    case add, sub, mul, div, pow, maximum, minimum
    case eq, ne, lt, le, gt, ge
    case logicalAnd, logicalOr

    /// The op's name in messages (a static string: no formatting on the hot path).
    var name: String {
        switch self {
        case .add: "add"
        case .sub: "sub"
        case .mul: "mul"
        case .div: "div"
        case .pow: "pow"
        case .maximum: "maximum"
        case .minimum: "minimum"
        case .eq: "eq"
        case .ne: "ne"
        case .lt: "lt"
        case .le: "le"
        case .gt: "gt"
        case .ge: "ge"
        case .logicalAnd: "logicalAnd"
        case .logicalOr: "logicalOr"
        }
    }

    /// Ops whose result is a bool tensor.
    var isPredicate: Bool {
        switch self {
        case .eq, .ne, .lt, .le, .gt, .ge, .logicalAnd, .logicalOr: true
        default: false
        }
    }
}

public enum ReduceOp: Equatable, Sendable {
    case sum, prod, max, min, argmax, argmin
}

/// A device backend. Every tensor handed to a primitive lives on the backend's device.
/// Outputs are freshly allocated contiguous tensors unless the primitive says "in place".
/// Inputs may have any strides (stride 0 = broadcast) and already have the dtype the
/// primitive computes in.
public protocol Backend: AnyObject {
    func allocate(bytes: Int, device: Device) -> Storage
    /// Sets every element of `out` (any layout) to `value`.
    func fill(_ out: Tensor, _ value: Double)
    /// Copies `src` into `dst` (same shape, any layouts), converting dtype.
    func copy(_ src: Tensor, into dst: Tensor)
    /// `out = op(x)`; `x` has `out`'s shape.
    func unary(_ op: UnaryOp, _ x: Tensor, _ out: Tensor)
    /// `out = a op b`; `a` and `b` are views broadcast to `out`'s shape, of one dtype.
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor)
    /// `out = cond ? a : b`, all broadcast to `out`'s shape.
    func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor)
    /// Reduces `x` over `dims` into `out`, whose shape is `x`'s with those dims set to 1.
    func reduce(_ op: ReduceOp, _ x: Tensor, dims: [Int], _ out: Tensor)
    /// Batched matrix product `[B, M, K] · [B, K, N] → [B, M, N]`.
    func matmul(_ a: Tensor, _ b: Tensor, _ out: Tensor)
    /// `out` = slices of contiguous `x` along `dim` picked by int64 `index` (1-D).
    func indexSelect(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor)
    /// In place: `out[.., index[i], ..] += src[.., i, ..]` along `dim`.
    func indexAdd(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor)
    /// `out[p] = x[p with p[dim] = index[p]]` for every position `p` of `index`.
    func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor)
    /// In place: `out[p with p[dim] = index[p]] = src[p]` (or `+=`), for every `p` of `index`.
    func scatter(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor, accumulate: Bool)
    /// The elements of `x` where `mask` (same shape) is true, as a 1-D tensor.
    func maskedSelect(_ x: Tensor, _ mask: Tensor) -> Tensor
    /// Copies the whole of a contiguous tensor to host memory.
    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer)
    /// Copies host bytes into a contiguous tensor.
    func writeBytes(_ t: Tensor, from: UnsafeRawPointer)
}
