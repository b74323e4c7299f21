import EmberCPU
import Foundation

extension Tensor {
    /// Typed pointer to this tensor's first element (CPU only).
    @inline(__always) func ptr<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        if !storage.isHostAccessible { wrongDevice(storage.device) }
        return (storage.data + layout.offset * dtype.itemSize).assumingMemoryBound(to: T.self)
    }

    @inline(never)
    func wrongDevice(_ d: Device) -> Never {
        fatalError("Ember: a CPU kernel was given a tensor of shape \(fmt(shape)) on \(d): an op mixed devices without checking them (please report this)")
    }
}

/// Calls the closure for dtype `d`; each closure calls a generic kernel with a concrete
/// element type, so every kernel is compiled once per type (no dynamic dispatch).
@inline(__always)
func numericSwitch(_ d: DType, _ op: @autoclosure () -> String, _ f32: () -> Void, _ f64: () -> Void,
                   _ i64: () -> Void, _ i32: () -> Void, _ u8: () -> Void, _ b: () -> Void) {
    switch d {
    case .float32: f32()
    case .float64: f64()
    case .int64: i64()
    case .int32: i32()
    case .uint8: u8()
    case .bool: b()
    case .float16, .bfloat16: unsupported(op(), d)
    }
}

/// Calls the closure for a floating dtype (float32 or float64).
@inline(__always)
func floatSwitch(_ d: DType, _ op: @autoclosure () -> String, _ f32: () -> Void, _ f64: () -> Void) {
    switch d {
    case .float32: f32()
    case .float64: f64()
    case .float16, .bfloat16, .int64, .int32, .uint8, .bool: unsupported(op(), d)
    }
}

/// Kernels are generic over the element type; each call site switches on the dtype with
/// concrete types so that the optimizer compiles one specialised loop per type (an
/// existential `any CPUNumber.Type` would leave every element access dynamic).
func unsupported(_ op: String, _ d: DType) -> Never {
    fatalError("\(op): \(d) must be converted before the CPU kernel (please report this)")
}

/// The CPU backend: runs each primitive of the op table with the kernels of `EmberCPU` and
/// `CEmberKernels`. One file per op family, as in every backend:
/// `CPUBackend+Elementwise`, `+Reduce`, `+Linalg`, `+Indexing`, `+Convolution`, `+Losses`,
/// `+Optim`; this file holds memory and transfers.
public final class CPUBackend: Backend {
    public static let shared = CPUBackend()

    public func allocate(bytes: Int, device: Device) -> Storage {
        if HostMemory.pinningHere, let s = HostMemory.pinnedAllocator?(bytes) { return s }
        return Storage(cpuBytes: bytes)
    }

    public func readBytes(_ t: Tensor, into dst: UnsafeMutableRawPointer, nonBlocking: Bool) {
        memcpy(dst, t.storage.data + t.layout.offset * t.dtype.itemSize, t.count * t.dtype.itemSize)
    }

    public func writeBytes(_ t: Tensor, from src: UnsafeRawPointer, nonBlocking: Bool) {
        memcpy(t.storage.data + t.layout.offset * t.dtype.itemSize, src, t.count * t.dtype.itemSize)
    }
}
