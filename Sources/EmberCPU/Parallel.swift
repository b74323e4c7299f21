import Dispatch
import Foundation

/// Thread control for CPU kernels.
///
/// The default is the number of active cores (never more), or `EMBER_NUM_THREADS` when set.
public enum CPUThreads {
    @exclusivity(unchecked) nonisolated(unsafe) static var _count: Int = {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        if let s = ProcessInfo.processInfo.environment["EMBER_NUM_THREADS"], let n = Int(s), n > 0 {
            return n
        }
        return cores
    }()

    /// Number of threads a kernel may use.
    public static var count: Int {
        get { _count }
        set { _count = max(1, newValue) }
    }
}

/// Splits `0..<n` into at most `CPUThreads.count` contiguous chunks of at least `grain`
/// items and runs `body` on each, in parallel when there is more than one chunk.
@inlinable @inline(__always)
public func parallelFor(_ n: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let chunks = min(CPUThreads.count, (n + max(grain, 1) - 1) / max(grain, 1))
    if chunks <= 1 {
        body(0..<n)
        return
    }
    let per = (n + chunks - 1) / chunks
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        let lo = c * per
        let hi = min(n, lo + per)
        if lo < hi { body(lo..<hi) }
    }
}

/// Runs `body(i)` for every `i` in `0..<n` on up to `CPUThreads.count` threads.
@inlinable
public func parallelTasks(_ n: Int, _ body: (Int) -> Void) {
    if n <= 0 { return }
    if n == 1 || CPUThreads.count == 1 {
        for i in 0..<n { body(i) }
        return
    }
    DispatchQueue.concurrentPerform(iterations: n, execute: body)
}

/// Elements per chunk below which elementwise work stays on one thread.
public let elementwiseGrain = 32_768
