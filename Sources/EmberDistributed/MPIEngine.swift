import EmberCore
import Foundation

/// Collectives on MPI's world communicator. Counts above `Int32.max` are split.
final class MPIEngine: CollectiveEngine {
    let mpi: MPILibrary
    let rank: Int
    let worldSize: Int
    var name: String { "MPI (\(mpi.abi.rawValue))" }
    var device: Device { .cpu }
    private var ownsInit = false

    /// Initialises MPI on the calling thread (the communication thread).
    init(_ mpi: MPILibrary) throws {
        self.mpi = mpi
        var flag: Int32 = 0
        _ = mpi.initialized(&flag)
        if flag == 0 {
            var provided: Int32 = 0
            try mpi.check(mpi.initThread(nil, nil, 1 /* MPI_THREAD_FUNNELED */, &provided), "MPI_Init_thread")
            ownsInit = true
        }
        if mpi.errorsReturn != 0 { _ = mpi.setErrhandler(mpi.commWorld, mpi.errorsReturn) }
        var r: Int32 = 0, n: Int32 = 0
        try mpi.check(mpi.commRank(mpi.commWorld, &r), "MPI_Comm_rank")
        try mpi.check(mpi.commSize(mpi.commWorld, &n), "MPI_Comm_size")
        rank = Int(r)
        worldSize = Int(n)
    }

    func supports(_ dtype: DType) -> Bool { mpi.datatype(dtype) != nil }

    private func type(_ d: DType) throws -> MPILibrary.Handle {
        guard let t = mpi.datatype(d) else { throw DistributedError.backend("MPI has no datatype for \(d)") }
        return t
    }

    /// Runs `body` over chunks of at most Int32.max elements.
    private func chunks(_ count: Int, _ itemSize: Int, _ body: (Int, Int32) throws -> Void) throws {
        let step = Int(Int32.max) / 2
        var start = 0
        repeat {
            let n = Swift.min(step, count - start)
            try body(start * itemSize, Int32(n))
            start += n
        } while start < count
    }

    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: Distributed.ReduceOp) throws {
        let t = try type(dtype), o = mpi.op(op)
        if dtype == .bool && op == .sum { throw DistributedError.backend("allReduce: sum of bool tensors is not defined; use max or min") }
        try chunks(count, dtype.itemSize) { off, n in
            try mpi.check(mpi.allreduce(mpi.inPlace, buffer + off, n, t, o, mpi.commWorld), "MPI_Allreduce")
        }
    }

    func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, root: Int) throws {
        let t = try type(dtype)
        try chunks(count, dtype.itemSize) { off, n in
            try mpi.check(mpi.bcast(buffer + off, n, t, Int32(root), mpi.commWorld), "MPI_Bcast")
        }
    }

    func allGather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, dtype: DType) throws {
        let t = try type(dtype)
        guard count <= Int(Int32.max) else { throw DistributedError.backend("allGather: \(count) elements per rank exceed MPI's int count") }
        try mpi.check(mpi.allgather(send, Int32(count), t, recv, Int32(count), t, mpi.commWorld), "MPI_Allgather")
    }

    func reduceScatter(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, dtype: DType, op: Distributed.ReduceOp) throws {
        let t = try type(dtype)
        guard count <= Int(Int32.max) else { throw DistributedError.backend("reduceScatter: \(count) elements per rank exceed MPI's int count") }
        try mpi.check(mpi.reduceScatterBlock(send, recv, Int32(count), t, mpi.op(op), mpi.commWorld), "MPI_Reduce_scatter_block")
    }

    func barrier() throws {
        try mpi.check(mpi.barrier(mpi.commWorld), "MPI_Barrier")
    }

    private func poll(_ request: UnsafeMutableRawPointer, _ what: String) -> () throws -> Bool {
        return { [mpi] in
            var flag: Int32 = 0
            // Status is ignored; 64 bytes covers every ABI's MPI_Status should a library write one.
            let status = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
            defer { status.deallocate() }
            let code = mpi.test(request, &flag, mpi.statusIgnore ?? status)
            if code != 0 { request.deallocate(); try mpi.check(code, what) }
            if flag != 0 { request.deallocate(); return true }
            return false
        }
    }

    private func newRequest() -> UnsafeMutableRawPointer {
        let r = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        r.storeBytes(of: 0, as: UInt64.self)
        return r
    }

    func startSend(_ buffer: UnsafeRawPointer, count: Int, dtype: DType, peer: Int, tag: Int) throws -> () throws -> Bool {
        guard count <= Int(Int32.max) else { throw DistributedError.backend("send: \(count) elements exceed MPI's int count") }
        let req = newRequest()
        let code = mpi.isend(buffer, Int32(count), try type(dtype), Int32(peer), Int32(tag), mpi.commWorld, req)
        if code != 0 { req.deallocate(); try mpi.check(code, "MPI_Isend") }
        return poll(req, "MPI_Isend")
    }

    func startRecv(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, peer: Int, tag: Int) throws -> () throws -> Bool {
        guard count <= Int(Int32.max) else { throw DistributedError.backend("recv: \(count) elements exceed MPI's int count") }
        let req = newRequest()
        let code = mpi.irecv(UnsafeRawPointer(buffer), Int32(count), try type(dtype), Int32(peer), Int32(tag), mpi.commWorld, req)
        if code != 0 { req.deallocate(); try mpi.check(code, "MPI_Irecv") }
        return poll(req, "MPI_Irecv")
    }

    func abort(code: Int32) {
        _ = mpi.abort(mpi.commWorld, code)
    }

    func finalize() throws {
        var flag: Int32 = 0
        _ = mpi.finalized(&flag)
        if ownsInit && flag == 0 { try mpi.check(mpi.finalize(), "MPI_Finalize") }
    }
}
