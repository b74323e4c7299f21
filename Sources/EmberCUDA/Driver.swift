import EmberLoader
import Foundation

/// The CUDA driver API (`libcuda.so.1` / `nvcuda.dll`), opened at run time. Only the
/// driver is required to run kernels: they come from NVRTC, so no CUDA runtime is linked.
public final class CUDADriver: @unchecked Sendable {
    public let library: DynamicLibrary
    /// The driver's CUDA version, e.g. 12040 for 12.4.
    public let version: Int

    typealias R = Int32
    typealias Ptr = UInt64  // CUdeviceptr
    let cuInit: @convention(c) (UInt32) -> R
    let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> R
    let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> R
    let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> R
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> R
    let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> R
    let cuDeviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> R
    let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32) -> R
    let cuCtxSetCurrent: @convention(c) (OpaquePointer?) -> R
    let cuCtxSynchronize: @convention(c) () -> R
    let cuMemAlloc: @convention(c) (UnsafeMutablePointer<Ptr>, Int) -> R
    let cuMemFree: @convention(c) (Ptr) -> R
    let cuMemGetInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> R
    let cuMemcpyHtoDAsync: @convention(c) (Ptr, UnsafeRawPointer, Int, OpaquePointer?) -> R
    let cuMemcpyDtoHAsync: @convention(c) (UnsafeMutableRawPointer, Ptr, Int, OpaquePointer?) -> R
    let cuMemcpyDtoDAsync: @convention(c) (Ptr, Ptr, Int, OpaquePointer?) -> R
    let cuMemsetD8Async: @convention(c) (Ptr, UInt8, Int, OpaquePointer?) -> R
    let cuMemHostAlloc: @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>, Int, UInt32) -> R
    let cuMemFreeHost: @convention(c) (UnsafeMutableRawPointer) -> R
    let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> R
    let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafePointer<CChar>) -> R
    let cuLaunchKernel: @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, OpaquePointer?,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> R
    let cuStreamCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> R
    let cuStreamSynchronize: @convention(c) (OpaquePointer?) -> R
    let cuStreamDestroy: @convention(c) (OpaquePointer?) -> R
    let cuStreamWaitEvent: @convention(c) (OpaquePointer?, OpaquePointer?, UInt32) -> R
    let cuEventCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> R
    let cuEventRecord: @convention(c) (OpaquePointer?, OpaquePointer?) -> R
    let cuEventSynchronize: @convention(c) (OpaquePointer?) -> R
    let cuEventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, OpaquePointer?, OpaquePointer?) -> R
    let cuEventDestroy: @convention(c) (OpaquePointer?) -> R
    let cuEventQuery: @convention(c) (OpaquePointer?) -> R
    let cuGetErrorString: (@convention(c) (R, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> R)?

    public static func load() throws -> CUDADriver { try CUDADriver(CUDALibraries.open(CUDALibraries.driver)) }

    init(_ lib: DynamicLibrary) throws {
        library = lib
        func fn<T>(_ names: String...) throws -> T {
            try lib.require(names) { CUDAError.libraryNotFound($0 + ": driver too old") }
        }
        cuInit = try fn("cuInit")
        cuDriverGetVersion = try fn("cuDriverGetVersion")
        cuDeviceGetCount = try fn("cuDeviceGetCount")
        cuDeviceGet = try fn("cuDeviceGet")
        cuDeviceGetName = try fn("cuDeviceGetName")
        cuDeviceGetAttribute = try fn("cuDeviceGetAttribute")
        cuDeviceTotalMem = try fn("cuDeviceTotalMem_v2")
        cuDevicePrimaryCtxRetain = try fn("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try fn("cuCtxSetCurrent")
        cuCtxSynchronize = try fn("cuCtxSynchronize")
        cuMemAlloc = try fn("cuMemAlloc_v2")
        cuMemFree = try fn("cuMemFree_v2")
        cuMemGetInfo = try fn("cuMemGetInfo_v2")
        cuMemcpyHtoDAsync = try fn("cuMemcpyHtoDAsync_v2")
        cuMemcpyDtoHAsync = try fn("cuMemcpyDtoHAsync_v2")
        cuMemcpyDtoDAsync = try fn("cuMemcpyDtoDAsync_v2")
        cuMemsetD8Async = try fn("cuMemsetD8Async")
        cuMemHostAlloc = try fn("cuMemHostAlloc")
        cuMemFreeHost = try fn("cuMemFreeHost")
        cuModuleLoadData = try fn("cuModuleLoadData")
        cuModuleGetFunction = try fn("cuModuleGetFunction")
        cuLaunchKernel = try fn("cuLaunchKernel")
        cuStreamCreate = try fn("cuStreamCreate")
        cuStreamSynchronize = try fn("cuStreamSynchronize")
        cuStreamDestroy = try fn("cuStreamDestroy_v2")
        cuStreamWaitEvent = try fn("cuStreamWaitEvent")
        cuEventCreate = try fn("cuEventCreate")
        cuEventRecord = try fn("cuEventRecord")
        cuEventSynchronize = try fn("cuEventSynchronize")
        cuEventElapsedTime = try fn("cuEventElapsedTime_v2", "cuEventElapsedTime")
        cuEventDestroy = try fn("cuEventDestroy_v2")
        cuEventQuery = try fn("cuEventQuery")
        cuGetErrorString = lib.symbol("cuGetErrorString", as: (@convention(c) (R, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> R).self)
        var v: Int32 = 0
        let rc = cuInit(0)
        if rc != 0 {
            throw CUDAError.noDevice("cuInit failed (\(CUDADriver.message(rc, cuGetErrorString))): no usable NVIDIA GPU or driver")
        }
        _ = cuDriverGetVersion(&v)
        version = Int(v)
    }

    static func message(_ code: R, _ f: (@convention(c) (R, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> R)?) -> String {
        var p: UnsafePointer<CChar>? = nil
        if let f, f(code, &p) == 0, let p { return "\(String(cString: p)) (\(code))" }
        return "CUDA error \(code)"
    }

    /// Throws `CUDAError.driver` naming the call when `code` is not CUDA_SUCCESS.
    func check(_ code: R, _ what: @autoclosure () -> String) throws {
        if code != 0 { throw CUDAError.driver("\(what()) failed: \(CUDADriver.message(code, cuGetErrorString))") }
    }

    /// Like `check`, for calls whose failure means the device is unusable (a kernel fault,
    /// a lost device): stops with the message, as an out-of-bounds access would on the CPU.
    func must(_ code: R, _ what: @autoclosure () -> String) {
        if code != 0 { fatalError("Ember CUDA: \(what()) failed: \(CUDADriver.message(code, cuGetErrorString))") }
    }
}
