import CEmberNCCL
import EmberLoader
import EmberCUDA
import EmberCore
import Foundation

/// NCCL (`libnccl.so.2`, also from NVIDIA's `nvidia-nccl-cu12` wheel), opened at run time.
public final class NCCLLibrary: @unchecked Sendable {
    public let library: DynamicLibrary
    /// e.g. 22307 for 2.23.7.
    public let version: Int

    typealias Comm = OpaquePointer
    typealias FnColl = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int, Int32, Int32, Comm?, OpaquePointer?) -> Int32
    let getUniqueId: @convention(c) (UnsafeMutableRawPointer) -> Int32
    /// `ncclCommInitRank`, called through a C shim (its id argument is a struct by value).
    let commInitRank: UnsafeMutableRawPointer
    let commDestroy: @convention(c) (Comm?) -> Int32
    let commAbort: @convention(c) (Comm?) -> Int32
    let allReduce: FnColl
    let reduceScatter: FnColl
    let broadcast: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int, Int32, Int32, Comm?, OpaquePointer?) -> Int32
    let allGather: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int, Int32, Comm?, OpaquePointer?) -> Int32
    let send: @convention(c) (UnsafeRawPointer?, Int, Int32, Int32, Comm?, OpaquePointer?) -> Int32
    let recv: @convention(c) (UnsafeMutableRawPointer?, Int, Int32, Int32, Comm?, OpaquePointer?) -> Int32
    let groupStart: @convention(c) () -> Int32
    let groupEnd: @convention(c) () -> Int32
    let errorString: (@convention(c) (Int32) -> UnsafePointer<CChar>?)?

    public static func load() throws -> NCCLLibrary {
        do { return try NCCLLibrary(CUDALibraries.open(CUDALibraries.nccl)) } catch let e as CUDAError {
            throw DistributedError.libraryNotFound("\(e)\nInstall NCCL (pip install nvidia-nccl-cu12, or NVIDIA's libnccl2 package) or set EMBER_NCCL_LIBRARY.")
        }
    }

    init(_ lib: DynamicLibrary) throws {
        library = lib
        func fn<T>(_ n: String) throws -> T { try lib.require([n]) { DistributedError.libraryNotFound($0) } }
        let getVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32 = try fn("ncclGetVersion")
        var v: Int32 = 0
        _ = getVersion(&v)
        version = Int(v)
        getUniqueId = try fn("ncclGetUniqueId")
        commInitRank = try fn("ncclCommInitRank") as UnsafeMutableRawPointer
        commDestroy = try fn("ncclCommDestroy")
        commAbort = try fn("ncclCommAbort")
        allReduce = try fn("ncclAllReduce")
        reduceScatter = try fn("ncclReduceScatter")
        broadcast = try fn("ncclBroadcast")
        allGather = try fn("ncclAllGather")
        send = try fn("ncclSend")
        recv = try fn("ncclRecv")
        groupStart = try fn("ncclGroupStart")
        groupEnd = try fn("ncclGroupEnd")
        errorString = lib.symbol("ncclGetErrorString", as: (@convention(c) (Int32) -> UnsafePointer<CChar>?).self)
    }

    func check(_ code: Int32, _ what: String) throws {
        guard code != 0 else { return }
        let m = errorString.flatMap { $0(code) }.map { String(cString: $0) } ?? "error \(code)"
        throw DistributedError.backend("\(what) failed: \(m)")
    }

    /// A new 128-byte communicator id (rank 0 makes it; the others receive it).
    public func uniqueId() throws -> [UInt8] {
        var id = [UInt8](repeating: 0, count: 128)
        try check(id.withUnsafeMutableBytes { getUniqueId($0.baseAddress!) }, "ncclGetUniqueId")
        return id
    }

    /// Rank 0 makes the id and publishes it in `store`; every rank returns it.
    public func exchangeUniqueId(rank: Int, store: TCPStore, key: String = "ember/nccl/unique-id") throws -> [UInt8] {
        if rank == 0 {
            let id = try uniqueId()
            try store.set(key, id)
            return id
        }
        let id = try store.get(key)
        guard id.count == 128 else { throw DistributedError.rendezvous("the NCCL id in the store has \(id.count) bytes, not 128") }
        return id
    }

    static func datatype(_ d: DType) -> Int32? {
        switch d {
        case .uint8, .bool: 1
        case .int32: 2
        case .int64: 4
        case .float16: 6
        case .float32: 7
        case .float64: 8
        case .bfloat16: 9
        }
    }

    static func op(_ o: Distributed.ReduceOp) -> Int32 {
        switch o {
        case .sum: 0
        case .product: 1
        case .max: 2
        case .min: 3
        case .avg: 4
        }
    }
}

/// Collectives on CUDA tensors through NCCL. Work is queued on a stream of its own that
/// first waits for the compute stream (so the tensor's producers have run), and the
/// communication thread waits for it, which is how `Work.wait()`'s timeout covers NCCL too.
final class NCCLEngine: CollectiveEngine {
    var device: Device { .cuda(deviceIndex) }
    let nccl: NCCLLibrary
    let rank: Int
    let worldSize: Int
    let deviceIndex: Int
    let comm: OpaquePointer
    let stream: OpaquePointer
    var name: String { "NCCL \(nccl.version / 10000).\(nccl.version / 100 % 100).\(nccl.version % 100)" }

    /// Runs on the communication thread.
    init(nccl: NCCLLibrary, id: [UInt8], rank: Int, worldSize: Int, deviceIndex: Int) throws {
        self.nccl = nccl
        self.rank = rank
        self.worldSize = worldSize
        self.deviceIndex = deviceIndex
        CUDAInterop.makeCurrent(deviceIndex)
        stream = CUDAInterop.newStream(deviceIndex)
        var c: UnsafeMutableRawPointer?
        let rc = id.withUnsafeBytes { ember_nccl_comm_init_rank(nccl.commInitRank, &c, Int32(worldSize), $0.baseAddress, Int32(rank)) }
        try nccl.check(rc, "ncclCommInitRank(rank \(rank) of \(worldSize))")
        comm = OpaquePointer(c!)
    }

    func supports(_ dtype: DType) -> Bool { NCCLLibrary.datatype(dtype) != nil }

    /// Queues `body` after the compute stream's work and waits for it.
    private func run(_ what: String, _ body: () -> Int32) throws {
        CUDAInterop.makeCurrent(deviceIndex)
        CUDAInterop.streamWait(deviceIndex, stream, after: CUDAInterop.currentStream(deviceIndex))
        try nccl.check(body(), what)
        CUDAInterop.synchronize(deviceIndex, stream)
    }

    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, op: Distributed.ReduceOp) throws {
        // NCCL has avg itself; the group then divides again, so sum is asked for and the group divides.
        let o = NCCLLibrary.op(op == .avg ? .sum : op)
        try run("ncclAllReduce") { nccl.allReduce(buffer, buffer, count, NCCLLibrary.datatype(dtype)!, o, comm, stream) }
    }

    func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, dtype: DType, root: Int) throws {
        try run("ncclBroadcast") { nccl.broadcast(buffer, buffer, count, NCCLLibrary.datatype(dtype)!, Int32(root), comm, stream) }
    }

    func allGather(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, dtype: DType) throws {
        try run("ncclAllGather") { nccl.allGather(send, recv, count, NCCLLibrary.datatype(dtype)!, comm, stream) }
    }

    func reduceScatter(_ send: UnsafeRawPointer, _ recv: UnsafeMutableRawPointer, count: Int, dtype: DType, op: Distributed.ReduceOp) throws {
        let o = NCCLLibrary.op(op == .avg ? .sum : op)
        try run("ncclReduceScatter") { nccl.reduceScatter(send, recv, count, NCCLLibrary.datatype(dtype)!, o, comm, stream) }
    }

    func barrier() throws {
        // An allReduce of one value (NCCL has no barrier).
        let t = Tensor.zeros([1], device: .cuda(deviceIndex))
        try allReduce(t.contiguousDataPointer, count: 1, dtype: .float32, op: .sum)
    }

    /// One NCCL group of sends and receives on the engine's stream, after the compute
    /// stream's work; the poll reports when the group has finished on the GPU. NCCL has no
    /// tags: a peer's sends are matched with its receives in call order.
    func startPointToPoint(_ ops: [PointToPoint]) throws -> () throws -> Bool {
        CUDAInterop.makeCurrent(deviceIndex)
        CUDAInterop.streamWait(deviceIndex, stream, after: CUDAInterop.currentStream(deviceIndex))
        try nccl.check(nccl.groupStart(), "ncclGroupStart")
        var failed: (Int32, String)?
        for op in ops where failed == nil {
            let t = NCCLLibrary.datatype(op.dtype)!
            let rc = op.isSend ? nccl.send(op.buffer, op.count, t, Int32(op.peer), comm, stream)
                               : nccl.recv(op.buffer, op.count, t, Int32(op.peer), comm, stream)
            if rc != 0 { failed = (rc, op.isSend ? "ncclSend(to \(op.peer))" : "ncclRecv(from \(op.peer))") }
        }
        let end = nccl.groupEnd()
        if let (rc, what) = failed { try nccl.check(rc, what) }
        try nccl.check(end, "ncclGroupEnd")
        let marker = CUDAInterop.record(deviceIndex, on: stream)
        let device = deviceIndex
        var released = false
        return {
            guard !released else { return true }
            do {
                guard try CUDAInterop.isComplete(device, marker) else { return false }
            } catch {
                released = true
                CUDAInterop.release(device, marker)
                throw DistributedError.backend("NCCL send/recv: \(error)")
            }
            released = true
            CUDAInterop.release(device, marker)
            return true
        }
    }

    func callerOrdering() -> AnyObject? { Ember.CUDA.Stream.current(device: deviceIndex) }

    func ordered<R>(_ ordering: AnyObject?, _ body: () throws -> R) rethrows -> R {
        guard let stream = ordering as? Ember.CUDA.Stream else { return try body() }
        return try Ember.CUDA.withStream(stream, body)
    }

    func abort(code: Int32) { _ = nccl.commAbort(comm) }

    func finalize() throws {
        CUDAInterop.synchronize(deviceIndex, stream)
        try nccl.check(nccl.commDestroy(comm), "ncclCommDestroy")
    }
}
