import CEmberThreads
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
    _parallelRun(chunks) { c in
        let lo = c * per
        let hi = min(n, lo + per)
        if lo < hi { body(lo..<hi) }
    }
}

/// Runs `body(0..<chunks)` on the intra-op pool (the calling thread takes part). Falls back
/// to Dispatch when the pool is busy with another caller's job, and runs inline when called
/// from inside a pool job (no nested oversubscription).
@usableFromInline
func _parallelRun(_ chunks: Int, _ body: (Int) -> Void) {
    _ = ThreadPool.started
    withoutActuallyEscaping(body) { f in
        var fn = f
        let rc = withUnsafeMutablePointer(to: &fn) { p in
            ember_pool_run({ ctx, c in
                ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(c)
            }, p, chunks)
        }
        if rc == 0 { return }
        if rc == -2 {
            for c in 0..<chunks { f(c) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks, execute: f)
    }
}

/// The persistent worker threads behind `parallelFor` (cores − 1 of them; the caller is
/// the last worker). They spin for up to 200 µs after a job (`EMBER_SPIN_US`), then sleep.
public enum ThreadPool {
    public static let started: Int = {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return Int(ember_pool_start(Int32(max(CPUThreads.count, cores) - 1)))
    }()
}

/// Runs `body(i)` for every `i` in `0..<n` on up to `CPUThreads.count` threads.
@inlinable
public func parallelTasks(_ n: Int, _ body: (Int) -> Void) {
    if n <= 0 { return }
    if n == 1 || CPUThreads.count == 1 {
        for i in 0..<n { body(i) }
        return
    }
    _parallelRun(n, body)
}

/// Elements per chunk below which elementwise work stays on one thread.
public let elementwiseGrain = 32_768
