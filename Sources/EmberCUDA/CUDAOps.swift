import EmberCore
import Foundation

/// The op table on one GPU: generated kernels (NVRTC) for everything but matrix products,
/// which go to cuBLAS (float32/float64) or a plain kernel (other dtypes).
final class CUDABackend: Backend, @unchecked Sendable {
    let dev: CUDADevice
    init(_ dev: CUDADevice) { self.dev = dev }

    /// Index kernels wrap negative values and report bad ones through the device checks.
    var checksIndices: Bool { true }

    // MARK: helpers

    func address(_ t: Tensor, _ function: StaticString = #function) -> UInt64 {
        if t.storage.device != .cuda(dev.index) {
            fatalError("Ember CUDA \(function): given a tensor of shape \(t.shape) on \(t.storage.device) for a kernel on cuda:\(dev.index): an op mixed devices without checking them (please report this)")
        }
        return UInt64(UInt(bitPattern: t.storage.data)) + UInt64(t.layout.offset * t.dtype.itemSize)
    }

    private func elementwise(_ kernel: String, _ d: DType) -> OpaquePointer {
        dev.function("elementwise_\(d)", kernel) { KernelSource.elementwiseModule(d) }
    }

    /// Elementwise kernel handles by an integer key (family, op, dtypes, contiguous form),
    /// so that a launch builds no name string and hashes one integer.
    private var handles: [Int: OpaquePointer] = [:]
    private let handleLock = NSLock()

    private static func key(_ family: Int, _ op: Int, _ d: DType, _ d2: DType = .bool) -> Int {
        (((family << 8 | op) << 8 | d.rawValue) << 8 | d2.rawValue) << 1
    }

    private func contiguousAll(_ ts: [Tensor]) -> Bool {
        let shape = ts[0].shape
        for t in ts where !t.isContiguous || t.shape != shape { return false }
        return true
    }

    /// Runs an elementwise kernel over `out`'s shape with operands `ins` (broadcast views).
    /// `key` identifies the kernel (see `key`); `kernel` names it, asked for on first use only.
    private func run(_ key: Int, _ kernel: @autoclosure () -> String, module d: DType, _ out: Tensor, _ ins: [Tensor],
                     p0: Double = 0, p1: Double = 0) {
        let n = out.count
        if n == 0 { return }
        let all = [out] + ins
        let args = KernelArgs.forThisThread()
        let contiguous = contiguousAll(all)
        let k = key | (contiguous ? 1 : 0)
        handleLock.lock()
        var f = handles[k]
        handleLock.unlock()
        if f == nil {
            let made = elementwise(contiguous ? kernel() + "_c" : kernel(), d)
            handleLock.lock(); handles[k] = made; handleLock.unlock()
            f = made
        }
        if contiguous {
            args.add(Int64(n))
        } else {
            // Offsets are folded into the base addresses: the Geo offsets stay 0.
            args.addWords(geo(out.shape, all.map { ($0.strides, 0) }))
        }
        for t in all { args.add(address(t)) }
        args.add(p0).add(p1)
        dev.launch(f!, items: n, args)
    }

    // MARK: Backend

    func allocate(bytes: Int, device: Device) -> Storage {
        let stream = dev.stream
        let (p, owner) = dev.allocate(bytes, on: stream)
        let d = dev
        return Storage(device: device, data: UnsafeMutableRawPointer(bitPattern: UInt(p))!, byteCount: bytes) { ptr in
            d.free(UInt64(UInt(bitPattern: ptr)), bytes, owner: owner, stream: stream)
        }
    }

    func fill(_ out: Tensor, _ value: Double) {
        run(CUDABackend.key(1, 0, out.dtype), KernelSource.name("fill", out.dtype.description), module: out.dtype, out, [], p0: value)
    }

    func copy(_ src: Tensor, into dst: Tensor) {
        if src.dtype == dst.dtype && src.isContiguous && dst.isContiguous && src.count == dst.count {
            dev.makeCurrent()
            dev.driver.must(dev.driver.cuMemcpyDtoDAsync(address(dst), address(src), src.count * src.dtype.itemSize, dev.stream),
                            "cuMemcpyDtoDAsync")
            return
        }
        run(CUDABackend.key(2, 0, src.dtype, dst.dtype), KernelSource.name("copy", src.dtype.description, dst.dtype.description),
            module: src.dtype, dst, [src])
    }

    func unary(_ op: UnaryOp, _ x: Tensor, _ out: Tensor) {
        var p0 = 0.0, p1 = 0.0
        switch op {
        case .softplus(let beta, let threshold): p0 = beta; p1 = threshold
        case .leakyRelu(let slope): p0 = slope
        case .powScalar(let e): p0 = e
        case .clamp(let lo, let hi): p0 = lo ?? -Double.infinity; p1 = hi ?? Double.infinity
        default: break
        }
        if case .clamp(let lo, let hi) = op, !x.dtype.isFloatingPoint {
            // Integer bounds inside the dtype's range: the kernel converts them to it, and an
            // out-of-range conversion is undefined (a uint8 clamp without an upper bound got 254).
            let range: (Double, Double) = switch x.dtype {
            case .uint8: (0, 255)
            case .bool: (0, 1)
            case .int32: (-2_147_483_648, 2_147_483_647)
            default: (-9.2e18, 9.2e18)
            }
            p0 = Swift.min(Swift.max(lo.map { $0.rounded(.up) } ?? range.0, range.0), range.1)
            p1 = Swift.max(Swift.min(hi.map { $0.rounded(.down) } ?? range.1, range.1), range.0)
        }
        guard KernelSource.unaryExpression(op, KernelSource.compute(x.dtype)) != nil else {
            fatalError("\(KernelSource.unaryName(op)): not defined for \(x.dtype) tensors on CUDA")
        }
        run(CUDABackend.key(3, KernelSource.unaryIndex(op), x.dtype), KernelSource.name("unary", KernelSource.unaryName(op), x.dtype.description),
            module: x.dtype, out, [x], p0: p0, p1: p1)
    }

    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        run(CUDABackend.key(4, KernelSource.binaryIndex(op), a.dtype), KernelSource.name("binary", KernelSource.binaryName(op), a.dtype.description),
            module: a.dtype, out, [a, b])
    }

    func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        run(CUDABackend.key(5, 0, out.dtype), KernelSource.name("select", out.dtype.description), module: out.dtype, out, [cond, a, b])
    }

    func reduce(_ op: EmberCore.ReduceOp, _ x: Tensor, dims: [Int], _ out: Tensor) {
        let d = x.dtype
        let name: String
        switch op {
        case .sum: name = "sum"
        case .prod: name = "prod"
        case .max: name = "max"
        case .min: name = "min"
        case .argmax: name = "argmax"
        case .argmin: name = "argmin"
        }
        let kept = (0..<x.rank).filter { !dims.contains($0) }
        // gk: output index → (out offset, input base offset); gr: reduced index → input offset.
        let outStrides = kept.map { out.strides[$0] }, inKept = kept.map { x.strides[$0] }
        let gk = geo(kept.map { x.shape[$0] }, [(outStrides, 0), (inKept, 0)])
        let gr = geo(dims.map { x.shape[$0] }, [([], 0), (dims.map { x.strides[$0] }, 0)])
        let args = KernelArgs.forThisThread().addWords(gk).addWords(gr).add(address(out)).add(address(x))
        let (kernel, grid, block) = CUDABackend.reductionPlan(outputs: out.count, reduced: dims.map { x.shape[$0] }.reduce(1, *))
        let f = dev.function("reduce_\(d)", KernelSource.name(kernel, name, d.description)) { KernelSource.reductionModule(d) }
        dev.launch(f, grid: grid, block: block, args)
    }

    // MARK: cuDNN convolutions (float32, one group)

    private var dnnHandle: OpaquePointer?

    /// Runs a cuDNN pass on this device's current stream, or returns false (no cuDNN, not
    /// float32, or cuDNN refused): the caller then uses im2col + cuBLAS.
    private func cudnn(_ kind: CUDNN.Kind, x: Tensor, w: Tensor, y: Tensor, _ g: WindowGeometry) -> Bool {
        guard let dnn = Ember.CUDA.state.cudnn, x.dtype == .float32, w.dtype == .float32, y.dtype == .float32 else { return false }
        dev.makeCurrent()
        handleLock.lock()
        if dnnHandle == nil { dnnHandle = dnn.handle(stream: dev.stream) }
        let h = dnnHandle
        handleLock.unlock()
        guard let h else { return false }
        _ = dnn.setStream(h, dev.stream)
        let d = dev
        return dnn.run(kind, handle: h, x: (x, address(x)), w: (w, address(w)), y: (y, address(y)), g: g,
                       allowTF32: Ember.CUDA.allowTF32) { bytes in
            guard bytes > 0 else { return (0, {}) }
            let s = d.stream
            let (p, owner) = d.allocate(bytes, on: s)
            return (p, { d.free(p, bytes, owner: owner, stream: s) })  // stream-ordered: reused only by later work of this stream
        }
    }

    func convolution2d(_ x: Tensor, _ w: Tensor, _ g: WindowGeometry, _ out: Tensor) -> Bool {
        cudnn(.forward, x: x, w: w, y: out, g)
    }

    func convolution2dBackwardData(_ w: Tensor, _ dy: Tensor, _ g: WindowGeometry, _ dx: Tensor) -> Bool {
        cudnn(.backwardData, x: dx, w: w, y: dy, g)
    }

    func convolution2dBackwardFilter(_ x: Tensor, _ dy: Tensor, _ g: WindowGeometry, _ dw: Tensor) -> Bool {
        cudnn(.backwardFilter, x: x, w: dw, y: dy, g)
    }

    /// How a reduction of `reduced` elements into each of `outputs` outputs runs: one thread
    /// per output (`reduceEach`) when there are many outputs of few elements, else one block
    /// per output (`reduce`, a shared-memory tree) with as many threads as the elements use.
    static func reductionPlan(outputs: Int, reduced: Int) -> (kernel: String, grid: Int, block: Int) {
        if reduced <= 16 || (reduced <= 1024 && outputs >= 1024) {
            let block = 256
            return ("reduceEach", max(1, min((outputs + block - 1) / block, 65535 * 8)), block)
        }
        var block = 32
        while block < 256 && block < reduced { block *= 2 }
        return ("reduce", max(1, outputs), block)
    }

    func matmul(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = out.shape[0], M = out.shape[1], N = out.shape[2], K = a.shape[2]
        if B == 0 || M == 0 || N == 0 { return }
        if K == 0 { fill(out, 0); return }
        if let cublas = dev.cublas, out.dtype == .float32 || out.dtype == .float64 {
            gemm(cublas, a, b, out, beta: 0)
            return
        }
        // Other dtypes: C = A·B elementwise over (b, i, j) with a K loop (the reduction kernel
        // over a broadcast product would need K× memory).
        let prod = Tensor.empty([B, M, K, N], dtype: out.dtype, device: out.device)
        binary(.mul, a.unsqueeze(3).expand([B, M, K, N]), b.unsqueeze(1).expand([B, M, K, N]), prod)
        reduce(.sum, prod, dims: [2], out.unsqueeze(2))
    }

    /// `out = A·B (+ beta·out)` through cuBLAS's strided-batched GEMM (row-major operands are
    /// handed over as the transposed column-major problem; other layouts are copied first).
    private func gemm(_ cublas: CUBLAS, _ a0: Tensor, _ b0: Tensor, _ out: Tensor, beta: Double) {
        let B = out.shape[0], M = out.shape[1], N = out.shape[2], K = a0.shape[2]
        func operand(_ t: Tensor) -> (Tensor, transposed: Bool, ld: Int, batchStride: Int) {
            let s = t.strides
            if s[2] == 1 && s[1] >= t.shape[2] { return (t, false, s[1], s[0]) }
            if s[1] == 1 && s[2] >= t.shape[1] { return (t, true, s[2], s[0]) }
            let c = Tensor.empty(t.shape, dtype: t.dtype, device: t.device)
            copy(t, into: c)
            return (c, false, t.shape[2], t.shape[1] * t.shape[2])
        }
        let (a, ta, lda, sa) = operand(a0)
        let (b, tb, ldb, sb) = operand(b0)
        precondition(out.isContiguous, "CUDA matmul: output must be contiguous")
        dev.makeCurrent()
        _ = cublas.setStream(cublas.handle, dev.stream)
        // Row-major C[M,N] = A·B  ⇔  column-major Cᵀ[N,M] = Bᵀ·Aᵀ.
        let opB: Int32 = tb ? 1 : 0, opA: Int32 = ta ? 1 : 0
        let rc: Int32
        if out.dtype == .float32 {
            var alpha: Float = 1, betaF = Float(beta)
            rc = cublas.sgemmStridedBatched(cublas.handle, opB, opA, Int32(N), Int32(M), Int32(K), &alpha,
                                            address(b), Int32(max(ldb, 1)), Int64(sb), address(a), Int32(max(lda, 1)), Int64(sa),
                                            &betaF, address(out), Int32(N), Int64(M * N), Int32(B))
        } else {
            var alpha: Double = 1, betaD = beta
            rc = cublas.dgemmStridedBatched(cublas.handle, opB, opA, Int32(N), Int32(M), Int32(K), &alpha,
                                            address(b), Int32(max(ldb, 1)), Int64(sb), address(a), Int32(max(lda, 1)), Int64(sa),
                                            &betaD, address(out), Int32(N), Int64(M * N), Int32(B))
        }
        if rc != 0 { fatalError("Ember CUDA: cuBLAS GEMM [\(B), \(M), \(K)]·[\(B), \(K), \(N)] failed with status \(rc)") }
    }

    private func structured(_ kernel: String, _ d: DType) -> OpaquePointer {
        dev.function("structured_\(d)", KernelSource.name(kernel, d.description)) { KernelSource.structuredModule(d) }
    }

    /// indexSelect / indexAdd: `full` is the tensor indexed along `dim` (the other operand
    /// has `index.count` slices there).
    private func indexKernel(_ kernel: String, full: Tensor, dim: Int, out: Tensor, src: Tensor, _ index: Tensor) {
        let outer = full.shape[..<dim].reduce(1, *), inner = full.shape[(dim + 1)...].reduce(1, *)
        let L = index.count, n = outer * L * inner
        if n == 0 { return }
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().add(Int64(n)).add(Int64(L)).add(Int64(full.shape[dim])).add(Int64(inner))
            .add(address(out)).add(address(src)).add(address(index)).add(check)
        dev.launch(structured(kernel, full.dtype), items: n, args)
    }

    func indexSelect(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        indexKernel("indexSelect", full: x, dim: dim, out: out, src: x, index)
    }

    func indexAdd(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor) {
        let s = src.isContiguous ? src : { let c = Tensor.empty(src.shape, dtype: src.dtype, device: src.device); copy(src, into: c); return c }()
        indexKernel("indexAdd", full: out, dim: dim, out: out, src: s, index)
    }

    func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        let idx = index.isContiguous ? index : index.contiguous()
        // Geo over index's shape: st[0] = out, st[1] = x with dim's stride zeroed, st[3] = x's strides.
        var xs = x.strides
        let full = xs
        xs[dim] = 0
        let g = geo(idx.shape, [(out.strides, 0), (xs, 0), ([], 0), (full, 0)])
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().addWords(g).add(Int32(dim)).add(Int64(x.shape[dim])).add(address(out)).add(address(x))
            .add(address(idx)).add(check)
        dev.launch(structured("gather", x.dtype), items: idx.count, args)
    }

    func scatter(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor, accumulate: Bool) {
        let idx = index.isContiguous ? index : index.contiguous()
        var os = out.strides
        let full = os
        os[dim] = 0
        let g = geo(idx.shape, [(os, 0), ([], 0), (src.strides, 0), (full, 0)])
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().addWords(g).add(Int32(dim)).add(Int32(accumulate ? 1 : 0)).add(Int64(out.shape[dim]))
            .add(address(out)).add(address(src)).add(address(idx)).add(check)
        dev.launch(structured("scatter", out.dtype), items: idx.count, args)
    }

    func maskedSelect(_ x: Tensor, _ mask: Tensor) -> Tensor {
        // Positions are found on the host (one small copy), the values gathered on the GPU.
        let m = mask.to(.cpu).contiguous().toArray(Bool.self)
        let positions = m.enumerated().filter { $0.element }.map { Int64($0.offset) }
        let flat = x.contiguous().reshape([-1])
        let out = Tensor.empty([positions.count], dtype: x.dtype, device: x.device)
        if positions.isEmpty { return out }
        indexSelect(flat, dim: 0, Tensor(positions, device: x.device), out)
        return out
    }

    private func win(_ n: Int, _ g: WindowGeometry) -> [Int64] {
        [n, g.channels, g.height, g.width, g.kernel.0, g.kernel.1, g.stride.0, g.stride.1, g.padding.0, g.padding.1,
         g.dilation.0, g.dilation.1, g.outHeight, g.outWidth].map(Int64.init)
    }

    func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, _ out: Tensor) {
        let args = KernelArgs.forThisThread().addWords(win(x.shape[0], g)).add(padValue).add(address(out)).add(address(x))
        dev.launch(structured("im2col", x.dtype), items: out.count, args)
    }

    func col2im(_ cols: Tensor, _ g: WindowGeometry, _ out: Tensor) {
        let args = KernelArgs.forThisThread().addWords(win(out.shape[0], g)).add(address(out)).add(address(cols))
        dev.launch(structured("col2im", out.dtype), items: out.count, args)
    }

    func matmulSumBatches(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = a.shape[0]
        guard let cublas = dev.cublas, out.dtype == .float32 || out.dtype == .float64 else {
            let full = Tensor.empty([B, out.shape[0], out.shape[1]], dtype: out.dtype, device: out.device)
            matmul(a, b, full)
            reduce(.sum, full, dims: [0], out.unsqueeze(0))
            return
        }
        // Σ_i A_i·B_i is one product with the batches laid side by side along K:
        // [A_0 … A_{B-1}] (M × B·K) · [B_0; …; B_{B-1}] (B·K × N). A is copied into that
        // layout; B already has it when its batches are stacked rows (else it is copied too).
        // One cuBLAS call instead of one per batch.
        let M = a.shape[1], K = a.shape[2], N = b.shape[2]
        let (a2, b2) = withNoGrad { () -> (Tensor, Tensor) in
            let aa = a.permute(1, 0, 2).contiguous().reshape([1, M, B * K])
            let bs = b.strides
            let stacked = (bs[2] == 1 && bs[1] == N && bs[0] == K * N) ? b : b.contiguous()
            return (aa, stacked.reshape([1, B * K, N]))
        }
        gemm(cublas, a2, b2, out.unsqueeze(0), beta: 0)
    }

    func maxPool2d(_ x: Tensor, _ g: WindowGeometry, _ out: Tensor, _ indices: Tensor) {
        let args = KernelArgs.forThisThread().addWords(win(x.shape[0], g)).add(address(out)).add(address(indices)).add(address(x))
        dev.launch(structured("maxPool2d", x.dtype), items: out.count, args)
    }

    func maxPool2dBackward(_ grad: Tensor, _ indices: Tensor, _ out: Tensor) {
        let l = grad.shape[2] * grad.shape[3], hw = out.shape[2] * out.shape[3]
        let args = KernelArgs.forThisThread().add(Int64(grad.count)).add(Int64(l)).add(Int64(hw)).add(address(out)).add(address(grad)).add(address(indices))
        dev.launch(structured("maxPool2dBackward", out.dtype), items: grad.count, args)
    }

    func softmax(_ x: Tensor, _ out: Tensor, log: Bool) {
        let n = x.shape.last ?? 1, rows = x.count / max(n, 1)
        if rows == 0 { return }
        let args = KernelArgs.forThisThread().add(Int64(rows)).add(Int64(n)).add(Int32(log ? 1 : 0)).add(address(out)).add(address(x))
        dev.launch(structured("softmax", x.dtype), grid: rows, block: 256, args)
    }

    func crossEntropyRows(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor) {
        let valid = Tensor.empty([logits.shape[0]], dtype: loss.dtype, device: loss.device)
        _ = crossEntropyRowsChecked(logits, target, ignoreIndex: ignoreIndex, loss, lse, valid)
    }

    /// Targets are checked on the device: a bad one stops the program at the next
    /// synchronisation with the message (its row's loss is NaN meanwhile).
    func crossEntropyRowsChecked(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor,
                                 _ valid: Tensor) -> Bool {
        let r = logits.shape[0], c = logits.shape[1]
        if r == 0 { return true }
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().add(Int64(r)).add(Int64(c)).add(Int64(ignoreIndex)).add(address(loss)).add(address(lse))
            .add(address(valid)).add(address(logits)).add(address(target)).add(check)
        dev.launch(structured("crossEntropyRows", logits.dtype), grid: r, block: 256, args)
        return true
    }

    func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor,
                                  _ out: Tensor) -> Bool {
        let n = logits.count, c = logits.shape[1]
        if n == 0 { return true }
        let args = KernelArgs.forThisThread().add(Int64(n)).add(Int64(c)).add(Int64(ignoreIndex)).add(Int64(grad.strides[0]))
            .add(address(out)).add(address(logits)).add(address(lse)).add(address(grad)).add(address(target))
        dev.launch(structured("crossEntropyRowsBackward", logits.dtype), items: n, args)
        return true
    }

    func adamStep(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ vmax: Tensor?, _ k: FusedUpdate.AdamCoefficients) -> Bool {
        if p.count == 0 { return true }
        let flags: Int32 = (k.weightDecay != 0 ? 1 : 0) | (k.decoupled ? 2 : 0) | (vmax != nil ? 4 : 0)
        let args = KernelArgs.forThisThread().add(Int64(p.count)).add(flags)
        for c in k.derived { args.add(c) }
        args.add(address(p)).add(address(g)).add(address(m)).add(address(v)).add(vmax.map { address($0) } ?? 0)
        dev.launch(structured("adam", p.dtype), items: p.count, args)
        return true
    }

    func sgdStep(_ p: Tensor, _ g: Tensor, _ buf: Tensor?, _ k: FusedUpdate.SGDCoefficients) -> Bool {
        if p.count == 0 { return true }
        let flags: Int32 = (buf != nil ? 1 : 0) | (k.nesterov ? 2 : 0) | (k.firstStep ? 4 : 0)
        let args = KernelArgs.forThisThread().add(Int64(p.count)).add(flags).add(k.lr).add(k.momentum).add(1 - k.dampening)
            .add(k.weightDecay).add(address(p)).add(address(g)).add(buf.map { address($0) } ?? 0)
        dev.launch(structured("sgd", p.dtype), items: p.count, args)
        return true
    }

    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer) { readBytes(t, into: into, nonBlocking: false) }

    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer, nonBlocking: Bool) {
        let n = t.count * t.dtype.itemSize
        if n == 0 { return }
        dev.makeCurrent()
        let stream = dev.stream
        dev.driver.must(dev.driver.cuMemcpyDtoHAsync(into, address(t), n, stream), "cuMemcpyDtoHAsync")
        if nonBlocking, let pool = Ember.CUDA.state.pinned, let b = pool.block(containing: into, bytes: n) {
            pool.used(b, on: stream, of: dev)  // the block is not reused before the copy is done
            return
        }
        dev.synchronize()
    }

    func writeBytes(_ t: Tensor, from: UnsafeRawPointer) { writeBytes(t, from: from, nonBlocking: false) }

    /// Host → device without waiting: from pinned memory directly (`nonBlocking`), else
    /// through a pinned staging block that goes back to the pool once the copy is done.
    /// Copies of more than 64 MiB from pageable memory wait instead of staging.
    func writeBytes(_ t: Tensor, from: UnsafeRawPointer, nonBlocking: Bool) {
        let n = t.count * t.dtype.itemSize
        if n == 0 { return }
        let stream = dev.stream
        if let pool = Ember.CUDA.state.pinned {
            if let b = pool.block(containing: from, bytes: n) {
                dev.makeCurrent()
                dev.driver.must(dev.driver.cuMemcpyHtoDAsync(address(t), from, n, stream), "cuMemcpyHtoDAsync")
                pool.used(b, on: stream, of: dev)
                if !nonBlocking { dev.synchronize() }
                return
            }
            if n <= 64 << 20, let b = pool.allocate(n) {
                memcpy(b.pointer, from, n)
                dev.makeCurrent()  // after the pool, which may have made another context current
                dev.driver.must(dev.driver.cuMemcpyHtoDAsync(address(t), UnsafeRawPointer(b.pointer), n, stream), "cuMemcpyHtoDAsync")
                pool.used(b, on: stream, of: dev)
                pool.release(b)
                return
            }
        }
        dev.makeCurrent()
        dev.driver.must(dev.driver.cuMemcpyHtoDAsync(address(t), from, n, stream), "cuMemcpyHtoDAsync")
        // The host buffer may be released as soon as this returns: wait for the copy.
        dev.synchronize()
    }
}
