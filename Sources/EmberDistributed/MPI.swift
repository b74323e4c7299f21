import EmberLoader
import EmberCore
import Foundation

/// The MPI library, opened at run time so that `swift build` needs no MPI.
///
/// MPI fixes the C API but not the ABI: Open MPI's handles (`MPI_Comm`, `MPI_Datatype`,
/// `MPI_Op`) are addresses of global objects such as `ompi_mpi_comm_world`, while MPICH and
/// its derivatives (Intel MPI, MVAPICH, Microsoft MPI) use 32-bit integer constants. The
/// family is found by probing the loaded library for Open MPI's symbols. Every handle is
/// passed as one machine word: an `int` handle rides in the low half of the register, which
/// is how the x86-64 and arm64 calling conventions pass an `int`.
public final class MPILibrary: @unchecked Sendable {
    public enum ABI: String, Sendable { case openMPI = "Open MPI", mpich = "MPICH" }

    public let library: DynamicLibrary
    public let abi: ABI
    /// `MPI_Get_library_version`, when the library has it.
    public private(set) var version = ""

    typealias Handle = UInt
    let commWorld: Handle
    let errorsReturn: Handle
    let inPlace: UnsafeMutableRawPointer
    let statusIgnore: UnsafeMutableRawPointer?
    private let types: [DType: Handle]
    private let ops: [Distributed.ReduceOp: Handle]

    // C entry points (MPI 3.0).
    typealias FnInitThread = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?, Int32, UnsafeMutablePointer<Int32>) -> Int32
    typealias FnFlag = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    typealias FnVoid = @convention(c) () -> Int32
    typealias FnCommInt = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias FnComm = @convention(c) (Handle) -> Int32
    typealias FnCommHandle = @convention(c) (Handle, Handle) -> Int32
    typealias FnAbort = @convention(c) (Handle, Int32) -> Int32
    typealias FnAllreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    typealias FnBcast = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    typealias FnAllgather = @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle) -> Int32
    typealias FnReduceScatterBlock = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    typealias FnIsend = @convention(c) (UnsafeRawPointer?, Int32, Handle, Int32, Int32, Handle, UnsafeMutableRawPointer) -> Int32
    typealias FnTest = @convention(c) (UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32
    typealias FnErrorString = @convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32
    typealias FnLibVersion = @convention(c) (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32

    let initThread: FnInitThread
    let initialized: FnFlag
    let finalized: FnFlag
    let finalize: FnVoid
    let commRank: FnCommInt
    let commSize: FnCommInt
    let barrier: FnComm
    let setErrhandler: FnCommHandle
    let abort: FnAbort
    let allreduce: FnAllreduce
    let bcast: FnBcast
    let allgather: FnAllgather
    let reduceScatterBlock: FnReduceScatterBlock
    let isend: FnIsend
    let irecv: FnIsend
    let test: FnTest
    let errorString: FnErrorString?

    /// Library names tried, in order, after `EMBER_MPI_LIBRARY`. The launcher's environment
    /// decides which family comes first (Open MPI's `mpirun` sets `OMPI_*`).
    public static func candidates(environment env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        #if os(Windows)
        return ["msmpi.dll", "impi.dll"]
        #elseif canImport(Darwin)
        let ompi = ["libmpi.40.dylib", "/opt/homebrew/lib/libmpi.40.dylib", "/usr/local/lib/libmpi.40.dylib"]
        let mpich = ["libmpi.12.dylib", "/opt/homebrew/lib/libmpi.12.dylib", "/usr/local/lib/libmpi.12.dylib"]
        let plain = ["libmpi.dylib", "/opt/homebrew/lib/libmpi.dylib", "/usr/local/lib/libmpi.dylib"]
        return (env.keys.contains { $0.hasPrefix("OMPI_") } ? ompi + mpich : mpich + ompi) + plain
        #else
        let ompi = ["libmpi.so.40"]
        let mpich = ["libmpich.so.12", "libmpi.so.12", "libmpi_abi.so"]
        let plain = ["libmpi.so"]
        return (env.keys.contains { $0.hasPrefix("OMPI_") } || !env.keys.contains { $0.hasPrefix("PMI_") || $0.hasPrefix("HYDRA_") }
                ? ompi + mpich : mpich + ompi) + plain
        #endif
    }

    /// Opens the MPI library (`EMBER_MPI_LIBRARY`, then `candidates`).
    public static func load(candidates names: [String]? = nil) throws -> MPILibrary {
        let lib: DynamicLibrary
        do {
            lib = try DynamicLibrary.open("MPI", environment: names == nil ? "EMBER_MPI_LIBRARY" : nil,
                                          candidates: names ?? candidates(), global: true)
        } catch let e as DynamicLibrary.LoadError {
            throw DistributedError.libraryNotFound(
                "\(e)\nInstall an MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev, or mpich; macOS: brew install open-mpi; Windows: Microsoft MPI) or set EMBER_MPI_LIBRARY to its shared library.")
        }
        return try MPILibrary(lib)
    }

    init(_ lib: DynamicLibrary) throws {
        library = lib
        func fn<T>(_ name: String, _ t: T.Type) throws -> T {
            try lib.require([name], as: t) { DistributedError.libraryNotFound($0 + ": not an MPI 3 library") }
        }
        func address(_ name: String) -> Handle? {
            lib.symbol(name, as: UnsafeMutableRawPointer.self).map { UInt(bitPattern: $0) }
        }
        if let world = address("ompi_mpi_comm_world") {
            abi = .openMPI
            commWorld = world
            errorsReturn = address("ompi_mpi_errors_return") ?? 0
            inPlace = UnsafeMutableRawPointer(bitPattern: 1)!
            statusIgnore = nil
            var t: [DType: Handle] = [:]
            for (d, s) in [(DType.float32, "ompi_mpi_float"), (.float64, "ompi_mpi_double"),
                           (.uint8, "ompi_mpi_uint8_t"), (.int32, "ompi_mpi_int32_t"),
                           (.int64, "ompi_mpi_int64_t"), (.bool, "ompi_mpi_uint8_t")] {
                if let h = address(s) { t[d] = h }
            }
            types = t
            var o: [Distributed.ReduceOp: Handle] = [:]
            for (op, s) in [(Distributed.ReduceOp.sum, "ompi_mpi_op_sum"), (.max, "ompi_mpi_op_max"), (.min, "ompi_mpi_op_min"),
                            (.product, "ompi_mpi_op_prod")] {
                if let h = address(s) { o[op] = h }
            }
            ops = o
            byteType = address("ompi_mpi_byte") ?? 0
        } else {
            abi = .mpich
            commWorld = 0x4400_0000
            errorsReturn = 0x5400_0001
            inPlace = UnsafeMutableRawPointer(bitPattern: UInt.max)!
            statusIgnore = UnsafeMutableRawPointer(bitPattern: 1)
            types = [.float32: 0x4c00_040a, .float64: 0x4c00_080b, .uint8: 0x4c00_013b,
                     .int32: 0x4c00_0439, .int64: 0x4c00_083a, .bool: 0x4c00_013b]
            ops = [.sum: 0x5800_0003, .max: 0x5800_0001, .min: 0x5800_0002, .product: 0x5800_0004]
            byteType = 0x4c00_010d
        }
        initThread = try fn("MPI_Init_thread", FnInitThread.self)
        initialized = try fn("MPI_Initialized", FnFlag.self)
        finalized = try fn("MPI_Finalized", FnFlag.self)
        finalize = try fn("MPI_Finalize", FnVoid.self)
        commRank = try fn("MPI_Comm_rank", FnCommInt.self)
        commSize = try fn("MPI_Comm_size", FnCommInt.self)
        barrier = try fn("MPI_Barrier", FnComm.self)
        setErrhandler = try fn("MPI_Comm_set_errhandler", FnCommHandle.self)
        abort = try fn("MPI_Abort", FnAbort.self)
        allreduce = try fn("MPI_Allreduce", FnAllreduce.self)
        bcast = try fn("MPI_Bcast", FnBcast.self)
        allgather = try fn("MPI_Allgather", FnAllgather.self)
        reduceScatterBlock = try fn("MPI_Reduce_scatter_block", FnReduceScatterBlock.self)
        isend = try fn("MPI_Isend", FnIsend.self)
        irecv = try fn("MPI_Irecv", FnIsend.self)
        test = try fn("MPI_Test", FnTest.self)
        errorString = lib.symbol("MPI_Error_string", as: FnErrorString.self)
        if let v = lib.symbol("MPI_Get_library_version", as: FnLibVersion.self) {
            var buf = [CChar](repeating: 0, count: 8192)
            var n: Int32 = 0
            if v(&buf, &n) == 0 {
                version = String(decoding: buf.prefix(Int(n)).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
    }

    let byteType: Handle

    /// The MPI datatype of `dtype`, if MPI has one (float16/bfloat16 travel as float32).
    func datatype(_ dtype: DType) -> Handle? { types[dtype] }
    func op(_ op: Distributed.ReduceOp) -> Handle { ops[op == .avg ? .sum : op]! }

    /// Throws with MPI's own message when `code` is not MPI_SUCCESS.
    func check(_ code: Int32, _ what: String) throws {
        guard code != 0 else { return }
        var text = "error code \(code)"
        if let errorString {
            var buf = [CChar](repeating: 0, count: 1024)
            var n: Int32 = 0
            if errorString(code, &buf, &n) == 0 {
                text = String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        throw DistributedError.backend("\(what) failed: \(text)")
    }
}

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`).
public func launchedByMPI(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
    env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil
        || env["MPI_LOCALNRANKS"] != nil || env["PMI_RANK"] != nil
}
