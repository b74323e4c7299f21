import EmberLoader
import EmberCore
import Foundation

/// cuBLAS (v2 API), opened at run time, for float32/float64 matrix products.
final class CUBLAS: @unchecked Sendable {
    let library: DynamicLibrary
    typealias Handle = OpaquePointer
    let create: @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32
    let setStream: @convention(c) (Handle?, OpaquePointer?) -> Int32
    let setMathMode: (@convention(c) (Handle?, Int32) -> Int32)?
    let sgemmStridedBatched: @convention(c) (Handle?, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, UInt64, Int32, Int64,
                                             UInt64, Int32, Int64, UnsafePointer<Float>, UInt64, Int32, Int64, Int32) -> Int32
    let dgemmStridedBatched: @convention(c) (Handle?, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Double>, UInt64, Int32, Int64,
                                             UInt64, Int32, Int64, UnsafePointer<Double>, UInt64, Int32, Int64, Int32) -> Int32
    var handle: Handle?

    static func load() throws -> CUBLAS { try CUBLAS(CUDALibraries.open(CUDALibraries.cublas)) }

    init(_ lib: DynamicLibrary) throws {
        library = lib
        func fn<T>(_ n: String) throws -> T { try lib.require([n]) { CUDAError.libraryNotFound($0) } }
        create = try fn("cublasCreate_v2")
        setStream = try fn("cublasSetStream_v2")
        setMathMode = lib.symbol("cublasSetMathMode", as: (@convention(c) (Handle?, Int32) -> Int32).self)
        sgemmStridedBatched = try fn("cublasSgemmStridedBatched")
        dgemmStridedBatched = try fn("cublasDgemmStridedBatched")
    }

    private init(_ other: CUBLAS, handle: Handle?) {
        library = other.library
        create = other.create
        setStream = other.setStream
        setMathMode = other.setMathMode
        sgemmStridedBatched = other.sgemmStridedBatched
        dgemmStridedBatched = other.dgemmStridedBatched
        self.handle = handle
    }

    /// A handle bound to one device's stream (the device's context must be current).
    func forDevice(stream: OpaquePointer) throws -> CUBLAS {
        var h: Handle?
        let rc = create(&h)
        guard rc == 0 else { throw CUDAError.driver("cublasCreate failed with status \(rc)") }
        _ = setStream(h, stream)
        let c = CUBLAS(self, handle: h)
        c.setTF32(Ember.CUDA.allowTF32)
        return c
    }

    /// TF32 tensor-core math for float32 products (off by default, as PyTorch).
    func setTF32(_ on: Bool) { _ = setMathMode?(handle, on ? 3 : 0) }
}
