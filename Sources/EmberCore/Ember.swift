import EmberCPU
import Foundation
#if os(Windows)
import WinSDK
#endif

/// Library-wide settings and the default generator (`torch.manual_seed`).
public enum Ember {
    /// The generator random ops use when none is given.
    public static let defaultGenerator = Generator()

    /// Seeds the default generator.
    public static func manualSeed(_ seed: UInt64) { defaultGenerator.manualSeed(seed) }

    /// Threads CPU kernels may use (defaults to the number of cores, or `EMBER_NUM_THREADS`).
    public static var numThreads: Int {
        get { CPUThreads.count }
        set { CPUThreads.count = newValue }
    }

    /// The CPU caching allocator's counters.
    public static var cpuMemoryStats: CPUAllocator.Stats { CPUAllocator.shared.statistics }

    /// Returns the CPU allocator's cached blocks to the OS.
    public static func emptyCPUCache() { CPUAllocator.shared.emptyCache() }

    /// Sets the number of threads CPU kernels use (`torch.set_num_threads`).
    public static func setNumThreads(_ n: Int) { CPUThreads.count = n }

    /// Stops the program with `message` unless `condition` holds, in debug and release
    /// builds alike (Swift's `precondition` drops its message under `-O`). For misuse of an
    /// op, layer, loss or optimizer: the message names it and the shapes or values involved,
    /// `"LayerNorm: input shape [2, 7] does not end with the normalized shape [8]"`.
    @inlinable
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { misuse(message()) }
    }

    /// Stops the program with a misuse message (see `check`).
    @inline(never)
    public static func misuse(_ message: String) -> Never {
        fatalError(message)
    }
}

extension Ember {
    /// This process's resident memory in bytes: /proc/self/statm on Linux, the task's
    /// resident size on macOS, the working set on Windows (0 where none is available).
    public static func residentMemoryBytes() -> Int {
        #if os(Linux)
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = s.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
        #elseif os(macOS)
        var info = mach_task_basic_info()
        var count = mach_msg_type_number_t(MemoryLayout<mach_task_basic_info>.size / MemoryLayout<natural_t>.size)
        let kr = withUnsafeMutablePointer(to: &info) {
            $0.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(MACH_TASK_BASIC_INFO), $0, &count)
            }
        }
        return kr == KERN_SUCCESS ? Int(info.resident_size) : 0
        #elseif os(Windows)
        var pmc = PROCESS_MEMORY_COUNTERS()
        pmc.cb = DWORD(MemoryLayout<PROCESS_MEMORY_COUNTERS>.size)
        return K32GetProcessMemoryInfo(GetCurrentProcess(), &pmc, pmc.cb) ? Int(pmc.WorkingSetSize) : 0
        #else
        return 0
        #endif
    }
}
