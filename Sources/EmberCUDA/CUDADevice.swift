import EmberCore
import Foundation

/// One GPU: its context, default stream, caching allocator, compiled kernels and cuBLAS.
final class CUDADevice: @unchecked Sendable {
    let index: Int
    let driver: CUDADriver
    let nvrtc: NVRTC
    let cublas: CUBLAS?
    let context: OpaquePointer
    let defaultStream: OpaquePointer
    let name: String
    let capability: (major: Int, minor: Int)
    let totalMemory: Int
    let target: NVRTC.Target
    let lock = NSLock()
    private var modules: [String: OpaquePointer] = [:]
    private var functions: [String: OpaquePointer] = [:]
    let cache = KernelCache()

    // Caching allocator, as PyTorch's: a block belongs to the stream it was allocated on;
    // freed, it returns to that stream's pool by rounded size and is reused only by
    // allocations on that stream (stream order makes the reuse safe). A block also used on
    // other streams (`Tensor.recordStream`) waits, once freed, for events recorded on those
    // streams. Pools are keyed by a number given to each user stream when it is created
    // (0: the default stream), never by its handle, which the driver may hand out again;
    // blocks of a destroyed stream, and those freed later, go to the default stream's pool.
    private var pools: [Int: [Int: [UInt64]]] = [:]
    private var pending: [(block: UInt64, size: Int, pool: Int, events: [OpaquePointer])] = []
    private var usedOn: [UInt64: Set<UInt>] = [:]
    private var streamNumbers: [UInt: Int] = [:]
    private var liveNumbers: Set<Int> = []
    private var lastStreamNumber = 0
    private(set) var allocatedBytes = 0
    private(set) var reservedBytes = 0
    private(set) var peakAllocatedBytes = 0

    func resetPeak() {
        lock.lock(); defer { lock.unlock() }
        peakAllocatedBytes = allocatedBytes
    }

    init(index: Int, driver: CUDADriver, nvrtc: NVRTC, cublas: CUBLAS?) throws {
        self.index = index
        self.driver = driver
        self.nvrtc = nvrtc
        var dev: Int32 = 0
        try driver.check(driver.cuDeviceGet(&dev, Int32(index)), "cuDeviceGet(\(index))")
        var buf = [CChar](repeating: 0, count: 256)
        _ = driver.cuDeviceGetName(&buf, 256, dev)
        name = String(cString: buf)
        var major: Int32 = 0, minor: Int32 = 0
        _ = driver.cuDeviceGetAttribute(&major, 75, dev)  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        _ = driver.cuDeviceGetAttribute(&minor, 76, dev)
        capability = (Int(major), Int(minor))
        var total = 0
        _ = driver.cuDeviceTotalMem(&total, dev)
        totalMemory = total
        var ctx: OpaquePointer?
        try driver.check(driver.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain(\(index))")
        context = ctx!
        try driver.check(driver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        CUDAThreadState.current.context = ctx  // what makeCurrent's cache compares with
        var s: OpaquePointer?
        try driver.check(driver.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate")
        defaultStream = s!
        target = nvrtc.target(forArchitecture: capability.major * 10 + capability.minor)
        self.cublas = try cublas.map { try $0.forDevice(stream: s!) }
    }

    /// Makes this device's context current on the calling thread.
    func makeCurrent() {
        let t = CUDAThreadState.current
        if t.context != context {
            driver.must(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
            t.context = context
        }
    }

    /// The stream work is queued on for this thread (a user stream inside `withStream`).
    var stream: OpaquePointer { CUDAThreadState.current.streams[index] ?? defaultStream }

    // MARK: memory

    static func rounded(_ bytes: Int) -> Int {
        let b = max(bytes, 1)
        if b <= 1 << 20 { return (b + 511) / 512 * 512 }
        return ((b + (1 << 20) - 1) >> 20) << 20
    }

    static func key(_ s: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(s))) }

    /// Which stream's pool a block allocated on `stream` belongs to. Caller holds `lock`.
    private func owner(_ stream: OpaquePointer) -> Int {
        stream == defaultStream ? 0 : streamNumbers[CUDADevice.key(stream)] ?? 0
    }

    /// The pool that `owner`'s blocks go to now (the default one once its stream is gone).
    private func pool(_ owner: Int) -> Int { liveNumbers.contains(owner) ? owner : 0 }

    /// A block of at least `bytes` for work on `stream` (this thread's current stream), and
    /// its owner, which `free` takes back.
    func allocate(_ bytes: Int, on stream: OpaquePointer) -> (address: UInt64, owner: Int) {
        let size = CUDADevice.rounded(bytes)
        lock.lock(); defer { lock.unlock() }
        allocatedBytes += size
        peakAllocatedBytes = max(peakAllocatedBytes, allocatedBytes)
        let who = owner(stream)
        if let p = pools[who]?[size]?.popLast() { return (p, who) }
        if !pending.isEmpty {
            collectPending()
            if let p = pools[who]?[size]?.popLast() { return (p, who) }
        }
        makeCurrent()
        var p: UInt64 = 0
        var rc = driver.cuMemAlloc(&p, size)
        if rc != 0 {
            releaseCached()
            rc = driver.cuMemAlloc(&p, size)
        }
        if rc != 0 {
            fatalError("CUDA out of memory: tried to allocate \(size) bytes on cuda:\(index) (\(name)); Ember has \(allocatedBytes - size) bytes allocated, \(reservedBytes) reserved, of \(totalMemory)")
        }
        reservedBytes += size
        return (p, who)
    }

    func free(_ p: UInt64, _ bytes: Int, owner: Int, stream: OpaquePointer) {
        let size = CUDADevice.rounded(bytes)
        lock.lock(); defer { lock.unlock() }
        allocatedBytes -= size
        let into = pool(owner)
        let own: Set<UInt> = into == owner ? [CUDADevice.key(stream)] : []
        if let used = usedOn.removeValue(forKey: p), case let others = used.subtracting(own), !others.isEmpty {
            // Reusable once the work queued so far on every other stream that used it is done.
            makeCurrent()
            let events = others.map { s -> OpaquePointer in
                var e: OpaquePointer?
                driver.must(driver.cuEventCreate(&e, 2), "cuEventCreate")
                driver.must(driver.cuEventRecord(e, OpaquePointer(bitPattern: s)), "cuEventRecord")
                return e!
            }
            pending.append((p, size, into, events))
            return
        }
        pools[into, default: [:]][size, default: []].append(p)
    }

    /// Moves pending blocks whose events have completed into their pools. Caller holds `lock`.
    private func collectPending() {
        makeCurrent()  // the driver answers event queries only in a context (any thread may allocate)
        pending.removeAll { item in
            let done = item.events.allSatisfy { e in
                let rc = driver.cuEventQuery(e)
                if rc == 600 { return false }  // CUDA_ERROR_NOT_READY
                driver.must(rc, "cuEventQuery")  // an error is not "finished": the block stays out of the pool
                return true
            }
            guard done else { return false }
            for e in item.events { _ = driver.cuEventDestroy(e) }
            pools[pool(item.pool), default: [:]][item.size, default: []].append(item.block)
            return true
        }
    }

    /// Marks the block at `base` as used by work on `stream` too (`Tensor.recordStream`).
    func recordUse(_ base: UInt64, by stream: OpaquePointer) {
        lock.lock(); defer { lock.unlock() }
        usedOn[base, default: []].insert(CUDADevice.key(stream))
    }

    /// A user stream came into use: its blocks get a pool of their own.
    func streamCreated(_ stream: OpaquePointer) {
        lock.lock(); defer { lock.unlock() }
        lastStreamNumber += 1
        streamNumbers[CUDADevice.key(stream)] = lastStreamNumber
        liveNumbers.insert(lastStreamNumber)
    }

    /// A user stream is about to be destroyed: its work is finished, and its pooled blocks
    /// (and its blocks freed later) go to the default stream's pool.
    func streamDestroyed(_ stream: OpaquePointer) {
        makeCurrent()
        driver.must(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
        lock.lock(); defer { lock.unlock() }
        let k = CUDADevice.key(stream)
        guard let n = streamNumbers.removeValue(forKey: k) else { return }
        liveNumbers.remove(n)
        for (size, list) in pools.removeValue(forKey: n) ?? [:] { pools[0, default: [:]][size, default: []] += list }
        for i in pending.indices where pending[i].pool == n { pending[i].pool = 0 }
        for (block, var streams) in usedOn where streams.contains(k) {
            streams.remove(k)
            usedOn[block] = streams.isEmpty ? nil : streams
        }
    }

    /// Returns cached blocks to the driver (`torch.cuda.empty_cache`). Caller holds `lock`.
    func releaseCached() {
        makeCurrent()
        _ = driver.cuCtxSynchronize()
        for item in pending {
            for e in item.events { _ = driver.cuEventDestroy(e) }
            pools[item.pool, default: [:]][item.size, default: []].append(item.block)
        }
        pending = []
        for (_, bySize) in pools {
            for (size, list) in bySize {
                for p in list { _ = driver.cuMemFree(p); reservedBytes -= size }
            }
        }
        pools = [:]
    }

    // MARK: kernels

    /// The kernel `kernel` of module `module` (compiled from `source()` on first use,
    /// through the in-memory and on-disk caches).
    func function(_ module: String, _ kernel: String, _ source: () -> String) -> OpaquePointer {
        do { return try loadFunction(module, kernel, source) } catch { fatalError("Ember CUDA: \(error)") }
    }

    /// `kernel` of `module` (compiled from `source` on first use, through the disk cache).
    /// - Throws: `CUDAError.compile` with NVRTC's log, or `CUDAError.driver` when the
    ///   driver cannot load the module.
    func loadFunction(_ module: String, _ kernel: String, _ source: () -> String) throws -> OpaquePointer {
        lock.lock(); defer { lock.unlock() }
        if let f = functions[kernel] { return f }
        makeCurrent()
        let mod: OpaquePointer
        if let m = modules[module] {
            mod = m
        } else {
            let src = source()
            let key = "\(module)\n\(target)\nnvrtc \(nvrtc.version.major).\(nvrtc.version.minor)\ndriver \(driver.version)\n\(src)"
            var binary = cache.load(key: key)
            if binary == nil {
                binary = try nvrtc.compile(src, name: module + ".cu", target: target)
                cache.store(key: key, binary: binary!)
            }
            var m: OpaquePointer?
            let rc = binary!.withUnsafeBytes { driver.cuModuleLoadData(&m, $0.baseAddress!) }
            if rc != 0 {
                throw CUDAError.driver("loading module \(module) for \(target) failed: \(CUDADriver.message(rc, driver.cuGetErrorString)); the driver (CUDA \(driver.version / 1000).\(driver.version % 1000 / 10)) may be older than NVRTC \(nvrtc.version.major).\(nvrtc.version.minor): update the driver or use an older NVRTC")
            }
            modules[module] = m!
            mod = m!
        }
        var f: OpaquePointer?
        let rc = kernel.withCString { driver.cuModuleGetFunction(&f, mod, $0) }
        try driver.check(rc, "cuModuleGetFunction(\(kernel))")
        functions[kernel] = f!
        return f!
    }

    /// Compiles, loads and runs a kernel that does nothing: whether this device can run
    /// Ember's kernels at all (NVRTC and driver agree), asked once when CUDA starts.
    func probe() throws {
        let f = try loadFunction("probe", "ember_probe") { "extern \"C\" __global__ void ember_probe(int n) { (void)n; }" }
        let args = KernelArgs.forThisThread().add(Int32(0))
        var rc: CUDADriver.R = 0
        args.withPointers { p in rc = driver.cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, defaultStream, p, nil) }
        try driver.check(rc, "cuLaunchKernel(ember_probe)")
        try driver.check(driver.cuStreamSynchronize(defaultStream), "cuStreamSynchronize")
    }

    /// Launches `f` with a 1-D grid covering `n` items (grid-stride loops inside).
    func launch(_ f: OpaquePointer, items n: Int, block: Int = 256, sharedBytes: Int = 0, _ args: KernelArgs) {
        let grid = max(1, min((n + block - 1) / block, 65535 * 8))
        launch(f, grid: grid, block: block, sharedBytes: sharedBytes, args)
    }

    func launch(_ f: OpaquePointer, grid: Int, block: Int, sharedBytes: Int = 0, _ args: KernelArgs) {
        makeCurrent()
        args.withPointers { p in
            driver.must(driver.cuLaunchKernel(f, UInt32(grid), 1, 1, UInt32(block), 1, 1, UInt32(sharedBytes), stream, p, nil),
                        "cuLaunchKernel")
        }
    }

    func synchronize() {
        makeCurrent()
        driver.must(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
        verifyChecks()
    }

    // MARK: device-side argument checks

    // Like PyTorch's device-side asserts, without stopping the GPU: a kernel that finds a bad
    // argument (a class index out of range) writes [code, value, limit] into this device's
    // check words, and the host reads them after its next synchronisation (only when such a
    // kernel ran since) and stops with the op's message.
    private var checkWords: UInt64 = 0
    private var checksPending = false

    /// The check words for a kernel about to be launched (zeroed on first use).
    func checkBuffer() -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        if checkWords == 0 {
            makeCurrent()
            var p: UInt64 = 0
            driver.must(driver.cuMemAlloc(&p, 32), "cuMemAlloc")
            driver.must(driver.cuMemsetD8Async(p, 0, 32, stream), "cuMemsetD8Async")
            checkWords = p
        }
        checksPending = true
        return checkWords
    }

    /// After a synchronisation: stops with the message of a failed device-side check.
    func verifyChecks() {
        lock.lock()
        let pending = checksPending, words = checkWords
        checksPending = false
        lock.unlock()
        guard pending else { return }
        var w = [Int64](repeating: 0, count: 3)
        let rc = w.withUnsafeMutableBytes { driver.cuMemcpyDtoHAsync($0.baseAddress!, words, 24, stream) }
        driver.must(rc, "cuMemcpyDtoHAsync")
        driver.must(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
        guard w[0] != 0 else { return }
        driver.must(driver.cuMemsetD8Async(words, 0, 32, stream), "cuMemsetD8Async")
        let message = DeviceCheck(rawValue: w[0])?.message(value: w[1], limit: w[2]) ?? "device-side check \(w[0]) failed (\(w[1]), \(w[2]))"
        fatalError("\(message) (found on cuda:\(index) by the kernel)")
    }
}

/// Per-thread CUDA state: the current context and each device's current stream.
final class CUDAThreadState {
    var context: OpaquePointer?
    var streams: [Int: OpaquePointer] = [:]
    private static let local = ThreadLocal { CUDAThreadState() }
    static var current: CUDAThreadState { local.value }
}
