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

    /// Starts every send and receive of `ops` (MPI_Isend/MPI_Irecv); the poll tests them
    /// and reports true once all have completed.
    func startPointToPoint(_ ops: [PointToPoint]) throws -> () throws -> Bool {
        var requests: [UnsafeMutableRawPointer] = []
        func release() { for r in requests { r.deallocate() }; requests.removeAll() }
        for op in ops {
            guard op.count <= Int(Int32.max) else {
                release()
                throw DistributedError.backend("\(op.isSend ? "send" : "recv"): \(op.count) elements exceed MPI's int count")
            }
            let req = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
            req.storeBytes(of: 0, as: UInt64.self)
            let t = try type(op.dtype)
            let code = op.isSend
                ? mpi.isend(op.buffer, Int32(op.count), t, Int32(op.peer), Int32(op.tag), mpi.commWorld, req)
                : mpi.irecv(UnsafeRawPointer(op.buffer), Int32(op.count), t, Int32(op.peer), Int32(op.tag), mpi.commWorld, req)
            if code != 0 {
                req.deallocate()
                // Requests already started stay with MPI (it owns their buffers until they finish).
                requests.removeAll()
                try mpi.check(code, op.isSend ? "MPI_Isend" : "MPI_Irecv")
            }
            requests.append(req)
        }
        var pending = Array(requests.indices)
        let names = ops.map { $0.isSend ? "MPI_Isend" : "MPI_Irecv" }
        return { [mpi] in
            // Status is ignored; 64 bytes covers every ABI's MPI_Status should a library write one.
            let status = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
            defer { status.deallocate() }
            var failure: (Int32, String)?
            pending.removeAll { i in
                guard failure == nil else { return false }
                var flag: Int32 = 0
                let code = mpi.test(requests[i], &flag, mpi.statusIgnore ?? status)
                if code != 0 { failure = (code, names[i]); requests[i].deallocate(); return true }
                if flag != 0 { requests[i].deallocate(); return true }
                return false
            }
            if let (code, what) = failure { try mpi.check(code, what) }
            return pending.isEmpty
        }
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
