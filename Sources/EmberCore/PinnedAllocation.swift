import CEmberThreads
import Foundation

/// Page-locked ("pinned") host memory, which a GPU reads and writes by DMA while the host
/// goes on (`pin_memory`). A GPU backend installs `pinnedAllocator` when it loads; without
/// one, pinned allocations are ordinary CPU memory.
public enum HostMemory {
    /// Allocates `bytes` of pinned CPU memory as a `Storage` (device `.cpu`), or nil.
    nonisolated(unsafe) public static var pinnedAllocator: ((Int) -> Storage?)?

    final class Scope { var depth = 0 }
    static let scope = ThreadLocal { Scope() }
    // Threads inside a pinning scope anywhere (a C atomic, `ember_pin_scopes_*`): the
    // allocator looks at its thread's scope only when this is not zero (one load on the hot path).

    /// Runs `body` with every CPU tensor it creates on this thread in pinned memory (the
    /// DataLoader's `pinMemory` runs the batch function this way, whatever the batch type).
    public static func withPinnedAllocations<R>(_ body: () throws -> R) rethrows -> R {
        let s = scope.value
        s.depth += 1
        ember_pin_scopes_add(1)
        defer {
            s.depth -= 1
            ember_pin_scopes_add(-1)
        }
        return try body()
    }

    /// Whether CPU allocations on this thread go to pinned memory now.
    @inline(__always) static var pinningHere: Bool {
        ember_pin_scopes_load() != 0 && pinnedAllocator != nil && scope.value.depth > 0
    }
}
