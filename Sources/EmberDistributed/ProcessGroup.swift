import EmberCore
import Foundation

extension Distributed {
/// One send or receive of `ProcessGroup.batchIsendIrecv` (`torch.distributed.P2POp`).
public struct P2POp {
    public enum Kind: Sendable { case send, recv }
    public let kind: Kind
    public let tensor: Tensor
    public let peer: Int
    public let tag: Int

    /// Sends `tensor` to rank `peer`.
    public static func send(_ tensor: Tensor, to peer: Int, tag: Int = 0) -> P2POp {
        P2POp(kind: .send, tensor: tensor, peer: peer, tag: tag)
    }

    /// Receives into `tensor` from rank `peer`.
    public static func recv(_ tensor: Tensor, from peer: Int, tag: Int = 0) -> P2POp {
        P2POp(kind: .recv, tensor: tensor, peer: peer, tag: tag)
    }
}

/// How `allReduce` and `reduceScatter` combine the ranks' values (`torch.distributed.Distributed.ReduceOp`).
public enum ReduceOp: Hashable, Sendable, CustomStringConvertible {
    case sum, avg, max, min, product
    public var description: String {
        switch self {
        case .sum: "sum"
        case .avg: "avg"
        case .max: "max"
        case .min: "min"
        case .product: "product"
        }
    }
}
}

/// Errors of distributed training. Everything that involves a peer throws one of these.
public enum DistributedError: Error, CustomStringConvertible, Equatable {
    /// A communication library (MPI, NCCL) could not be loaded: lists what was tried.
    case libraryNotFound(String)
    /// The communication library reported an error.
    case backend(String)
    /// An operation did not finish within the group's timeout.
    case timeout(String)
    /// Ranks passed tensors of different shapes or dtypes to the same collective.
    case mismatch(String)
    /// Initialisation failed: launcher environment, rendezvous, store.
    case rendezvous(String)
    /// The group failed earlier (a timeout) and can no longer be used.
    case broken(String)

    public var description: String {
        switch self {
        case .libraryNotFound(let m): "distributed: communication library not found: \(m)"
        case .backend(let m): "distributed: \(m)"
        case .timeout(let m): "distributed: timeout: \(m)"
        case .mismatch(let m): "distributed: \(m)"
        case .rendezvous(let m): "distributed: rendezvous failed: \(m)"
        case .broken(let m): "distributed: the process group is unusable after an earlier failure: \(m)"
        }
    }
}

/// A 63-bit FNV-1a hash of `text`: what ranks compare to find out whether they agree.
func fingerprint(_ text: String) -> Int64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return Int64(bitPattern: h >> 1)
}

/// One send or receive handed to an engine (on a contiguous staging buffer).
struct PointToPoint {
    let isSend: Bool
    let buffer: UnsafeMutableRawPointer
    let count: Int
    let dtype: DType
    let peer: Int
    let tag: Int
}

/// The operations a communication library provides on raw host buffers. Every method runs
/// on the group's communication thread; Ember never implements a collective itself.
protocol CollectiveEngine: AnyObject {
    var name: String { get }
    /// Where the engine's tensors live (the CPU for MPI, a GPU for NCCL).
    var device: Device { get }
    var rank: Int { get }
    var worldSize: Int { get }
    func supports(_ dtype: DType) -> Bool
    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: Distributed.ReduceOp) throws
    func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, root: Int) throws
    func allGather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, dtype: DType) throws
    func reduceScatter(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, dtype: DType, op: Distributed.ReduceOp) throws
    func barrier() throws
    /// Starts the sends and receives of `ops` together (NCCL: one group); the returned
    /// poll reports when all have completed (or throws).
    func startPointToPoint(_ ops: [PointToPoint]) throws -> () throws -> Bool
    /// Ends the job on every rank (after a fatal error); may be called from any thread.
    func abort(code: Int32)
    func finalize() throws
    /// Taken on the calling thread when work is queued: what the work must follow (for
    /// NCCL, the caller's current CUDA stream); nil for engines on host memory.
    func callerOrdering() -> AnyObject?
    /// Runs `body` (on the communication thread) in the caller's order: for NCCL with the
    /// caller's stream current, so that the communication waits for the caller's work and
    /// the group's own tensor work (averaging, copies back) is queued where the caller's
    /// later work will follow it.
    func ordered<R>(_ ordering: AnyObject?, _ body: () throws -> R) rethrows -> R
}

extension CollectiveEngine {
    func callerOrdering() -> AnyObject? { nil }
    func ordered<R>(_ ordering: AnyObject?, _ body: () throws -> R) rethrows -> R { try body() }
}

/// A group of processes that run collectives together (`torch.distributed.ProcessGroup`).
///
/// Every operation has a blocking form and an `…Async` form that returns a `Work`; work is
/// issued to the communication library in call order on one communication thread, so the
/// ranks must call collectives in the same order (as with any MPI or NCCL program). By
/// default each collective first checks that every rank passed the same shape and dtype and
/// reports the difference (`checksConsistency`); a timeout bounds every wait.
public final class ProcessGroup: @unchecked Sendable {
    public let rank: Int
    public let worldSize: Int
    /// The communication library: "MPI (Open MPI)" or "MPI (MPICH)".
    public let backendName: String
    /// The device whose tensors the group's collectives take.
    public var device: Device { engine.device }
    /// The longest any operation may take before `wait()` throws (seconds).
    public var timeout: Double
    /// Check before each collective that all ranks passed the same shape, dtype and op
    /// (one small extra collective).
    public var checksConsistency = true

    let engine: CollectiveEngine
    let comm: CommThread
    private let stateLock = NSLock()
    private var failure: String?
    private var finalized = false

    init(engine: CollectiveEngine, comm: CommThread, timeout: Double) {
        self.engine = engine
        self.comm = comm
        self.rank = engine.rank
        self.worldSize = engine.worldSize
        self.backendName = engine.name
        self.timeout = timeout
    }

    func markBroken(_ reason: String) {
        stateLock.lock(); if failure == nil { failure = reason }; stateLock.unlock()
    }

    /// Why the group can no longer be used, if it failed.
    public var failureReason: String? {
        stateLock.lock(); defer { stateLock.unlock() }
        return failure
    }

    /// Queues `body` on the communication thread; the returned work finishes with it.
    private func enqueue(_ what: String, _ body: @escaping () throws -> Void) -> Work {
        let work = Work(what, group: self)
        if let f = failureReason {
            work.finish(DistributedError.broken(f))
            return work
        }
        let ordering = engine.callerOrdering()
        comm.submit { [self] in
            if let f = failureReason { work.finish(DistributedError.broken(f)); return }
            do {
                try engine.ordered(ordering) { try body() }
                work.finish(nil)
            } catch {
                work.finish(error)
            }
        }
        return work
    }

    private func describe(_ op: String, _ t: Tensor) -> String {
        "\(op) \(t.dtype) [\(t.shape.map(String.init).joined(separator: ", "))]"
    }

    private func requireHost(_ op: String, _ t: Tensor) {
        Ember.check(t.device == engine.device,
                     "\(op): the \(backendName) process group takes tensors on \(engine.device), but got one on \(t.device)")
    }

    /// A contiguous tensor the library can read and write (the tensor itself when it
    /// already is one; float16/bfloat16 travel as float32).
    private func staging(_ t: Tensor) -> Tensor {
        if engine.supports(t.dtype) { return t.isContiguous ? t : withNoGrad { t.contiguous() } }
        return withNoGrad { t.to(.float32).contiguous() }
    }

    private func writeBack(_ staged: Tensor, into t: Tensor) {
        if staged !== t { withNoGrad { _ = t.copy_(staged) } } else { t.markModified() }
    }

    /// Runs on the communication thread: all ranks compare a fingerprint of `what`; when
    /// they differ, they exchange descriptions and every rank throws the same message.
    private func verify(_ what: String) throws {
        guard checksConsistency && worldSize > 1 else { return }
        let mine = fingerprint(what)
        let dev = engine.device
        let fp = Tensor([mine, -mine]).to(dev)
        try engine.allReduce(fp.contiguousDataPointer, count: 2, dtype: .int64, op: .max)
        let buf = fp.to(.cpu).toArray(Int64.self)
        if buf[0] == mine && buf[1] == -mine { return }
        let width = 256
        var me = [UInt8](repeating: 0, count: width)
        for (i, b) in what.utf8.prefix(width - 1).enumerated() { me[i] = b }
        let mineT = Tensor(me).to(dev)
        let allT = Tensor.zeros([width * worldSize], dtype: .uint8, device: dev)
        try engine.allGather(mineT.contiguousDataPointer, allT.contiguousDataPointer, count: width, dtype: .uint8)
        let all = allT.to(.cpu).toArray(UInt8.self)
        let lines = (0..<worldSize).map { r -> String in
            let bytes = all[(r * width)..<((r + 1) * width)].prefix { $0 != 0 }
            return "rank \(r): \(String(decoding: bytes, as: UTF8.self))"
        }
        throw DistributedError.mismatch("the ranks called collectives with different arguments: " + lines.joined(separator: "; "))
    }

    // MARK: - Collectives

    /// Combines `tensor` across all ranks, in place (`all_reduce`).
    public func allReduceAsync(_ tensor: Tensor, op: Distributed.ReduceOp = .sum) -> Work {
        allReduceAsync(tensor, op: op, verifying: true)
    }

    func allReduceAsync(_ tensor: Tensor, op: Distributed.ReduceOp, verifying: Bool) -> Work {
        requireHost("allReduce", tensor)
        if op == .avg { Ember.check(tensor.dtype.isFloatingPoint, "allReduce: avg needs a floating-point tensor, got \(tensor.dtype)") }
        let what = describe("allReduce(\(op))", tensor)
        let staged = staging(tensor)
        let world = worldSize
        return enqueue(what) { [self] in
            if verifying { try verify(what) }
            try engine.allReduce(staged.contiguousDataPointer, count: staged.count, dtype: staged.dtype, op: op)
            if op == .avg { withNoGrad { _ = staged.mul_(1.0 / Double(world)) } }
            writeBack(staged, into: tensor)
        }
    }

    public func allReduce(_ tensor: Tensor, op: Distributed.ReduceOp = .sum) throws {
        try allReduceAsync(tensor, op: op).wait()
    }

    /// Copies `tensor` from rank `root` to every rank, in place (`broadcast`).
    public func broadcastAsync(_ tensor: Tensor, from root: Int = 0) -> Work {
        requireHost("broadcast", tensor)
        Ember.check(root >= 0 && root < worldSize, "broadcast: root \(root) is not a rank of a group of \(worldSize)")
        let what = describe("broadcast(from \(root))", tensor)
        let staged = staging(tensor)
        return enqueue(what) { [self] in
            try verify(what)
            try engine.broadcast(staged.contiguousDataPointer, count: staged.count, dtype: staged.dtype, root: root)
            writeBack(staged, into: tensor)
        }
    }

    public func broadcast(_ tensor: Tensor, from root: Int = 0) throws {
        try broadcastAsync(tensor, from: root).wait()
    }

    /// Gathers every rank's `tensor` into `output`, whose first dimension is the world size
    /// (`all_gather_into_tensor`).
    public func allGatherAsync(_ tensor: Tensor, into output: Tensor) -> Work {
        requireHost("allGather", tensor)
        requireHost("allGather", output)
        Ember.check(output.shape == [worldSize] + tensor.shape && output.dtype == tensor.dtype,
                     "allGather: output must be \(tensor.dtype) [\(([worldSize] + tensor.shape).map(String.init).joined(separator: ", "))], got \(output.dtype) \(output.shape)")
        let what = describe("allGather", tensor)
        let src = staging(tensor), dst = staging(output)
        return enqueue(what) { [self] in
            try verify(what)
            try engine.allGather(src.contiguousDataPointer, dst.contiguousDataPointer, count: src.count, dtype: src.dtype)
            writeBack(dst, into: output)
        }
    }

    /// Every rank's `tensor`, in rank order (`all_gather`).
    public func allGather(_ tensor: Tensor) throws -> [Tensor] {
        let out = Tensor.empty([worldSize] + tensor.shape, dtype: tensor.dtype, device: tensor.device)
        try allGatherAsync(tensor, into: out).wait()
        return (0..<worldSize).map { out[$0] }
    }

    /// Reduces `input` (first dimension divisible by the world size) across ranks and gives
    /// each rank its own slice along dimension 0 in `output` (`reduce_scatter_tensor`).
    public func reduceScatterAsync(_ input: Tensor, into output: Tensor, op: Distributed.ReduceOp = .sum) -> Work {
        requireHost("reduceScatter", input)
        requireHost("reduceScatter", output)
        Ember.check(input.rank >= 1 && input.shape[0] == output.shape.first.map { $0 * worldSize } ?? -1
                     && Array(input.shape.dropFirst()) == Array(output.shape.dropFirst()) && input.dtype == output.dtype,
                     "reduceScatter: input \(input.dtype) \(input.shape) must be the world size (\(worldSize)) times output \(output.dtype) \(output.shape) along dimension 0")
        if op == .avg { Ember.check(input.dtype.isFloatingPoint, "reduceScatter: avg needs a floating-point tensor, got \(input.dtype)") }
        let what = describe("reduceScatter(\(op))", input)
        let src = staging(input), dst = staging(output)
        let world = worldSize
        return enqueue(what) { [self] in
            try verify(what)
            try engine.reduceScatter(src.contiguousDataPointer, dst.contiguousDataPointer, count: dst.count,
                                     dtype: src.dtype, op: op)
            if op == .avg { withNoGrad { _ = dst.mul_(1.0 / Double(world)) } }
            writeBack(dst, into: output)
        }
    }

    public func reduceScatter(_ input: Tensor, op: Distributed.ReduceOp = .sum) throws -> Tensor {
        var shape = input.shape
        Ember.check(!shape.isEmpty && shape[0] % worldSize == 0,
                     "reduceScatter: dimension 0 of \(input.shape) is not divisible by the world size \(worldSize)")
        shape[0] /= worldSize
        let out = Tensor.empty(shape, dtype: input.dtype, device: input.device)
        try reduceScatterAsync(input, into: out, op: op).wait()
        return out
    }

    /// Waits until every rank has reached the barrier.
    public func barrierAsync() -> Work {
        enqueue("barrier") { [self] in try engine.barrier() }
    }

    public func barrier() throws { try barrierAsync().wait() }

    // MARK: - Point to point

    /// Sends `tensor` to rank `peer` (`isend`); the tensor must stay unchanged until the
    /// work finishes. On NCCL a send finishes only when the peer receives it, so two ranks
    /// that each send to the other before receiving must use `batchIsendIrecv`.
    public func sendAsync(_ tensor: Tensor, to peer: Int, tag: Int = 0) -> Work {
        batchIsendIrecv([.send(tensor, to: peer, tag: tag)])[0]
    }

    public func send(_ tensor: Tensor, to peer: Int, tag: Int = 0) throws {
        try sendAsync(tensor, to: peer, tag: tag).wait()
    }

    /// Receives into `tensor` from rank `peer` (`irecv`).
    public func recvAsync(_ tensor: Tensor, from peer: Int, tag: Int = 0) -> Work {
        batchIsendIrecv([.recv(tensor, from: peer, tag: tag)])[0]
    }

    public func recv(_ tensor: Tensor, from peer: Int, tag: Int = 0) throws {
        try recvAsync(tensor, from: peer, tag: tag).wait()
    }

    /// Starts the sends and receives of `ops` together and returns one work per operation
    /// (`batch_isend_irecv`); they finish together. On NCCL the batch is one NCCL group, which
    /// is what lets rings and exchanges (every rank sends and receives) progress; on MPI the
    /// operations are started in order as MPI_Isend/MPI_Irecv. NCCL has no tags: sends to a
    /// peer are matched with that peer's receives in call order.
    public func batchIsendIrecv(_ ops: [Distributed.P2POp]) -> [Work] {
        guard !ops.isEmpty else { return [] }
        var staged: [Tensor] = []
        var works: [Work] = []
        for op in ops {
            let name = op.kind == .send ? "send" : "recv"
            requireHost(name, op.tensor)
            Ember.check(op.peer >= 0 && op.peer < worldSize && op.peer != rank,
                         "\(name): invalid peer \(op.peer) (rank \(rank) of \(worldSize))")
            staged.append(staging(op.tensor))
            let direction = op.kind == .send ? "to" : "from"
            works.append(Work(describe("\(name)(\(direction) \(op.peer), tag \(op.tag))", op.tensor), group: self))
        }
        func finishAll(_ error: Error?) { for w in works { w.finish(error) } }
        if let f = failureReason { finishAll(DistributedError.broken(f)); return works }
        let ordering = engine.callerOrdering()
        comm.submit { [self] in
            do {
                let requests = zip(ops, staged).map { op, s in
                    PointToPoint(isSend: op.kind == .send, buffer: s.contiguousDataPointer, count: s.count,
                                 dtype: s.dtype, peer: op.peer, tag: op.tag)
                }
                let poll = try engine.ordered(ordering) { try engine.startPointToPoint(requests) }
                comm.addPoll { [self] in
                    do {
                        guard try poll() else { return false }
                        engine.ordered(ordering) {
                            for (op, s) in zip(ops, staged) where op.kind == .recv { writeBack(s, into: op.tensor) }
                        }
                        finishAll(nil)
                    } catch { finishAll(error) }
                    return true
                }
            } catch { finishAll(error) }
        }
        return works
    }

    // MARK: - Lifetime

    /// Ends the job on every rank at once (after an unrecoverable error).
    public func abort(code: Int32 = 1) -> Never {
        engine.abort(code: code)
        exit(code)
    }

    /// Shuts the communication library down; every rank must call it (`destroy_process_group`).
    public func destroy() throws {
        stateLock.lock()
        if finalized { stateLock.unlock(); return }
        finalized = true
        let broken = failure
        stateLock.unlock()
        if broken != nil { return }
        try comm.sync { [engine] in try engine.finalize() }
    }
}
