import Foundation
#if os(Windows)
import WinSDK
#endif

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
