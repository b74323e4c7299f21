import EmberCore
import Foundation

/// The op table on one GPU. Each op family has one file under `Kernels/` holding its CUDA C
/// source (compiled by NVRTC on first use, one module per family and dtype) and the launch
/// code of its primitives, named as the CPU backend's `CPUBackend+<Family>.swift`:
/// `Elementwise`, `Reduce`, `Linalg` (cuBLAS), `Indexing`, `Convolution` (cuDNN or im2col),
/// `Losses`, `Optim`. This file holds memory and transfers.
final class CUDABackend: Backend, @unchecked Sendable {
    let dev: CUDADevice
    init(_ dev: CUDADevice) { self.dev = dev }

    /// Kernel handles of each family, by a key derived from the op (no name is built on a launch).
    var elementwiseHandles: [ElementwiseHandle: OpaquePointer] = [:]
    /// The cuDNN handle of this device (made on first use).
    var dnnHandle: OpaquePointer?
    let handleLock = NSLock()

    /// The device address of a tensor's first element (it must be on this backend's GPU).
    func address(_ t: Tensor, _ function: StaticString = #function) -> UInt64 {
        if t.storage.device != .cuda(dev.index) {
            fatalError("Ember CUDA \(function): given a tensor of shape \(t.shape) on \(t.storage.device) for a kernel on cuda:\(dev.index): an op mixed devices without checking them (please report this)")
        }
        return UInt64(UInt(bitPattern: t.storage.data)) + UInt64(t.layout.offset * t.dtype.itemSize)
    }

    /// A contiguous copy of `t` (itself when it already is).
    func contiguous(_ t: Tensor) -> Tensor {
        if t.isContiguous { return t }
        let c = Tensor.empty(t.shape, dtype: t.dtype, device: t.device)
        copy(t, into: c)
        return c
    }

    // MARK: memory and transfers

    func allocate(bytes: Int, device: Device) -> Storage {
        let stream = dev.stream
        let (p, owner) = dev.allocate(bytes, on: stream)
        let d = dev
        return Storage(device: device, data: UnsafeMutableRawPointer(bitPattern: UInt(p))!, byteCount: bytes) { ptr in
            d.free(UInt64(UInt(bitPattern: ptr)), bytes, owner: owner, stream: stream)
        }
    }

    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer, nonBlocking: Bool) {
        let n = t.count * t.dtype.itemSize
        if n == 0 { return }
        dev.makeCurrent()
        let stream = dev.stream
        dev.driver.must(dev.driver.cuMemcpyDtoHAsync(into, address(t), n, stream), "cuMemcpyDtoHAsync")
        if nonBlocking, let pool = Ember.CUDA.state.pinned, let b = pool.block(containing: into, bytes: n) {
            pool.used(b, on: stream, of: dev)  // the block is not reused before the copy is done
            return
        }
        dev.synchronize()
    }

    /// Host → device without waiting: from pinned memory directly (`nonBlocking`), else
    /// through a pinned staging block that goes back to the pool once the copy is done.
    /// Copies of more than 64 MiB from pageable memory wait instead of staging.
    func writeBytes(_ t: Tensor, from: UnsafeRawPointer, nonBlocking: Bool) {
        let n = t.count * t.dtype.itemSize
        if n == 0 { return }
        let stream = dev.stream
        if let pool = Ember.CUDA.state.pinned {
            if let b = pool.block(containing: from, bytes: n) {
                dev.makeCurrent()
                dev.driver.must(dev.driver.cuMemcpyHtoDAsync(address(t), from, n, stream), "cuMemcpyHtoDAsync")
                pool.used(b, on: stream, of: dev)
                if !nonBlocking { dev.synchronize() }
                return
            }
            if n <= 64 << 20, let b = pool.allocate(n) {
                memcpy(b.pointer, from, n)
                dev.makeCurrent()  // after the pool, which may have made another context current
                dev.driver.must(dev.driver.cuMemcpyHtoDAsync(address(t), UnsafeRawPointer(b.pointer), n, stream), "cuMemcpyHtoDAsync")
                pool.used(b, on: stream, of: dev)
                pool.release(b)
                return
            }
        }
        dev.makeCurrent()
        dev.driver.must(dev.driver.cuMemcpyHtoDAsync(address(t), from, n, stream), "cuMemcpyHtoDAsync")
        // The host buffer may be released as soon as this returns: wait for the copy.
        dev.synchronize()
    }
}
