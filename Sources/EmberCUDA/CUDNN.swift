import EmberLoader
import EmberCore
import Foundation

/// cuDNN's convolution API (the descriptor-based one every cuDNN from 7 to 9 has), opened at
/// run time. Convolutions of float32 NCHW tensors with one group run through it; everything
/// else (and every convolution when cuDNN is missing or `EMBER_CUDNN=0`) uses im2col + cuBLAS.
final class CUDNN: @unchecked Sendable {
    let library: DynamicLibrary
    let version: Int
    typealias H = OpaquePointer
    typealias D = OpaquePointer
    typealias Status = Int32
    let create: @convention(c) (UnsafeMutablePointer<H?>) -> Status
    let setStream: @convention(c) (H?, OpaquePointer?) -> Status
    let createTensor: @convention(c) (UnsafeMutablePointer<D?>) -> Status
    let destroyTensor: @convention(c) (D?) -> Status
    let setTensor4d: @convention(c) (D?, Int32, Int32, Int32, Int32, Int32, Int32) -> Status
    let createFilter: @convention(c) (UnsafeMutablePointer<D?>) -> Status
    let destroyFilter: @convention(c) (D?) -> Status
    let setFilter4d: @convention(c) (D?, Int32, Int32, Int32, Int32, Int32, Int32) -> Status
    let createConv: @convention(c) (UnsafeMutablePointer<D?>) -> Status
    let destroyConv: @convention(c) (D?) -> Status
    let setConv2d: @convention(c) (D?, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) -> Status
    let setMathType: @convention(c) (D?, Int32) -> Status
    typealias AlgoQuery = @convention(c) (H?, D?, D?, D?, D?, Int32, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer) -> Status
    let forwardAlgorithms: AlgoQuery, backwardDataAlgorithms: AlgoQuery, backwardFilterAlgorithms: AlgoQuery
    typealias WorkspaceQuery = @convention(c) (H?, D?, D?, D?, D?, Int32, UnsafeMutablePointer<Int>) -> Status
    let forwardWorkspace: WorkspaceQuery, backwardDataWorkspace: WorkspaceQuery, backwardFilterWorkspace: WorkspaceQuery
    typealias Run = @convention(c) (H?, UnsafeRawPointer, D?, UInt64, D?, UInt64, D?, Int32, UInt64, Int, UnsafeRawPointer, D?, UInt64) -> Status
    let forward: Run, backwardData: Run, backwardFilter: Run
    let errorString: (@convention(c) (Status) -> UnsafePointer<CChar>?)?

    static func load() throws -> CUDNN { try CUDNN(CUDALibraries.open(CUDALibraries.cudnn)) }

    init(_ lib: DynamicLibrary) throws {
        library = lib
        func fn<T>(_ n: String) throws -> T { try lib.require([n]) { CUDAError.libraryNotFound($0) } }
        let getVersion: @convention(c) () -> Int = try fn("cudnnGetVersion")
        version = getVersion()
        create = try fn("cudnnCreate")
        setStream = try fn("cudnnSetStream")
        createTensor = try fn("cudnnCreateTensorDescriptor")
        destroyTensor = try fn("cudnnDestroyTensorDescriptor")
        setTensor4d = try fn("cudnnSetTensor4dDescriptor")
        createFilter = try fn("cudnnCreateFilterDescriptor")
        destroyFilter = try fn("cudnnDestroyFilterDescriptor")
        setFilter4d = try fn("cudnnSetFilter4dDescriptor")
        createConv = try fn("cudnnCreateConvolutionDescriptor")
        destroyConv = try fn("cudnnDestroyConvolutionDescriptor")
        setConv2d = try fn("cudnnSetConvolution2dDescriptor")
        setMathType = try fn("cudnnSetConvolutionMathType")
        forwardAlgorithms = try fn("cudnnGetConvolutionForwardAlgorithm_v7")
        backwardDataAlgorithms = try fn("cudnnGetConvolutionBackwardDataAlgorithm_v7")
        backwardFilterAlgorithms = try fn("cudnnGetConvolutionBackwardFilterAlgorithm_v7")
        forwardWorkspace = try fn("cudnnGetConvolutionForwardWorkspaceSize")
        backwardDataWorkspace = try fn("cudnnGetConvolutionBackwardDataWorkspaceSize")
        backwardFilterWorkspace = try fn("cudnnGetConvolutionBackwardFilterWorkspaceSize")
        forward = try fn("cudnnConvolutionForward")
        backwardData = try fn("cudnnConvolutionBackwardData")
        backwardFilter = try fn("cudnnConvolutionBackwardFilter")
        errorString = lib.symbol("cudnnGetErrorString", as: (@convention(c) (Status) -> UnsafePointer<CChar>?).self)
    }

    func message(_ s: Status) -> String { errorString.flatMap { $0(s) }.map { String(cString: $0) } ?? "cuDNN status \(s)" }

    /// A handle for one device's stream (its context must be current).
    func handle(stream: OpaquePointer) -> H? {
        var h: H?
        guard create(&h) == 0 else { return nil }
        _ = setStream(h, stream)
        return h
    }

    enum Kind: Int { case forward, backwardData, backwardFilter }

    /// What a pass needs besides the data, built once per shape and kept: the descriptors and
    /// the algorithms cuDNN's heuristics rank usable, with their workspace sizes. (Querying
    /// the heuristics costs far more host time than a small convolution; PyTorch caches too.)
    final class Plan: @unchecked Sendable {
        var xd: D?, yd: D?, wd: D?, cd: D?
        var algorithms: [(algo: Int32, workspace: Int)] = []
        /// The algorithm that ran last time (tried first).
        var preferred = 0
    }

    struct PlanKey: Hashable {
        let kind: Int, handle: UInt, shapes: [Int32], geometry: [Int32], tf32: Bool
    }

    private let planLock = NSLock()
    private var plans: [PlanKey: Plan] = [:]
    /// How many plans were built (queried from cuDNN's heuristics), for tests.
    private(set) var plansBuilt = 0

    private func plan(_ kind: Kind, handle: H?, x: [Int32], w: [Int32], y: [Int32], g: WindowGeometry, allowTF32: Bool) -> Plan? {
        let geometry = [g.padding.0, g.padding.1, g.stride.0, g.stride.1, g.dilation.0, g.dilation.1].map { Int32($0) }
        let key = PlanKey(kind: kind.rawValue, handle: handle.map { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer($0))) } ?? 0,
                          shapes: x + w + y, geometry: geometry, tf32: allowTF32)
        planLock.lock(); defer { planLock.unlock() }
        if let p = plans[key] { return p }
        let p = Plan()
        guard createTensor(&p.xd) == 0, createTensor(&p.yd) == 0, createFilter(&p.wd) == 0, createConv(&p.cd) == 0 else {
            release(p)
            return nil
        }
        let float: Int32 = 0, nchw: Int32 = 0, crossCorrelation: Int32 = 1
        guard setTensor4d(p.xd, nchw, float, x[0], x[1], x[2], x[3]) == 0,
              setTensor4d(p.yd, nchw, float, y[0], y[1], y[2], y[3]) == 0,
              setFilter4d(p.wd, float, nchw, w[0], w[1], w[2], w[3]) == 0,
              setConv2d(p.cd, geometry[0], geometry[1], geometry[2], geometry[3], geometry[4], geometry[5], crossCorrelation, float) == 0 else {
            release(p)
            return nil
        }
        // Full float32 unless TF32 is allowed (CUDNN_FMA_MATH keeps tensor cores out).
        _ = setMathType(p.cd, allowTF32 ? 0 : 3)
        // cudnnConvolution*AlgoPerf_t: algo, status, time, memory, determinism, mathType, reserved[3].
        let perfSize = 48, count: Int32 = 8
        let perf = UnsafeMutableRawPointer.allocate(byteCount: perfSize * Int(count), alignment: 8)
        defer { perf.deallocate() }
        var returned: Int32 = 0
        let q: Status
        switch kind {
        case .forward: q = forwardAlgorithms(handle, p.xd, p.wd, p.cd, p.yd, count, &returned, perf)
        case .backwardData: q = backwardDataAlgorithms(handle, p.wd, p.yd, p.cd, p.xd, count, &returned, perf)
        case .backwardFilter: q = backwardFilterAlgorithms(handle, p.xd, p.yd, p.cd, p.wd, count, &returned, perf)
        }
        guard q == 0 else { release(p); return nil }
        for i in 0..<Int(returned) {
            let at = perf + i * perfSize
            let algo = at.load(as: Int32.self), status = at.load(fromByteOffset: 4, as: Int32.self)
            guard status == 0 else { continue }
            var bytes = 0
            let wq: Status
            switch kind {
            case .forward: wq = forwardWorkspace(handle, p.xd, p.wd, p.cd, p.yd, algo, &bytes)
            case .backwardData: wq = backwardDataWorkspace(handle, p.wd, p.yd, p.cd, p.xd, algo, &bytes)
            case .backwardFilter: wq = backwardFilterWorkspace(handle, p.xd, p.yd, p.cd, p.wd, algo, &bytes)
            }
            if wq == 0 && bytes <= 1 << 30 { p.algorithms.append((algo, bytes)) }
        }
        plans[key] = p
        plansBuilt += 1
        return p
    }

    private func release(_ p: Plan) {
        if let d = p.xd { _ = destroyTensor(d) }
        if let d = p.yd { _ = destroyTensor(d) }
        if let d = p.wd { _ = destroyFilter(d) }
        if let d = p.cd { _ = destroyConv(d) }
    }

    /// Runs one convolution pass. `x` and `y` are the input and output of the forward
    /// convolution (`[N, C, H, W]`, `[N, O, Ho, Wo]`), `w` its filter; the pass writes `y`,
    /// `x` or `w` for forward, backward data and backward filter. Returns false (and the
    /// caller falls back) when cuDNN refuses the arguments.
    func run(_ kind: Kind, handle: H?, x: (Tensor, UInt64), w: (Tensor, UInt64), y: (Tensor, UInt64), g: WindowGeometry,
             allowTF32: Bool, workspace: (Int) -> (UInt64, () -> Void)) -> Bool {
        guard let p = plan(kind, handle: handle, x: x.0.shape.map(Int32.init), w: w.0.shape.map(Int32.init),
                           y: y.0.shape.map(Int32.init), g: g, allowTF32: allowTF32), !p.algorithms.isEmpty else { return false }
        var one: Float = 1, zero: Float = 0
        let n = p.algorithms.count, first = p.preferred
        for k in 0..<n {
            let i = (first + k) % n
            let (algo, bytes) = p.algorithms[i]
            let (space, releaseSpace) = workspace(bytes)
            defer { releaseSpace() }
            let rc: Status
            switch kind {
            case .forward: rc = forward(handle, &one, p.xd, x.1, p.wd, w.1, p.cd, algo, space, bytes, &zero, p.yd, y.1)
            case .backwardData: rc = backwardData(handle, &one, p.wd, w.1, p.yd, y.1, p.cd, algo, space, bytes, &zero, p.xd, x.1)
            case .backwardFilter: rc = backwardFilter(handle, &one, p.xd, x.1, p.yd, y.1, p.cd, algo, space, bytes, &zero, p.wd, w.1)
            }
            if rc == 0 {
                p.preferred = i
                return true
            }
        }
        return false
    }
}
