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
    /// `b > 0 ? a : 0`: ReLU's backward from the gradient `a` and the output `b` (PyTorch's
    /// `threshold_backward`), one pass instead of a comparison, a conversion and a product.
    case reluBackward

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
        case .reluBackward: "reluBackward"
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
    /// Sliding windows of a contiguous `[N, C, H, W]` tensor as columns (im2col):
    /// `out[n, (c·kh + i)·kw + j, y·Wo + x] = in[n, c, y·sh − ph + i·dh, x·sw − pw + j·dw]`,
    /// `padValue` outside the input.
    func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, _ out: Tensor)
    /// The adjoint of `im2col`: adds each column entry into its input position (`out` is
    /// a zero-filled contiguous `[N, C, H, W]`).
    func col2im(_ cols: Tensor, _ g: WindowGeometry, _ out: Tensor)
    /// `out[M, N] = Σ_b a[b] · b[b]` over batched `[B, M, K] · [B, K, N]` (weight gradients
    /// of convolutions: the batch sum happens inside the products).
    func matmulSumBatches(_ a: Tensor, _ b: Tensor, _ out: Tensor)
    /// 2-D max pooling of a contiguous `[N, C, H, W]` tensor into `out [N, C, Ho, Wo]`, with
    /// `indices` (int64, same shape) holding each maximum's flat position `y·W + x` in its plane.
    func maxPool2d(_ x: Tensor, _ g: WindowGeometry, _ out: Tensor, _ indices: Tensor)
    /// Adds `grad [N, C, Ho, Wo]` at `indices` into the zero-filled `out [N, C, H, W]`.
    func maxPool2dBackward(_ grad: Tensor, _ indices: Tensor, _ out: Tensor)
    /// Softmax (or log-softmax with `log`) over the last dimension of a contiguous tensor.
    func softmax(_ x: Tensor, _ out: Tensor, log: Bool)
    /// Per row of contiguous `logits [R, C]`: `lse[r] = log Σ exp(logits[r])` and
    /// `loss[r] = lse[r] − logits[r, target[r]]` (0 where `target[r] == ignoreIndex`).
    func crossEntropyRows(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor)
    /// Copies the whole of a contiguous tensor to host memory (done when it returns).
    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer)
    /// Copies host bytes into a contiguous tensor. The host bytes may be reused as soon as
    /// this returns.
    func writeBytes(_ t: Tensor, from: UnsafeRawPointer)
    func convolution2d(_ x: Tensor, _ w: Tensor, _ g: WindowGeometry, _ out: Tensor) -> Bool
    func convolution2dBackwardData(_ w: Tensor, _ dy: Tensor, _ g: WindowGeometry, _ dx: Tensor) -> Bool
    func convolution2dBackwardFilter(_ x: Tensor, _ dy: Tensor, _ g: WindowGeometry, _ dw: Tensor) -> Bool
    /// `readBytes` that may return before the copy is done when `into` is pinned memory and
    /// `nonBlocking` is set (the data is there after the device synchronises).
    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer, nonBlocking: Bool)
    /// `writeBytes` that, from pinned memory with `nonBlocking`, may read the host bytes
    /// after it returns (they must not change until the device has synchronised).
    func writeBytes(_ t: Tensor, from: UnsafeRawPointer, nonBlocking: Bool)
    /// One Adam/AdamW step of a parameter in a single pass (`FusedUpdate.adam`'s arithmetic):
    /// all tensors contiguous, of one floating dtype, on this backend's device.
    func adamStep(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ vmax: Tensor?, _ k: FusedUpdate.AdamCoefficients) -> Bool
    /// One SGD step of a parameter in a single pass (`FusedUpdate.sgd`'s arithmetic).
    func sgdStep(_ p: Tensor, _ g: Tensor, _ buf: Tensor?, _ k: FusedUpdate.SGDCoefficients) -> Bool
    /// `crossEntropyRows` with the targets checked by the backend itself (on its device,
    /// without a round trip to the host) and `valid[r]` = 1 for a counted row, 0 for an
    /// ignored one. False: the backend needs the targets checked on the host first.
    func crossEntropyRowsChecked(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor,
                                 _ valid: Tensor) -> Bool
    /// The logits' gradient of `crossEntropyRows`: `out[r, j] = (exp(logits[r, j] − lse[r]) −
    /// [j = target[r]]) · grad[r]`, 0 on ignored rows (`grad` may be a broadcast view).
    /// False: not handled (the caller composes tensor ops).
    func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor,
                                  _ out: Tensor) -> Bool
    /// Whether the index kernels (indexSelect, indexAdd, gather, scatter) take int64 index
    /// values as they are (negative ones counting from the end) and report bad ones
    /// themselves; otherwise they are checked and made non-negative on the host first.
    var checksIndices: Bool { get }
}

extension Backend {
    /// A library convolution (cuDNN on a GPU): `out = conv2d(x, w)` for contiguous
    /// `x [N, C, H, W]`, `w [O, C, kh, kw]`, `out [N, O, Ho, Wo]` with `g`'s geometry.
    /// Returns false when the backend has none for these arguments (the caller then uses
    /// im2col and matrix products).
    public func convolution2d(_ x: Tensor, _ w: Tensor, _ g: WindowGeometry, _ out: Tensor) -> Bool { false }
    /// The input gradient of `convolution2d`: `dx` from `dy` and `w` (false: not handled).
    public func convolution2dBackwardData(_ w: Tensor, _ dy: Tensor, _ g: WindowGeometry, _ dx: Tensor) -> Bool { false }
    /// The weight gradient of `convolution2d`: `dw` from `x` and `dy` (false: not handled).
    public func convolution2dBackwardFilter(_ x: Tensor, _ dy: Tensor, _ g: WindowGeometry, _ dw: Tensor) -> Bool { false }

    /// False: the backend has no fused optimizer step (the caller composes tensor ops).
    public func adamStep(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ vmax: Tensor?, _ k: FusedUpdate.AdamCoefficients) -> Bool { false }
    public func sgdStep(_ p: Tensor, _ g: Tensor, _ buf: Tensor?, _ k: FusedUpdate.SGDCoefficients) -> Bool { false }
    public var checksIndices: Bool { false }
    public func crossEntropyRowsChecked(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor,
                                        _ valid: Tensor) -> Bool { false }
    public func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor,
                                         _ out: Tensor) -> Bool { false }

    public func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer, nonBlocking: Bool) { readBytes(t, into: into) }
    public func writeBytes(_ t: Tensor, from: UnsafeRawPointer, nonBlocking: Bool) { writeBytes(t, from: from) }
}
