import EmberCPU
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
        func fn<T>(_ n: String) throws -> T {
            guard let f = lib.symbol(n, as: T.self) else { throw CUDAError.libraryNotFound("\(lib.path) has no \(n)") }
            return f
        }
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

    enum Kind { case forward, backwardData, backwardFilter }

    /// Runs one convolution pass. `x` and `y` are the input and output of the forward
    /// convolution (`[N, C, H, W]`, `[N, O, Ho, Wo]`), `w` its filter; the pass writes `y`,
    /// `x` or `w` for forward, backward data and backward filter. Returns false (and the
    /// caller falls back) when cuDNN refuses the arguments.
    func run(_ kind: Kind, handle: H?, x: (Tensor, UInt64), w: (Tensor, UInt64), y: (Tensor, UInt64), g: WindowGeometry,
             allowTF32: Bool, workspace: (Int) -> (UInt64, () -> Void)) -> Bool {
        var xd: D?, yd: D?, wd: D?, cd: D?
        guard createTensor(&xd) == 0, createTensor(&yd) == 0, createFilter(&wd) == 0, createConv(&cd) == 0 else { return false }
        defer { _ = destroyTensor(xd); _ = destroyTensor(yd); _ = destroyFilter(wd); _ = destroyConv(cd) }
        let float: Int32 = 0, nchw: Int32 = 0, crossCorrelation: Int32 = 1
        let xs = x.0.shape.map(Int32.init), ys = y.0.shape.map(Int32.init), ws = w.0.shape.map(Int32.init)
        guard setTensor4d(xd, nchw, float, xs[0], xs[1], xs[2], xs[3]) == 0,
              setTensor4d(yd, nchw, float, ys[0], ys[1], ys[2], ys[3]) == 0,
              setFilter4d(wd, float, nchw, ws[0], ws[1], ws[2], ws[3]) == 0,
              setConv2d(cd, Int32(g.padding.0), Int32(g.padding.1), Int32(g.stride.0), Int32(g.stride.1),
                        Int32(g.dilation.0), Int32(g.dilation.1), crossCorrelation, float) == 0 else { return false }
        // Full float32 unless TF32 is allowed (CUDNN_FMA_MATH keeps tensor cores out).
        _ = setMathType(cd, allowTF32 ? 0 : 3)
        // cudnnConvolution*AlgoPerf_t: algo, status, time, memory, determinism, mathType, reserved[3].
        let perfSize = 48, count: Int32 = 8
        let perf = UnsafeMutableRawPointer.allocate(byteCount: perfSize * Int(count), alignment: 8)
        defer { perf.deallocate() }
        var returned: Int32 = 0
        let q: Status
        switch kind {
        case .forward: q = forwardAlgorithms(handle, xd, wd, cd, yd, count, &returned, perf)
        case .backwardData: q = backwardDataAlgorithms(handle, wd, yd, cd, xd, count, &returned, perf)
        case .backwardFilter: q = backwardFilterAlgorithms(handle, xd, yd, cd, wd, count, &returned, perf)
        }
        guard q == 0 else { return false }
        var one: Float = 1, zero: Float = 0
        for i in 0..<Int(returned) {
            let p = perf + i * perfSize
            let algo = p.load(as: Int32.self), status = p.load(fromByteOffset: 4, as: Int32.self)
            guard status == 0 else { continue }
            var bytes = 0
            let wq: Status
            switch kind {
            case .forward: wq = forwardWorkspace(handle, xd, wd, cd, yd, algo, &bytes)
            case .backwardData: wq = backwardDataWorkspace(handle, wd, yd, cd, xd, algo, &bytes)
            case .backwardFilter: wq = backwardFilterWorkspace(handle, xd, yd, cd, wd, algo, &bytes)
            }
            guard wq == 0, bytes <= 1 << 30 else { continue }
            let (space, release) = workspace(bytes)
            defer { release() }
            let rc: Status
            switch kind {
            case .forward: rc = forward(handle, &one, xd, x.1, wd, w.1, cd, algo, space, bytes, &zero, yd, y.1)
            case .backwardData: rc = backwardData(handle, &one, wd, w.1, yd, y.1, cd, algo, space, bytes, &zero, xd, x.1)
            case .backwardFilter: rc = backwardFilter(handle, &one, xd, x.1, yd, y.1, cd, algo, space, bytes, &zero, wd, w.1)
            }
            if rc == 0 { return true }
        }
        return false
    }
}
