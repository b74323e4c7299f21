import EmberCore
import Foundation

/// Page-locked host memory, cached (PyTorch's caching host allocator). A block that an
/// asynchronous copy used goes back to the pool with an event recorded on that copy's
/// stream, and is handed out again only when the event has completed, so a copy still in
/// flight never sees its buffer reused. Blocks are rounded up to powers of two and kept.
final class PinnedPool: @unchecked Sendable {
    let driver: CUDADriver
    /// Makes some context current on the calling thread if none is: pinned memory is
    /// portable (every context may use it), so the caller's context, when it has one, is
    /// kept, and the work it queues next still goes to its own device.
    let ensureContext: () -> Void
    private let lock = NSLock()

    final class Block {
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
        /// The stream of the last asynchronous copy that read or wrote the block, and its device.
        var lastStream: OpaquePointer?
        var lastDevice: CUDADevice?
        /// Recorded on `lastStream` when the block is returned; made in `eventDevice`'s
        /// context (an event is recorded only on a stream of its own context).
        var event: OpaquePointer?
        var eventDevice: CUDADevice?
        var eventPending = false
        init(pointer: UnsafeMutableRawPointer, capacity: Int) { self.pointer = pointer; self.capacity = capacity }
    }
    private var inUse: [UnsafeMutableRawPointer: Block] = [:]
    private var free: [Int: [Block]] = [:]
    /// Start addresses of every block (in use or free), sorted, for `block(containing:)`.
    private var all: [(start: UInt, block: Block)] = []
    private(set) var reservedBytes = 0

    init(driver: CUDADriver, ensureContext: @escaping () -> Void) {
        self.driver = driver
        self.ensureContext = ensureContext
    }

    static func rounded(_ bytes: Int) -> Int {
        var c = 4096
        while c < bytes { c <<= 1 }
        return c
    }

    /// A block of at least `bytes`; nil when the driver refuses page-locked memory.
    func allocate(_ bytes: Int) -> Block? {
        let cap = PinnedPool.rounded(bytes)
        lock.lock(); defer { lock.unlock() }
        if var list = free[cap] {
            for (i, b) in list.enumerated() where isIdle(b) {
                list.remove(at: i)
                free[cap] = list
                inUse[b.pointer] = b
                return b
            }
        }
        ensureContext()
        var p: UnsafeMutableRawPointer?
        guard driver.cuMemHostAlloc(&p, cap, 0x01 /* CU_MEMHOSTALLOC_PORTABLE */) == 0, let p else { return nil }
        let b = Block(pointer: p, capacity: cap)
        inUse[p] = b
        let key = UInt(bitPattern: p)
        let at = all.firstIndex { $0.start > key } ?? all.count
        all.insert((key, b), at: at)
        reservedBytes += cap
        return b
    }

    /// Whether no queued copy can still touch `b` (caller holds the lock).
    private func isIdle(_ b: Block) -> Bool {
        guard b.eventPending, let e = b.event else { return true }
        ensureContext()  // worker threads pin batches too; a query works from any context
        if driver.cuEventQuery(e) == 0 { b.eventPending = false; return true }
        return false
    }

    /// Returns `block` to the pool; if an asynchronous copy used it, it is reused only once
    /// the work queued on that copy's stream so far has completed.
    func release(_ block: Block) {
        lock.lock(); defer { lock.unlock() }
        inUse[block.pointer] = nil
        if let s = block.lastStream, let d = block.lastDevice {
            if let e = block.event, block.eventDevice !== d {
                block.eventDevice?.makeCurrent()
                _ = driver.cuEventDestroy(e)
                block.event = nil
            }
            d.makeCurrent()
            if block.event == nil {
                var e: OpaquePointer?
                driver.must(driver.cuEventCreate(&e, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate")
                block.event = e
                block.eventDevice = d
            }
            driver.must(driver.cuEventRecord(block.event, s), "cuEventRecord")
            block.eventPending = true
            block.lastStream = nil
            block.lastDevice = nil
        }
        free[block.capacity, default: []].append(block)
    }

    /// The in-use block holding `[p, p + bytes)`, if that range is pinned memory of the pool.
    func block(containing p: UnsafeRawPointer, bytes: Int) -> Block? {
        let key = UInt(bitPattern: p)
        lock.lock(); defer { lock.unlock() }
        var lo = 0, hi = all.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if all[mid].start <= key { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let (start, b) = all[lo - 1]
        guard key + UInt(bytes) <= start + UInt(b.capacity), inUse[b.pointer] === b else { return nil }
        return b
    }

    /// Notes that an asynchronous copy on `stream` of `device` uses `block`.
    func used(_ block: Block, on stream: OpaquePointer, of device: CUDADevice) {
        lock.lock(); block.lastStream = stream; block.lastDevice = device; lock.unlock()
    }

    /// A CPU storage in a pinned block; its deinit returns the block.
    func storage(_ bytes: Int) -> Storage? {
        guard let b = allocate(Swift.max(bytes, 1)) else { return nil }
        return Storage(device: .cpu, data: b.pointer, byteCount: bytes, hostAccessible: true) { [self] _ in release(b) }
    }
}
