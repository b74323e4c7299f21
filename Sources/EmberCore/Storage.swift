import EmberCPU
import Foundation

/// A device buffer shared by a tensor and its views, with the version counter that
/// in-place operations bump (PyTorch's rule: backward refuses tensors that changed
/// after autograd saved them).
public final class Storage {
    public let device: Device
    public let byteCount: Int
    public let data: UnsafeMutableRawPointer
    /// Whether the host may read and write `data` (CPU memory, or a device backend whose
    /// memory is host memory); CPU kernels refuse storage that is not.
    public let isHostAccessible: Bool
    /// Bumped by every in-place write.
    @exclusivity(unchecked) public internal(set) var version: Int = 0
    private let deallocator: ((UnsafeMutableRawPointer) -> Void)?

    private let cachedCapacity: Int

    /// `byteCount` uninitialised bytes on the CPU, 64-byte aligned, from the caching allocator.
    init(cpuBytes byteCount: Int) {
        self.device = .cpu
        self.byteCount = byteCount
        self.isHostAccessible = true
        let block = CPUAllocator.shared.allocate(byteCount)
        self.data = block.pointer
        self.cachedCapacity = block.capacity
        self.deallocator = nil
    }

    /// Wraps memory owned elsewhere (device backends); `deallocator` runs on deinit.
    public init(device: Device, data: UnsafeMutableRawPointer, byteCount: Int, hostAccessible: Bool? = nil,
                deallocator: @escaping (UnsafeMutableRawPointer) -> Void) {
        self.device = device
        self.isHostAccessible = hostAccessible ?? (device == .cpu)
        self.data = data
        self.byteCount = byteCount
        self.deallocator = deallocator
        self.cachedCapacity = 0
    }

    deinit {
        if let deallocator { deallocator(data) } else { CPUAllocator.shared.free(data, capacity: cachedCapacity) }
    }

    @inline(__always) func bumpVersion() { version &+= 1 }
}

extension Tensor {
    /// The address of the first element of a contiguous tensor in host-addressable memory
    /// (for native libraries such as MPI). The storage lives as long as the tensor does.
    /// Writers must call `markModified()` afterwards so that autograd's version rule holds.
    public var contiguousDataPointer: UnsafeMutableRawPointer {
        checked { try require(isContiguous, "contiguousDataPointer: tensor of shape \(fmt(shape)) is not contiguous") }
        return storage.data + layout.offset * dtype.itemSize
    }

    /// Records an in-place write made through `contiguousDataPointer`.
    public func markModified() { storage.bumpVersion() }
}

extension Tensor {
    /// A contiguous tensor over `storage` (device backends and pinned memory build their
    /// tensors with it).
    public convenience init(storage: Storage, shape: [Int], dtype: DType) {
        checked {
            try require(shape.reduce(1, *) * dtype.itemSize <= storage.byteCount,
                        "Tensor(storage:): shape \(fmt(shape)) of \(dtype) needs more than the storage's \(storage.byteCount) bytes")
        }
        self.init(storage: storage, layout: Layout(contiguous: shape), dtype: dtype)
    }
}
