import EmberCPU

/// An n-dimensional array on a device, with define-by-run autograd.
///
///     let x = Tensor([[1, 2], [3, 4]] as [[Float]], requiresGrad: true)
///     let y = (x * x).sum()
///     try y.backward()
///     print(x.grad!)   // tensor([[2, 4], [6, 8]])
///
/// A `Tensor` is a reference type: views share storage with their base, `.grad`
/// accumulates on the same object, and in-place ops update it where it stands.
public final class Tensor {
    /// The buffer this tensor views.
    @exclusivity(unchecked) public internal(set) var storage: Storage
    /// Shape, strides and offset over `storage`.
    @exclusivity(unchecked) public internal(set) var layout: Layout
    /// The element type; changes only through `convertData(to:)` (a module's `to(dtype)`).
    @exclusivity(unchecked) public internal(set) var dtype: DType

    /// The node that produced this tensor (nil for leaves and tensors outside the graph).
    @exclusivity(unchecked) public internal(set) var gradFn: Node?
    /// The accumulated gradient of a leaf (or of a tensor that called `retainGrad()`).
    @exclusivity(unchecked) public var grad: Tensor?
    @exclusivity(unchecked) var leafRequiresGrad = false
    /// Hooks that see (and may replace) the gradient of this leaf before it accumulates.
    var leafHooks: [(Tensor) throws -> Tensor?] = []
    /// A Swift scalar wrapped as a tensor (ranks lowest in type promotion).
    @exclusivity(unchecked) var isWrappedNumber = false
    /// The tensor this one is a view of, if any.
    @exclusivity(unchecked) var viewBase: Tensor?

    init(storage: Storage, layout: Layout, dtype: DType) {
        self.storage = storage
        self.layout = layout
        self.dtype = dtype
    }

    /// An uninitialised contiguous tensor. `like`, when it is a contiguous layout of the
    /// same shape, lends its strides array (saves an allocation on the hot path).
    init(uninitialized shape: [Int], dtype: DType, device: Device = .cpu, like: Layout? = nil) {
        var n = 1
        for s in shape { n *= s }
        self.storage = device.backend.allocate(bytes: n * dtype.itemSize, device: device)
        if let like, like.shape == shape, like.hasRowMajorStrides {
            self.layout = Layout(shape: shape, strides: like.strides, offset: 0)
        } else {
            self.layout = Layout(contiguous: shape)
        }
        self.dtype = dtype
    }

    public var shape: [Int] { layout.shape }
    public var strides: [Int] { layout.strides }
    public var rank: Int { layout.shape.count }
    /// Number of elements (`numel()`).
    public var count: Int { layout.count }
    public var device: Device { storage.device }
    public var isContiguous: Bool { layout.isContiguous }
    /// Size of dimension `dim` (negative counts from the end).
    public func size(_ dim: Int) -> Int { shape[checked { try normalizeDim(dim, rank, op: "size") }] }

    /// Whether autograd tracks this tensor.
    public var requiresGrad: Bool {
        get { leafRequiresGrad || gradFn != nil }
        set {
            checked {
                try require(gradFn == nil || newValue,
                            "requiresGrad: you can only change requiresGrad flags of leaf tensors; use detach()")
                try require(!newValue || dtype.isFloatingPoint,
                            "requiresGrad: only tensors of floating point dtype can require gradients (got \(dtype))")
            }
            if gradFn == nil { leafRequiresGrad = newValue }
        }
    }

    /// Sets `requiresGrad` and returns `self`, like `requires_grad_()`.
    @discardableResult
    public func requiringGrad(_ flag: Bool = true) -> Tensor {
        requiresGrad = flag
        return self
    }

    /// A leaf: created by the user, not by a recorded op.
    public var isLeaf: Bool { gradFn == nil }

    /// A tensor sharing this one's storage, outside the graph.
    public func detach() -> Tensor {
        let t = Tensor(storage: storage, layout: layout, dtype: dtype)
        return t
    }

    /// A view of this tensor with another layout (same storage); autograd is the caller's.
    func makeView(_ layout: Layout) -> Tensor {
        let t = Tensor(storage: storage, layout: layout, dtype: dtype)
        t.viewBase = viewBase ?? self
        return t
    }
}

// MARK: - Scalars that tensors are built from and read back into

/// A Swift type that maps onto an Ember dtype.
public protocol TensorScalar {
    static var dtype: DType { get }
    /// Stores `self` converted to `dtype` at element `index` of `base`.
    func store(to base: UnsafeMutableRawPointer, at index: Int, as dtype: DType)
    /// Loads element `index` of `base` (of dtype `dtype`) converted to `Self`.
    static func load(from base: UnsafeRawPointer, at index: Int, as dtype: DType) -> Self
}

/// Reads any element as Double (used for printing, `item()` and scalar readback).
@inline(__always)
func loadDouble(_ base: UnsafeRawPointer, _ i: Int, _ d: DType) -> Double {
    switch d {
    case .bool: return base.load(fromByteOffset: i, as: Bool.self) ? 1 : 0
    case .uint8: return Double(base.load(fromByteOffset: i, as: UInt8.self))
    case .int32: return Double(base.load(fromByteOffset: i * 4, as: Int32.self))
    case .int64: return Double(base.load(fromByteOffset: i * 8, as: Int64.self))
    case .float16: return Double(HalfConversion.halfToFloat(base.load(fromByteOffset: i * 2, as: UInt16.self)))
    case .bfloat16: return Double(HalfConversion.bfloatToFloat(base.load(fromByteOffset: i * 2, as: UInt16.self)))
    case .float32: return Double(base.load(fromByteOffset: i * 4, as: Float.self))
    case .float64: return base.load(fromByteOffset: i * 8, as: Double.self)
    }
}

@inline(__always)
func loadInt64(_ base: UnsafeRawPointer, _ i: Int, _ d: DType) -> Int64 {
    switch d {
    case .int64: return base.load(fromByteOffset: i * 8, as: Int64.self)
    case .int32: return Int64(base.load(fromByteOffset: i * 4, as: Int32.self))
    case .uint8: return Int64(base.load(fromByteOffset: i, as: UInt8.self))
    case .bool: return base.load(fromByteOffset: i, as: Bool.self) ? 1 : 0
    default:
        let v = loadDouble(base, i, d)
        return v.isFinite ? Int64(v) : 0
    }
}

@inline(__always)
func storeDouble(_ v: Double, _ base: UnsafeMutableRawPointer, _ i: Int, _ d: DType) {
    switch d {
    case .bool: base.storeBytes(of: v != 0, toByteOffset: i, as: Bool.self)
    case .uint8: base.storeBytes(of: UInt8(truncatingIfNeeded: Int64(v)), toByteOffset: i, as: UInt8.self)
    case .int32: base.storeBytes(of: Int32(truncatingIfNeeded: Int64(v)), toByteOffset: i * 4, as: Int32.self)
    case .int64: base.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self)
    case .float16: base.storeBytes(of: HalfConversion.floatToHalf(Float(v)), toByteOffset: i * 2, as: UInt16.self)
    case .bfloat16: base.storeBytes(of: HalfConversion.floatToBFloat(Float(v)), toByteOffset: i * 2, as: UInt16.self)
    case .float32: base.storeBytes(of: Float(v), toByteOffset: i * 4, as: Float.self)
    case .float64: base.storeBytes(of: v, toByteOffset: i * 8, as: Double.self)
    }
}

@inline(__always)
func storeInt64(_ v: Int64, _ base: UnsafeMutableRawPointer, _ i: Int, _ d: DType) {
    switch d {
    case .int64: base.storeBytes(of: v, toByteOffset: i * 8, as: Int64.self)
    case .int32: base.storeBytes(of: Int32(truncatingIfNeeded: v), toByteOffset: i * 4, as: Int32.self)
    case .uint8: base.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
    case .bool: base.storeBytes(of: v != 0, toByteOffset: i, as: Bool.self)
    default: storeDouble(Double(v), base, i, d)
    }
}

extension Float: TensorScalar {
    public static var dtype: DType { .float32 }
    public func store(to b: UnsafeMutableRawPointer, at i: Int, as d: DType) { storeDouble(Double(self), b, i, d) }
    public static func load(from b: UnsafeRawPointer, at i: Int, as d: DType) -> Float { Float(loadDouble(b, i, d)) }
}
extension Double: TensorScalar {
    public static var dtype: DType { .float64 }
    public func store(to b: UnsafeMutableRawPointer, at i: Int, as d: DType) { storeDouble(self, b, i, d) }
    public static func load(from b: UnsafeRawPointer, at i: Int, as d: DType) -> Double { loadDouble(b, i, d) }
}
extension Int: TensorScalar {
    public static var dtype: DType { .int64 }
    public func store(to b: UnsafeMutableRawPointer, at i: Int, as d: DType) { storeInt64(Int64(self), b, i, d) }
    public static func load(from b: UnsafeRawPointer, at i: Int, as d: DType) -> Int { Int(loadInt64(b, i, d)) }
}
extension Int64: TensorScalar {
    public static var dtype: DType { .int64 }
    public func store(to b: UnsafeMutableRawPointer, at i: Int, as d: DType) { storeInt64(self, b, i, d) }
    public static func load(from b: UnsafeRawPointer, at i: Int, as d: DType) -> Int64 { loadInt64(b, i, d) }
}
extension Int32: TensorScalar {
    public static var dtype: DType { .int32 }
    public func store(to b: UnsafeMutableRawPointer, at i: Int, as d: DType) { storeInt64(Int64(self), b, i, d) }
    public static func load(from b: UnsafeRawPointer, at i: Int, as d: DType) -> Int32 { Int32(truncatingIfNeeded: loadInt64(b, i, d)) }
}
extension UInt8: TensorScalar {
    public static var dtype: DType { .uint8 }
    public func store(to b: UnsafeMutableRawPointer, at i: Int, as d: DType) { storeInt64(Int64(self), b, i, d) }
    public static func load(from b: UnsafeRawPointer, at i: Int, as d: DType) -> UInt8 { UInt8(truncatingIfNeeded: loadInt64(b, i, d)) }
}
extension Bool: TensorScalar {
    public static var dtype: DType { .bool }
    public func store(to b: UnsafeMutableRawPointer, at i: Int, as d: DType) { storeInt64(self ? 1 : 0, b, i, d) }
    public static func load(from b: UnsafeRawPointer, at i: Int, as d: DType) -> Bool { loadDouble(b, i, d) != 0 }
}
