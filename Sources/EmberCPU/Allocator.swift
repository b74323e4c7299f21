import Foundation
#if os(Windows)
import WinSDK
#endif

/// The cheapest mutual-exclusion lock of each platform (the allocator's lock is on every
/// tensor allocation's path).
@usableFromInline
final class FastLock: @unchecked Sendable {
    #if os(Windows)
    @exclusivity(unchecked) private var l = SRWLOCK()
    init() { InitializeSRWLock(&l) }
    @inline(__always) func lock() { AcquireSRWLockExclusive(&l) }
    @inline(__always) func unlock() { ReleaseSRWLockExclusive(&l) }
    #elseif canImport(Darwin)
    @exclusivity(unchecked) private var l = os_unfair_lock()
    @inline(__always) func lock() { os_unfair_lock_lock(&l) }
    @inline(__always) func unlock() { os_unfair_lock_unlock(&l) }
    #else
    @exclusivity(unchecked) private var l = pthread_mutex_t()
    init() { pthread_mutex_init(&l, nil) }
    @inline(__always) func lock() { pthread_mutex_lock(&l) }
    @inline(__always) func unlock() { pthread_mutex_unlock(&l) }
    #endif
}

/// A caching allocator for CPU buffers: freed blocks are kept in per-size-class free lists
/// and handed out again, so a training step in steady state takes no memory from the OS
/// (and touches no fresh pages). Blocks are 64-byte aligned.
///
/// Size classes: multiples of 64 bytes up to 512, then four classes per power of two
/// (at most 25 % rounding). The cache holds at most `cacheLimit` bytes; beyond that,
/// freed blocks go back to the OS.
public final class CPUAllocator: @unchecked Sendable {
    public static let shared = CPUAllocator()

    /// Counters for tests and `Ember.memoryStats`.
    public struct Stats: Sendable, Equatable {
        /// Bytes in blocks handed out and not yet freed.
        public var allocatedBytes = 0
        /// Bytes in blocks kept for reuse.
        public var cachedBytes = 0
        /// Allocations served from the cache.
        public var cacheHits = 0
        /// Allocations that asked the OS for memory.
        public var osAllocations = 0
    }

    @exclusivity(unchecked) private var freeLists: [[UnsafeMutableRawPointer]]
    @exclusivity(unchecked) private var stats = Stats()
    private let mutex = FastLock()
    /// The most bytes kept in the cache (default 2 GiB, `EMBER_CPU_CACHE_MB` to change; 0 disables).
    @exclusivity(unchecked) public var cacheLimit: Int

    init() {
        freeLists = Array(repeating: [], count: 8 + 4 * 50)
        if let s = ProcessInfo.processInfo.environment["EMBER_CPU_CACHE_MB"], let mb = Int(s) {
            cacheLimit = max(0, mb) << 20
        } else {
            cacheLimit = 2 << 30
        }
    }

    /// The class of a request and the block size that class allocates.
    @inline(__always)
    static func sizeClass(_ bytes: Int) -> (index: Int, size: Int) {
        let b = max(bytes, 1)
        if b <= 512 {
            let i = (b + 63) >> 6
            return (i - 1, i << 6)
        }
        let e = Int.bitWidth - (b - 1).leadingZeroBitCount - 1  // 2^e < b <= 2^(e+1)
        let quarter = 1 << (e - 2)
        let sub = (b - (1 << e) + quarter - 1) / quarter  // 1...4
        return (8 + (e - 9) * 4 + (sub - 1), (1 << e) + sub * quarter)
    }

    /// A block of at least `bytes` bytes.
    public func allocate(_ bytes: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int) {
        let (index, size) = CPUAllocator.sizeClass(bytes)
        mutex.lock()
        if let p = freeLists[index].popLast() {
            stats.cacheHits += 1
            stats.cachedBytes -= size
            stats.allocatedBytes += size
            mutex.unlock()
            return (p, size)
        }
        stats.osAllocations += 1
        stats.allocatedBytes += size
        mutex.unlock()
        return (CPUAllocator.osAllocate(size), size)
    }

    /// Returns a block obtained from `allocate` (with the capacity it reported).
    public func free(_ p: UnsafeMutableRawPointer, capacity: Int) {
        let (index, size) = CPUAllocator.sizeClass(capacity)
        mutex.lock()
        stats.allocatedBytes -= size
        if stats.cachedBytes + size <= cacheLimit {
            freeLists[index].append(p)
            stats.cachedBytes += size
            mutex.unlock()
            return
        }
        mutex.unlock()
        p.deallocate()
    }

    /// Blocks of at least this many bytes are 2 MiB-aligned and, on Linux, marked for
    /// transparent huge pages: a large tensor then costs the TLB a few entries instead of
    /// one per 4 KiB page.
    static let hugeThreshold = 2 << 20

    static func osAllocate(_ size: Int) -> UnsafeMutableRawPointer {
        guard size >= hugeThreshold else { return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: hugeThreshold)
        #if os(Linux)
        _ = madvise(p, size, 14 /* MADV_HUGEPAGE */)
        #endif
        return p
    }

    /// Gives every cached block back to the OS.
    public func emptyCache() {
        mutex.lock()
        let lists = freeLists
        for i in freeLists.indices { freeLists[i].removeAll() }
        stats.cachedBytes = 0
        mutex.unlock()
        for l in lists { for p in l { p.deallocate() } }
    }

    public var statistics: Stats {
        mutex.lock()
        defer { mutex.unlock() }
        return stats
    }
}
