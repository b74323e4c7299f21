import EmberCUDA
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
    /// Kept alive for the job: rank 0 serves the rendezvous store.
    nonisolated(unsafe) private static var rendezvousStore: TCPStore?
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

    /// Processes of this job on this machine (`LOCAL_WORLD_SIZE` or the launcher's own
    /// variable), or nil when no launcher says.
    public static var localWorldSize: Int? {
        let env = ProcessInfo.processInfo.environment
        for k in ["LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"] {
            if let v = env[k], let n = Int(v) { return n }
        }
        return nil
    }

    /// The default timeout: `EMBER_DIST_TIMEOUT` seconds, else 30 minutes (as PyTorch).
    public static var defaultTimeout: Double {
        ProcessInfo.processInfo.environment["EMBER_DIST_TIMEOUT"].flatMap(Double.init) ?? 1800
    }

    /// Joins the job this process was launched into (`init_process_group`).
    ///
    /// With `.mpi` the ranks come from the MPI launcher (`ember launch`, `mpirun`, `mpiexec`,
    /// `srun`); a process started on its own is a group of one. With `.nccl` (CUDA tensors,
    /// one GPU per process: `localRank` picks it) the ranks come from `RANK`/`WORLD_SIZE` or
    /// the launcher, and NCCL's id is exchanged through the TCP store at
    /// `MASTER_ADDR`:`MASTER_PORT`.
    /// - Throws: `DistributedError.libraryNotFound` (with every path tried) when no MPI is
    ///   installed, `.rendezvous` when the environment names a job MPI cannot see.
    @discardableResult
    public static func initProcessGroup(backend: Backend = .mpi, timeout: Double? = nil) throws -> ProcessGroup {
        lock.lock(); defer { lock.unlock() }
        if let group { return group }
        let env = ProcessInfo.processInfo.environment
        switch backend {
        case .nccl:
            // Ranks from RANK/WORLD_SIZE or the MPI launcher; the NCCL id travels through the
            // TCP store at MASTER_ADDR:MASTER_PORT (rank 0 serves it).
            guard Ember.CUDA.isAvailable else {
                throw DistributedError.backend("the NCCL backend needs a GPU: \(Ember.CUDA.unavailableReason ?? "none found")")
            }
            let rank = ["RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"].lazy.compactMap { env[$0].flatMap(Int.init) }.first ?? 0
            let world = ["WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"].lazy.compactMap { env[$0].flatMap(Int.init) }.first ?? 1
            guard rank >= 0 && rank < world else { throw DistributedError.rendezvous("rank \(rank) is not in 0..<\(world)") }
            let limit = timeout ?? defaultTimeout
            let nccl = try NCCLLibrary.load()
            let id: [UInt8]
            if world == 1 {
                id = try nccl.uniqueId()
            } else {
                guard let portText = env["MASTER_PORT"], let port = Int(portText) else {
                    throw DistributedError.rendezvous("the NCCL backend with \(world) processes needs MASTER_ADDR and MASTER_PORT (ember launch sets them)")
                }
                let store = try TCPStore(host: env["MASTER_ADDR"] ?? "127.0.0.1", port: port, isServer: rank == 0, timeout: limit)
                id = try nccl.exchangeUniqueId(rank: rank, store: store)
                // Every rank has read the id before rank 0's store may go away.
                try store.barrier("ember/nccl/joined", worldSize: world)
                rendezvousStore = store
            }
            // NCCL refuses two ranks on one GPU ("invalid usage"): say what to do instead.
            if let local = localWorldSize, local > Ember.CUDA.deviceCount {
                throw DistributedError.backend(
                    "the NCCL backend needs one GPU per process: this machine runs \(local) processes of the job and has \(Ember.CUDA.deviceCount) GPU(s); start at most \(Ember.CUDA.deviceCount) per machine (ember launch --nproc \(Ember.CUDA.deviceCount)), or train on the CPU over MPI (--device cpu)")
            }
            let device = localRank % Ember.CUDA.deviceCount
            let comm = CommThread(name: "ember-comm")
            let engine = try comm.sync { try NCCLEngine(nccl: nccl, id: id, rank: rank, worldSize: world, deviceIndex: device) }
            let g = ProcessGroup(engine: engine, comm: comm, timeout: limit)
            group = g
            atexit { Distributed.finalizeAtExit() }
            return g
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
