import EmberCore
import Foundation

/// Measurements for `ember bench-distributed`: Ember's collectives against the same MPI
/// call made directly, on the same buffers, in the same job.
public enum DistributedBenchmark {
    /// Seconds per call of MPI_Allreduce (in place, float32, sum) made directly on the
    /// communication thread, `iterations` calls back to back: the slowest rank's time after a
    /// barrier, or (`slowest: false`) this rank's, with no barrier (a call inside a step).
    public static func directAllReduceSeconds(_ group: ProcessGroup, _ tensor: Tensor, iterations: Int,
                                              slowest wantSlowest: Bool = true) throws -> Double {
        guard let engine = group.engine as? MPIEngine else {
            throw DistributedError.backend("the direct baseline needs the MPI backend")
        }
        let p = tensor.contiguousDataPointer, n = tensor.count, d = tensor.dtype
        let seconds = try group.comm.sync { () throws -> Double in
            if wantSlowest { try engine.barrier() }
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { try engine.allReduce(p, count: n, dtype: d, op: .sum) }
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(iterations)
        }
        return wantSlowest ? try slowest(group, seconds) : seconds
    }

    /// Seconds per call of `group.allReduce(tensor)` from the calling thread (the path user
    /// code and DDP take: queue hop, consistency check when enabled, wait).
    public static func emberAllReduceSeconds(_ group: ProcessGroup, _ tensor: Tensor, iterations: Int,
                                             async: Bool = false) throws -> Double {
        try group.barrier()
        let t0 = DispatchTime.now().uptimeNanoseconds
        if async {
            let works = (0..<iterations).map { _ in group.allReduceAsync(tensor) }
            for w in works { try w.wait() }
        } else {
            for _ in 0..<iterations { try group.allReduce(tensor) }
        }
        let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(iterations)
        return try slowest(group, s)
    }

    /// The largest of every rank's `value`.
    public static func slowest(_ group: ProcessGroup, _ value: Double) throws -> Double {
        let t = Tensor([value], dtype: .float64)
        try group.allReduce(t, op: .max)
        return t.item()
    }
}
