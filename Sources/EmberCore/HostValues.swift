/// Values that come from (or go to) the host, such as Swift arrays, random numbers drawn on
/// the host, or `toArray`: the one place where ops meet memory, always through the tensor's
/// backend (`writeBytes`/`readBytes`) unless the memory is host memory already.
extension Tensor {
    /// The address of the first element. Host-accessible storage only (CPU memory, pinned
    /// memory); kernels and transfers use it, ops do not.
    var hostAddress: UnsafeMutableRawPointer {
        if !storage.isHostAccessible { wrongDevice(storage.device) }
        return storage.data + layout.offset * dtype.itemSize
    }

    /// A new contiguous tensor on `device` whose elements (`count` of `dtype`, row-major)
    /// `write` stores into host memory: in place when the device's memory is host memory,
    /// else into a buffer that the device's backend then copies in.
    static func fromHost(_ shape: [Int], dtype: DType, device: Device, _ write: (UnsafeMutableRawPointer) -> Void) -> Tensor {
        let t = Tensor(uninitialized: shape, dtype: dtype, device: device)
        if t.storage.isHostAccessible {
            write(t.hostAddress)
        } else {
            let bytes = t.count * dtype.itemSize
            withUnsafeTemporaryAllocation(byteCount: Swift.max(bytes, 1), alignment: 16) { buffer in
                write(buffer.baseAddress!)
                if bytes > 0 { device.backend.writeBytes(t, from: buffer.baseAddress!, nonBlocking: false) }
            }
        }
        return t
    }

    /// Runs `body` with this tensor's elements (row-major, in its dtype) in host memory.
    func withHostElements<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        let c = contiguous()
        if c.storage.isHostAccessible { return withExtendedLifetime(c) { body(c.hostAddress) } }
        let bytes = c.count * dtype.itemSize
        return withUnsafeTemporaryAllocation(byteCount: Swift.max(bytes, 1), alignment: 16) { buffer in
            if bytes > 0 { c.device.backend.readBytes(c, into: buffer.baseAddress!, nonBlocking: false) }
            return body(UnsafeRawPointer(buffer.baseAddress!))
        }
    }
}
