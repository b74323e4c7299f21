import EmberCore
import Foundation

/// Process-group initialisation and the default group (`torch.distributed`).
///
///     let group = try Distributed.initProcessGroup()   // under `ember launch` or mpirun
///     try group.allReduce(t, op: .avg)
///     try Distributed.destroyProcessGroup()
public enum Distributed {
    /// The engine that runs the collectives.
    public enum Backend: String, Sendable, CaseIterable {
        /// MPI, for CPU tensors (Open MPI, MPICH, Intel MPI, MVAPICH, Microsoft MPI).
        case mpi
        /// NCCL, for CUDA tensors.
        case nccl
    }

    nonisolated(unsafe) private static var group: ProcessGroup?
    private static let lock = NSLock()

    /// The group made by `initProcessGroup`, if any.
    public static var defaultGroup: ProcessGroup? {
        lock.lock(); defer { lock.unlock() }
        return group
    }

    public static var isInitialized: Bool { defaultGroup != nil }
    /// This process's rank in the default group (0 without one).
    public static var rank: Int { defaultGroup?.rank ?? 0 }
    /// The number of processes in the default group (1 without one).
    public static var worldSize: Int { defaultGroup?.worldSize ?? 1 }

    /// The rank among the processes on this machine, from the launcher's environment.
    public static var localRank: Int {
        let env = ProcessInfo.processInfo.environment
        for k in ["LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"] {
            if let v = env[k], let r = Int(v) { return r }
        }
        return 0
    }

    /// The default timeout: `EMBER_DIST_TIMEOUT` seconds, else 30 minutes (as PyTorch).
    public static var defaultTimeout: Double {
        ProcessInfo.processInfo.environment["EMBER_DIST_TIMEOUT"].flatMap(Double.init) ?? 1800
    }

    /// Joins the job this process was launched into (`init_process_group`).
    ///
    /// With `.mpi` the ranks come from the MPI launcher (`ember launch`, `mpirun`, `mpiexec`,
    /// `srun`); a process started on its own is a group of one.
    /// - Throws: `DistributedError.libraryNotFound` (with every path tried) when no MPI is
    ///   installed, `.rendezvous` when the environment names a job MPI cannot see.
    @discardableResult
    public static func initProcessGroup(backend: Backend = .mpi, timeout: Double? = nil) throws -> ProcessGroup {
        lock.lock(); defer { lock.unlock() }
        if let group { return group }
        let env = ProcessInfo.processInfo.environment
        switch backend {
        case .nccl:
            throw DistributedError.backend(
                "the NCCL backend runs on CUDA tensors, and this build of Ember has no CUDA backend yet; use the MPI backend (CPU tensors)")
        case .mpi:
            let expected = env["WORLD_SIZE"].flatMap(Int.init)
            if let expected, expected > 1, !launchedByMPI(env) {
                throw DistributedError.rendezvous(
                    "WORLD_SIZE=\(expected) is set but this process was not started by an MPI launcher; CPU collectives run on MPI: start the job with `ember launch --nproc \(expected) …` or `mpirun -np \(expected) …`")
            }
            let mpi = try MPILibrary.load()
            let comm = CommThread(name: "ember-comm")
            let engine = try comm.sync { try MPIEngine(mpi) }
            if let expected, expected != engine.worldSize {
                throw DistributedError.rendezvous("WORLD_SIZE=\(expected) but MPI reports \(engine.worldSize) processes")
            }
            if let r = env["RANK"].flatMap(Int.init), r != engine.rank, expected != nil {
                throw DistributedError.rendezvous("RANK=\(r) but MPI reports rank \(engine.rank)")
            }
            let g = ProcessGroup(engine: engine, comm: comm, timeout: timeout ?? defaultTimeout)
            group = g
            atexit { Distributed.finalizeAtExit() }
            return g
        }
    }

    /// Shuts the default group down (`destroy_process_group`); every rank must call it.
    public static func destroyProcessGroup() throws {
        let g: ProcessGroup? = {
            lock.lock(); defer { lock.unlock() }
            return group
        }()
        try g?.destroy()
    }

    private static func finalizeAtExit() {
        lock.lock()
        let g = group
        lock.unlock()
        // A group that failed is left alone: its communication thread may be stuck in a call
        // that waits for a dead peer, and the launcher ends the job.
        if let g, g.failureReason == nil { try? g.destroy() }
    }
}
