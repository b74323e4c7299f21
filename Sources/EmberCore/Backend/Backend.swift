/// The closed op table: the primitives every device backend implements. Public ops check
/// their arguments, compute output layouts and dtypes, and call one of these.
///
/// Nothing here has a default: adding a primitive (or a case to one of the op enums) makes
/// the compiler list every backend, and every `switch` in it, that must handle it. Kernel
/// names and cache keys come from the enums' cases (`UnaryKind.name`, `rawValue`), never
/// from hand-kept tables.

/// Elementwise functions of one tensor. Ops with parameters carry them; `kind` is the op
/// without them (what kernels are named and keyed by).
public enum UnaryOp: Equatable, Sendable {
    case neg, abs, sign, exp, log, log1p, expm1, sqrt, rsqrt, sin, cos, tanh, sigmoid, relu
    case gelu, geluTanh, silu, erf, reciprocal, square, floor, ceil, round, logicalNot
    case tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, trunc, erfc, exp2, log2, log10
    case softplus(beta: Double, threshold: Double)
    case leakyRelu(slope: Double)
    case powScalar(Double)
    case clamp(min: Double?, max: Double?)

    public var kind: UnaryKind {
        switch self {
        case .neg: .neg
        case .abs: .abs
        case .sign: .sign
        case .exp: .exp
        case .log: .log
        case .log1p: .log1p
        case .expm1: .expm1
        case .sqrt: .sqrt
        case .rsqrt: .rsqrt
        case .sin: .sin
        case .cos: .cos
        case .tanh: .tanh
        case .sigmoid: .sigmoid
        case .relu: .relu
        case .gelu: .gelu
        case .geluTanh: .geluTanh
        case .silu: .silu
        case .erf: .erf
        case .reciprocal: .reciprocal
        case .square: .square
        case .floor: .floor
        case .ceil: .ceil
        case .round: .round
        case .logicalNot: .logicalNot
        case .tan: .tan
        case .asin: .asin
        case .acos: .acos
        case .atan: .atan
        case .sinh: .sinh
        case .cosh: .cosh
        case .asinh: .asinh
        case .acosh: .acosh
        case .atanh: .atanh
        case .trunc: .trunc
        case .erfc: .erfc
        case .exp2: .exp2
        case .log2: .log2
        case .log10: .log10
        case .softplus: .softplus
        case .leakyRelu: .leakyRelu
        case .powScalar: .powScalar
        case .clamp: .clamp
        }
    }

    /// The op's two scalar parameters as kernels take them (0 where it has none; clamp's
    /// missing bounds are ∓∞).
    public var parameters: (Double, Double) {
        switch self {
        case .softplus(let beta, let threshold): (beta, threshold)
        case .leakyRelu(let slope): (slope, 0)
        case .powScalar(let e): (e, 0)
        case .clamp(let lo, let hi): (lo ?? -.infinity, hi ?? .infinity)
        case .neg, .abs, .sign, .exp, .log, .log1p, .expm1, .sqrt, .rsqrt, .sin, .cos, .tanh, .sigmoid, .relu,
             .gelu, .geluTanh, .silu, .erf, .reciprocal, .square, .floor, .ceil, .round, .logicalNot,
             .tan, .asin, .acos, .atan, .sinh, .cosh, .asinh, .acosh, .atanh, .trunc, .erfc, .exp2, .log2, .log10: (0, 0)
        }
    }

    /// Ops that only exist for floating point (integer inputs are promoted first).
    var needsFloat: Bool { kind.needsFloat }
}

/// `UnaryOp` without its parameters, one case per kernel.
public enum UnaryKind: Int, CaseIterable, Sendable {
    case neg, abs, sign, exp, log, log1p, expm1, sqrt, rsqrt, sin, cos, tanh, sigmoid, relu
    case gelu, geluTanh, silu, erf, reciprocal, square, floor, ceil, round, logicalNot
    case tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, trunc, erfc, exp2, log2, log10
    case softplus, leakyRelu, powScalar, clamp

    private static let names = allCases.map { String(describing: $0) }
    /// The case's name (`exp`, `geluTanh`): kernel names and messages.
    public var name: String { UnaryKind.names[rawValue] }

    /// Ops that only exist for floating point (integer inputs are promoted first).
    public var needsFloat: Bool {
        switch self {
        case .neg, .abs, .sign, .relu, .square, .floor, .ceil, .round, .logicalNot, .clamp, .trunc: false
        case .exp, .log, .log1p, .expm1, .sqrt, .rsqrt, .sin, .cos, .tanh, .sigmoid, .gelu, .geluTanh, .silu, .erf,
             .reciprocal, .softplus, .leakyRelu, .powScalar, .tan, .asin, .acos, .atan, .sinh, .cosh, .asinh, .acosh,
             .atanh, .erfc, .exp2, .log2, .log10: true
        }
    }
}

/// Elementwise functions of two tensors.
public enum BinaryOp: Int, CaseIterable, Sendable {
    case add, sub, mul, div, pow, maximum, minimum
    case eq, ne, lt, le, gt, ge
    case logicalAnd, logicalOr
    /// C's `atan2`, `hypot`, `copysign`; `fmod` (the remainder with the dividend's sign),
    /// `remainder` (the divisor's sign, Python's `%`), `floorDivide` (`⌊a / b⌋`, computed as
    /// PyTorch does so that `a == b · floorDivide(a, b) + remainder(a, b)` holds in floats).
    case atan2, hypot, copysign, fmod, remainder, floorDivide
    /// `b > 0 ? a : 0`: ReLU's backward from the gradient `a` and the output `b` (PyTorch's
    /// `threshold_backward`), one pass instead of a comparison, a conversion and a product.
    case reluBackward

    private static let names = allCases.map { String(describing: $0) }
    /// The case's name (`add`, `logicalAnd`): kernel names and messages.
    public var name: String { BinaryOp.names[rawValue] }

    /// Ops whose result is a bool tensor.
    public var isPredicate: Bool {
        switch self {
        case .eq, .ne, .lt, .le, .gt, .ge, .logicalAnd, .logicalOr: true
        case .add, .sub, .mul, .div, .pow, .maximum, .minimum, .reluBackward, .atan2, .hypot, .copysign, .fmod,
             .remainder, .floorDivide: false
        }
    }

    /// Ops that only exist for floating point (integer inputs are promoted first).
    public var needsFloat: Bool {
        switch self {
        case .atan2, .hypot, .copysign: true
        case .add, .sub, .mul, .div, .pow, .maximum, .minimum, .eq, .ne, .lt, .le, .gt, .ge, .logicalAnd, .logicalOr,
             .reluBackward, .fmod, .remainder, .floorDivide: false
        }
    }
}

/// Inclusive scans along one dimension (`cumsum`, `cumprod`, `logcumsumexp`, and the
/// running maximum and minimum of `cummax`/`cummin`, NaN propagating).
public enum ScanOp: Int, CaseIterable, Sendable {
    case sum, prod, logSumExp, max, min

    private static let names = allCases.map { String(describing: $0) }
    public var name: String { ScanOp.names[rawValue] }
}

/// The dense matrix factorizations of `Backend.factorize`, each over a batch `[B, …]` of
/// contiguous float32/float64 matrices (computed in float64), with LAPACK's conventions.
/// Inputs and outputs by case:
/// - `lu`: A `[B, m, n]` → LU `[B, m, n]` (unit L below the diagonal, U on and above),
///   int32 pivots `[B, min(m, n)]` (1-based, LAPACK's `ipiv`), int32 info `[B]` (0, or the
///   1-based column of the first zero pivot).
/// - `cholesky`: A `[B, n, n]` (lower triangle read) → L `[B, n, n]` (zero above), int32
///   info `[B]` (0, or the order of the first leading minor that is not positive definite).
/// - `geqrf`: A `[B, m, n]` → R and the Householder vectors `[B, m, n]`, tau `[B, min(m, n)]`.
/// - `qr(complete:)`: A `[B, m, n]` → Q `[B, m, complete ? m : k]`, R `[B, complete ? m : k, n]`.
/// - `eigh`: A `[B, n, n]` (lower triangle read) → ascending eigenvalues `[B, n]`, eigenvectors
///   as columns `[B, n, n]`.
/// - `svd(full:)`: A `[B, m, n]` → U `[B, m, full ? m : k]`, descending S `[B, k]`,
///   Vh `[B, full ? n : k, n]`.
/// - `triangularSolve`: A `[B, n, n]` (the named triangle read), B `[B, n, r]` (left:
///   A X = B) or `[B, r, n]` (X A = B) → X of B's shape.
public enum Factorization: Equatable, Sendable {
    case lu, cholesky, geqrf, eigh
    case qr(complete: Bool)
    case svd(full: Bool)
    case triangularSolve(upper: Bool, left: Bool, unitDiagonal: Bool)
}

/// Reductions over some dimensions.
public enum ReduceOp: Int, CaseIterable, Sendable {
    case sum, prod, max, min, argmax, argmin

    private static let names = allCases.map { String(describing: $0) }
    public var name: String { ReduceOp.names[rawValue] }

    /// Arg reductions give int64 positions.
    public var isArg: Bool {
        switch self {
        case .argmax, .argmin: true
        case .sum, .prod, .max, .min: false
        }
    }
}

/// The geometry of 2-D sliding windows (convolution, pooling, unfold/fold).
public struct WindowGeometry: Equatable, Sendable {
    public var channels: Int, height: Int, width: Int
    public var kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)

    public init(channels: Int, height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1)) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    public var outHeight: Int { (height + 2 * padding.0 - dilation.0 * (kernel.0 - 1) - 1) / stride.0 + 1 }
    public var outWidth: Int { (width + 2 * padding.1 - dilation.1 * (kernel.1 - 1) - 1) / stride.1 + 1 }
    public var columnRows: Int { channels * kernel.0 * kernel.1 }

    public static func == (a: WindowGeometry, b: WindowGeometry) -> Bool {
        a.channels == b.channels && a.height == b.height && a.width == b.width && a.kernel == b.kernel
            && a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation
    }
}

/// A device backend. Every tensor handed to a primitive lives on the backend's device.
/// Outputs are freshly allocated contiguous tensors unless the primitive says "in place".
/// Inputs may have any strides (stride 0 = broadcast) unless the primitive says
/// "contiguous", and already have the dtype the primitive computes in (float16/bfloat16 are
/// upcast to float32 by the ops, except in `fill` and `copy`).
public protocol Backend: AnyObject {
    // MARK: memory and transfers (CPUBackend.swift; CUDABackend.swift)

    func allocate(bytes: Int, device: Device) -> Storage
    /// Copies the whole of a contiguous tensor to host memory. Without `nonBlocking` the
    /// bytes are there when it returns; with it, into pinned memory, they may arrive later
    /// (after the device synchronises).
    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer, nonBlocking: Bool)
    /// Copies host bytes into a contiguous tensor. Without `nonBlocking` the host bytes may
    /// be reused as soon as this returns; with it, from pinned memory, they must not change
    /// until the device has synchronised.
    func writeBytes(_ t: Tensor, from: UnsafeRawPointer, nonBlocking: Bool)

    // MARK: elementwise (+Elementwise)

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

    // MARK: reductions (+Reduce)

    /// Reduces `x` over `dims` into `out`, whose shape is `x`'s with those dims set to 1.
    func reduce(_ op: ReduceOp, _ x: Tensor, dims: [Int], _ out: Tensor)
    /// Softmax (or log-softmax with `log`) over the last dimension of a contiguous tensor.
    func softmax(_ x: Tensor, _ out: Tensor, log: Bool)
    /// Inclusive scan of `x` (any layout) along `dim` into contiguous `out` of `x`'s shape.
    func scan(_ op: ScanOp, _ x: Tensor, dim: Int, _ out: Tensor)
    /// Sorts every line of `x` (any layout) along `dim` into contiguous `values` and int64
    /// `indices` of `x`'s shape: stable (equal values keep their order), NaN greatest
    /// (last ascending, first descending), as PyTorch's `sort(stable: true)`.
    func sort(_ x: Tensor, dim: Int, descending: Bool, _ values: Tensor, _ indices: Tensor)

    // MARK: linear algebra (+Linalg)

    /// Batched matrix product `[B, M, K] · [B, K, N] → [B, M, N]`.
    func matmul(_ a: Tensor, _ b: Tensor, _ out: Tensor)
    /// `out[M, N] = Σ_b a[b] · b[b]` over batched `[B, M, K] · [B, K, N]` (weight gradients
    /// of convolutions: the batch sum happens inside the products).
    func matmulSumBatches(_ a: Tensor, _ b: Tensor, _ out: Tensor)
    /// `out = x·wᵀ + bias`, then ReLU with `relu` (a linear layer), for contiguous `x [M, K]`,
    /// `w [N, K]`, `bias [N]`, `out [M, N]` of one floating dtype.
    func linear(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, relu: Bool, _ out: Tensor)
    /// A factorization of every matrix of a batch (see `Factorization` for the operands).
    func factorize(_ f: Factorization, _ inputs: [Tensor], _ outputs: [Tensor])

    // MARK: indexing (+Indexing)
    // Index tensors are contiguous int64 on this device; a negative value counts from the
    // end. Every backend checks the values itself and stops with the op's message
    // ("gather: index 5 is out of bounds for dimension with size 3") on a bad one: the CPU
    // before it writes anything, a GPU at its next synchronisation.

    /// `out` = slices of contiguous `x` along `dim` picked by 1-D `index`.
    func indexSelect(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor)
    /// In place: `out[.., index[i], ..] += src[.., i, ..]` along `dim` (contiguous `out`, `src`).
    func indexAdd(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor)
    /// `out[p] = x[p with p[dim] = index[p]]` for every position `p` of `index`.
    func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor)
    /// In place: `out[p with p[dim] = index[p]] = src[p]` (or `+=`), for every `p` of `index`.
    func scatter(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor, accumulate: Bool)
    /// The elements of `x` where `mask` (same shape) is true, as a 1-D tensor.
    func maskedSelect(_ x: Tensor, _ mask: Tensor) -> Tensor

    // MARK: convolution and pooling (+Convolution)
    // Images are contiguous `[N, C, H, W]` of a floating dtype; `g` gives the windows.

    /// Sliding windows as columns (im2col):
    /// `out[n, (c·kh + i)·kw + j, y·Wo + x] = in[n, c, y·sh − ph + i·dh, x·sw − pw + j·dw]`,
    /// `padValue` outside the input.
    func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, _ out: Tensor)
    /// The adjoint of `im2col`: adds each column entry into its input position (`out` is
    /// a zero-filled `[N, C, H, W]`).
    func col2im(_ cols: Tensor, _ g: WindowGeometry, _ out: Tensor)
    /// `out [N, O, Ho, Wo] = conv2d(x, w) + bias` for `w [O, C, kh, kw]` (one group).
    func convolution2d(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ g: WindowGeometry, _ out: Tensor)
    /// The gradients of `convolution2d` from `dy [N, O, Ho, Wo]`: the input's into `dx`
    /// (when given) and the weight's into `dw` (when given), both overwritten.
    func convolution2dBackward(_ x: Tensor, _ w: Tensor, _ dy: Tensor, _ g: WindowGeometry, dx: Tensor?, dw: Tensor?)
    /// 2-D max pooling into `out [N, C, Ho, Wo]`, with `indices` (int64, same shape) holding
    /// each maximum's flat position `y·W + x` in its plane.
    func maxPool2d(_ x: Tensor, _ g: WindowGeometry, _ out: Tensor, _ indices: Tensor)
    /// Adds `grad [N, C, Ho, Wo]` at `indices` into the zero-filled `out [N, C, H, W]`.
    func maxPool2dBackward(_ grad: Tensor, _ indices: Tensor, _ out: Tensor)

    // MARK: losses (+Losses)

    /// Per row of contiguous `logits [R, C]` and int64 `target [R]`:
    /// `lse[r] = log Σ exp(logits[r])`, `loss[r] = lse[r] − logits[r, target[r]]` and
    /// `valid[r] = 1`; `loss[r]` and `valid[r]` are 0 where `target[r] == ignoreIndex`.
    /// A target outside `0..<C` stops with "crossEntropy: target … is out of bounds".
    func crossEntropyRows(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor, _ valid: Tensor)
    /// The logits' gradient: `out[r, j] = (exp(logits[r, j] − lse[r]) − [j = target[r]]) · grad[r]`,
    /// 0 on ignored rows (`grad` may be a broadcast view).
    func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor,
                                  _ out: Tensor)

    // MARK: optimizer steps (+Optim)
    // All tensors contiguous, of one floating dtype (float32 or float64), updated in place.

    /// One Adam/AdamW step of a parameter in a single pass (PyTorch's single-tensor
    /// algorithm; every backend rounds `k.derived` once to the parameter's dtype).
    func adamStep(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ vmax: Tensor?, _ k: FusedUpdate.AdamCoefficients)
    /// One SGD step of a parameter in a single pass.
    func sgdStep(_ p: Tensor, _ g: Tensor, _ buf: Tensor?, _ k: FusedUpdate.SGDCoefficients)
}
