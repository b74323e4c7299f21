import EmberCore
import Foundation

extension Ember {
    /// NVIDIA GPUs (`torch.cuda`). Everything is found when the program runs: the driver,
    /// NVRTC (which compiles Ember's kernels) and cuBLAS. Accessing any property loads them
    /// once and registers a backend for every GPU, so `tensor.to(.cuda(0))` works after
    /// `Ember.CUDA.isAvailable` returned true.
    public enum CUDA {
        final class State: @unchecked Sendable {
            var devices: [CUDADevice] = []
            var reason: String?
            var driver: CUDADriver?
            var nvrtc: NVRTC?
            var cublasStatus = "not loaded"
            var pinned: PinnedPool?
            var cudnn: CUDNN?
            var cudnnStatus = "not loaded"
        }

        nonisolated(unsafe) private static var _allowTF32 = false

        /// Whether float32 matrix products may use TF32 tensor cores (off by default: full
        /// float32 precision, as PyTorch's default for matmul).
        public static var allowTF32: Bool {
            get { _allowTF32 }
            set {
                _allowTF32 = newValue
                for d in state.devices { d.cublas?.setTF32(newValue) }
            }
        }

        static let state: State = {
            let s = State()
            do {
                let driver = try CUDADriver.load()
                s.driver = driver
                var count: Int32 = 0
                try driver.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
                guard count > 0 else { throw CUDAError.noDevice("the driver reports no GPU") }
                let nvrtc: NVRTC
                do { nvrtc = try NVRTC.load(driverVersion: driver.version) } catch {
                    throw CUDAError.libraryNotFound("Ember compiles its GPU kernels with NVRTC, which was not found (pip install nvidia-cuda-nvrtc-cu12, or install the CUDA toolkit, or set EMBER_NVRTC_LIBRARY): \(error)")
                }
                s.nvrtc = nvrtc
                var cublas: CUBLAS? = nil
                do {
                    cublas = try CUBLAS.load()
                    s.cublasStatus = cublas!.library.path
                } catch {
                    s.cublasStatus = "not found, matrix products use Ember's own kernel (pip install nvidia-cublas-cu12): \(error)"
                }
                for i in 0..<Int(count) {
                    let d = try CUDADevice(index: i, driver: driver, nvrtc: nvrtc, cublas: cublas)
                    // A GPU whose driver cannot load NVRTC's output is reported here, with
                    // the reason, rather than at the first operation.
                    do { try d.probe() } catch { throw CUDAError.driver("cuda:\(i) (\(d.name)) cannot run Ember's kernels: \(error)") }
                    s.devices.append(d)
                    BackendRegistry.register(CUDABackend(d), for: .cuda(i))
                }
                if ProcessInfo.processInfo.environment["EMBER_CUDNN"] == "0" {
                    s.cudnnStatus = "off (EMBER_CUDNN=0): convolutions use im2col + cuBLAS"
                } else {
                    do {
                        let dnn = try CUDNN.load()
                        s.cudnn = dnn
                        s.cudnnStatus = "\(dnn.version) from \(dnn.library.path)"
                    } catch {
                        s.cudnnStatus = "not found, convolutions use im2col + cuBLAS (pip install nvidia-cudnn-cu12): \(error)"
                    }
                }
                let first = s.devices[0]
                let pool = PinnedPool(driver: driver) {
                    if CUDAThreadState.current.context == nil { first.makeCurrent() }
                }
                s.pinned = pool
                HostMemory.pinnedAllocator = { pool.storage($0) }
            } catch {
                s.reason = "\(error)"
            }
            return s
        }()

        /// Whether at least one GPU can run Ember's kernels.
        public static var isAvailable: Bool { !state.devices.isEmpty }
        /// Why CUDA is unavailable (every library path tried, the driver's message), or nil.
        public static var unavailableReason: String? { state.reason }
        public static var deviceCount: Int { state.devices.count }

        static func device(_ i: Int) -> CUDADevice {
            Ember.check(i >= 0 && i < state.devices.count,
                         "CUDA: device \(i) does not exist (\(state.devices.count) GPU(s)\(state.reason.map { "; \($0)" } ?? ""))")
            return state.devices[i]
        }

        public static func name(_ i: Int = 0) -> String { device(i).name }
        /// Compute capability (major, minor), e.g. (9, 0) for H100.
        public static func capability(_ i: Int = 0) -> (major: Int, minor: Int) { device(i).capability }
        public static func totalMemory(_ i: Int = 0) -> Int { device(i).totalMemory }
        /// Free and total bytes as the driver reports them.
        public static func memoryInfo(_ i: Int = 0) -> (free: Int, total: Int) {
            let d = device(i)
            d.makeCurrent()
            var free = 0, total = 0
            _ = d.driver.cuMemGetInfo(&free, &total)
            return (free, total)
        }
        /// Bytes held by live tensors (`torch.cuda.memory_allocated`).
        public static func memoryAllocated(_ i: Int = 0) -> Int { device(i).allocatedBytes }
        /// Bytes reserved from the driver by the caching allocator (`memory_reserved`).
        public static func memoryReserved(_ i: Int = 0) -> Int { device(i).reservedBytes }
        /// The most bytes held by live tensors since the start or the last
        /// `resetPeakMemoryStats` (`max_memory_allocated`).
        public static func maxMemoryAllocated(_ i: Int = 0) -> Int { device(i).peakAllocatedBytes }
        /// Starts peak tracking again from what is allocated now (`reset_peak_memory_stats`).
        public static func resetPeakMemoryStats(_ i: Int = 0) { device(i).resetPeak() }
        /// Returns cached, unused blocks to the driver (`empty_cache`).
        public static func emptyCache() {
            for d in state.devices { d.lock.lock(); d.releaseCached(); d.lock.unlock() }
        }
        /// Waits until all queued work on device `i` (this thread's current stream) is done.
        public static func synchronize(_ i: Int = 0) { device(i).synchronize() }
        /// Seeds random numbers for every device. Ember draws random tensors on the host
        /// and copies them, so a seed gives the same numbers on the CPU and on any GPU.
        public static func manualSeed(_ seed: UInt64) { Ember.manualSeed(seed) }

        /// What was found, for `ember info` and error reports.
        public static func report() -> String {
            let s = state
            var lines: [String] = []
            if let d = s.driver { lines.append("driver: \(d.library.path), CUDA \(d.version / 1000).\(d.version % 1000 / 10)") }
            if let n = s.nvrtc { lines.append("NVRTC \(n.version.major).\(n.version.minor): \(n.library.path)") }
            if s.driver != nil { lines.append("cuBLAS: \(s.cublasStatus)") }
            if s.driver != nil { lines.append("cuDNN: \(s.cudnnStatus)") }
            if s.driver != nil { lines.append("cuSOLVER: \(CUDABackend.factorizationPath)") }
            for d in s.devices {
                lines.append("cuda:\(d.index): \(d.name), compute \(d.capability.major).\(d.capability.minor), \(d.totalMemory >> 20) MiB, kernels built for \(d.target)")
            }
            if let r = s.reason { lines.append("unavailable: \(r)") }
            return lines.joined(separator: "\n")
        }

        /// Runs `body` with work of device `device` queued on a new stream of its own, then
        /// waits for that stream. The new stream first waits for the work queued so far on
        /// the current one.
        public static func withNewStream<R>(device i: Int = 0, _ body: () throws -> R) rethrows -> R {
            let s = Stream(device: i)
            s.wait(for: Stream.current(device: i))
            defer { s.synchronize() }
            return try withStream(s, body)
        }

        /// Milliseconds of GPU time taken by `body` on device `i`, measured with events.
        public static func time(device i: Int = 0, _ body: () throws -> Void) rethrows -> Double {
            let d = device(i)
            d.makeCurrent()
            var a: OpaquePointer?, b: OpaquePointer?
            d.driver.must(d.driver.cuEventCreate(&a, 0), "cuEventCreate")
            d.driver.must(d.driver.cuEventCreate(&b, 0), "cuEventCreate")
            defer { _ = d.driver.cuEventDestroy(a); _ = d.driver.cuEventDestroy(b) }
            d.driver.must(d.driver.cuEventRecord(a, d.stream), "cuEventRecord")
            try body()
            d.driver.must(d.driver.cuEventRecord(b, d.stream), "cuEventRecord")
            d.driver.must(d.driver.cuEventSynchronize(b), "cuEventSynchronize")
            var ms: Float = 0
            _ = d.driver.cuEventElapsedTime(&ms, a, b)
            return Double(ms)
        }
    }
}

extension Tensor {
    /// A copy of this tensor in page-locked host memory (`pin_memory()`), from Ember's
    /// caching pinned pool: the GPU reads it by DMA, and `to(.cuda(i), nonBlocking: true)`
    /// from it returns at once. Plain host memory without a GPU.
    public func pinMemory() -> Tensor {
        let src = device == .cpu ? self : to(.cpu)
        guard Ember.CUDA.isAvailable else { return src.contiguous().clone() }
        return HostMemory.withPinnedAllocations { withNoGrad { src.clone() } }
    }

    /// Whether this tensor's memory is page-locked (`is_pinned()`).
    public var isPinned: Bool {
        guard device == .cpu, let pool = Ember.CUDA.state.pinned else { return false }
        return pool.block(containing: storage.data, bytes: Swift.max(storage.byteCount, 1)) != nil
    }
}

extension Ember.CUDA {
    /// Bytes of page-locked host memory the pinned pool holds (in use and cached).
    public static var pinnedMemoryReserved: Int { state.pinned?.reservedBytes ?? 0 }
}

/// Library calls made directly, without Ember's dispatch: the baselines of `ember-gpu-check`.
public enum CUDADirect {
    /// `out = a·b` for contiguous row-major float32 CUDA matrices, one cublasSgemm call.
    public static func sgemm(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        guard case .cuda(let i) = a.device else { Ember.misuse("CUDADirect.sgemm: CUDA tensors only") }
        let d = Ember.CUDA.device(i)
        guard let cublas = d.cublas else { Ember.misuse("CUDADirect.sgemm: cuBLAS was not found") }
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        func addr(_ t: Tensor) -> UInt64 { UInt64(UInt(bitPattern: t.storage.data)) + UInt64(t.layout.offset * 4) }
        var alpha: Float = 1, beta: Float = 0
        d.makeCurrent()
        _ = cublas.sgemmStridedBatched(cublas.handle, 0, 0, Int32(n), Int32(m), Int32(k), &alpha, addr(b), Int32(n), 0,
                                       addr(a), Int32(k), 0, &beta, addr(out), Int32(n), 0, 1)
    }
}

/// Low-level access for libraries that queue their own work on Ember's GPUs (NCCL):
/// contexts, streams and events, as opaque driver handles.
public enum CUDAInterop {
    /// Makes device `i`'s context current on this thread.
    public static func makeCurrent(_ i: Int) { Ember.CUDA.device(i).makeCurrent() }

    /// The stream Ember queues this thread's work for device `i` on.
    public static func currentStream(_ i: Int) -> OpaquePointer { Ember.CUDA.device(i).stream }

    /// A new non-blocking stream on device `i` (kept for the life of the process).
    public static func newStream(_ i: Int) -> OpaquePointer {
        let d = Ember.CUDA.device(i)
        d.makeCurrent()
        var s: OpaquePointer?
        d.driver.must(d.driver.cuStreamCreate(&s, 1), "cuStreamCreate")
        return s!
    }

    /// Makes `stream` wait for everything queued so far on `after` (both on device `i`).
    public static func streamWait(_ i: Int, _ stream: OpaquePointer, after: OpaquePointer) {
        let d = Ember.CUDA.device(i)
        d.makeCurrent()
        var e: OpaquePointer?
        d.driver.must(d.driver.cuEventCreate(&e, 2), "cuEventCreate")
        d.driver.must(d.driver.cuEventRecord(e, after), "cuEventRecord")
        d.driver.must(d.driver.cuStreamWaitEvent(stream, e, 0), "cuStreamWaitEvent")
        _ = d.driver.cuEventDestroy(e)
    }

    /// A marker after the work queued so far on `stream` (device `i`); poll it with
    /// `isComplete` and release it with `release`.
    public static func record(_ i: Int, on stream: OpaquePointer) -> OpaquePointer {
        let d = Ember.CUDA.device(i)
        d.makeCurrent()
        var e: OpaquePointer?
        d.driver.must(d.driver.cuEventCreate(&e, 2 /* disable timing */), "cuEventCreate")
        d.driver.must(d.driver.cuEventRecord(e, stream), "cuEventRecord")
        return e!
    }

    /// Whether the work before `marker` has finished; throws when the device reports an
    /// error for it (a fault in a kernel or a library call queued before it).
    public static func isComplete(_ i: Int, _ marker: OpaquePointer) throws -> Bool {
        let d = Ember.CUDA.device(i)
        d.makeCurrent()  // polled from a communication thread
        let code = d.driver.cuEventQuery(marker)
        if code == 600 { return false }  // CUDA_ERROR_NOT_READY
        try d.driver.check(code, "cuEventQuery")
        return true
    }

    public static func release(_ i: Int, _ marker: OpaquePointer) {
        let d = Ember.CUDA.device(i)
        d.makeCurrent()
        _ = d.driver.cuEventDestroy(marker)
    }

    /// Blocks until `stream` has finished its work.
    public static func synchronize(_ i: Int, _ stream: OpaquePointer) {
        let d = Ember.CUDA.device(i)
        d.makeCurrent()
        d.driver.must(d.driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
    }
}
