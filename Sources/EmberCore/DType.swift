/// Element types. Float16 and BFloat16 are storage types: arithmetic upcasts them to
/// Float32 and rounds the result back, as PyTorch's CPU kernels do.
public enum DType: Int, CaseIterable, Sendable, CustomStringConvertible {
    case bool, uint8, int32, int64, float16, bfloat16, float32, float64

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .bool, .uint8: 1
        case .float16, .bfloat16: 2
        case .int32, .float32: 4
        case .int64, .float64: 8
        }
    }

    public var isFloatingPoint: Bool { self == .float16 || self == .bfloat16 || self == .float32 || self == .float64 }
    public var isInteger: Bool { self == .uint8 || self == .int32 || self == .int64 }
    /// 0 = bool, 1 = integer, 2 = floating point.
    var category: Int { self == .bool ? 0 : (isFloatingPoint ? 2 : 1) }

    public var description: String {
        switch self {
        case .bool: "bool"
        case .uint8: "uint8"
        case .int32: "int32"
        case .int64: "int64"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .float32: "float32"
        case .float64: "float64"
        }
    }

    /// The default floating-point dtype (`torch.get_default_dtype()`).
    public static let defaultFloat: DType = .float32

    /// `torch.promote_types` for Ember's dtypes.
    public static func promote(_ a: DType, _ b: DType) -> DType {
        if a == b { return a }
        if a == .bool { return b }
        if b == .bool { return a }
        if a.isFloatingPoint && b.isFloatingPoint {
            if a == .float64 || b == .float64 { return .float64 }
            if a == .float32 || b == .float32 { return .float32 }
            return .float32  // float16 + bfloat16
        }
        if a.isFloatingPoint { return a }
        if b.isFloatingPoint { return b }
        // Both integers: uint8 < int32 < int64.
        return a.rawValue > b.rawValue ? a : b
    }

    /// The dtype float-valued ops (exp, division…) produce for an input of this dtype.
    var floatResult: DType { isFloatingPoint ? self : .defaultFloat }
    /// The dtype kernels compute in: float16/bfloat16 compute in float32.
    var computeType: DType { (self == .float16 || self == .bfloat16) ? .float32 : self }
}

/// How an operand takes part in type promotion (PyTorch's `ResultTypeState`): tensors
/// with dimensions outrank zero-dimensional tensors, which outrank Swift scalars, within
/// a category (bool < integer < floating point).
struct ResultType {
    private var dim: DType?
    private var zero: DType?
    private var wrapped: DType?

    mutating func add(_ t: Tensor) {
        if t.isWrappedNumber {
            // A Swift scalar: a float literal counts as the default dtype.
            let d = t.dtype.isFloatingPoint ? DType.defaultFloat : t.dtype
            wrapped = wrapped.map { DType.promote($0, d) } ?? d
        } else if t.rank == 0 {
            zero = zero.map { DType.promote($0, t.dtype) } ?? t.dtype
        } else {
            dim = dim.map { DType.promote($0, t.dtype) } ?? t.dtype
        }
    }

    private static func combine(_ higher: DType?, _ lower: DType?) -> DType? {
        guard let h = higher else { return lower }
        guard let l = lower else { return h }
        if h.isFloatingPoint { return h }
        if h == .bool || l.isFloatingPoint { return DType.promote(h, l) }
        return h
    }

    var result: DType { ResultType.combine(dim, ResultType.combine(zero, wrapped))! }

    /// The result dtype of a binary op (no array for the common case).
    @inline(__always)
    static func of2(_ a: Tensor, _ b: Tensor) -> DType {
        if a.dtype == b.dtype { return a.dtype }
        var r = ResultType()
        r.add(a)
        r.add(b)
        return r.result
    }

    static func of(_ ts: Tensor...) -> DType {
        var r = ResultType()
        for t in ts { r.add(t) }
        return r.result
    }
}
