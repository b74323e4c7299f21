import CEmberKernels
import EmberCPU
import Foundation

/// Sliding-window ops: `unfold`/`fold` (im2col/col2im) and constant padding. Convolution
/// and pooling are built on them.
extension Tensor {
    /// Extracts sliding `kernel` windows of a `[N, C, H, W]` tensor into columns
    /// `[N, C·kh·kw, L]` (`torch.nn.functional.unfold`). Positions outside the input read
    /// `padValue` (0, or -∞ for max pooling).
    public func unfold(kernel: (Int, Int), dilation: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                       stride: (Int, Int) = (1, 1), padValue: Double = 0) -> Tensor {
        checked {
            try require(rank == 4, "unfold: expected a 4-D input [N, C, H, W], got shape \(fmt(shape))")
            try require(dtype.isFloatingPoint, "unfold: expected a floating point tensor, got \(dtype)")
            try require(kernel.0 > 0 && kernel.1 > 0 && stride.0 > 0 && stride.1 > 0 && dilation.0 > 0 && dilation.1 > 0,
                        "unfold: kernel, stride and dilation must be positive")
        }
        let g = WindowGeometry(channels: shape[1], height: shape[2], width: shape[3], kernel: kernel, stride: stride,
                               padding: padding, dilation: dilation)
        checked {
            try require(g.outHeight > 0 && g.outWidth > 0,
                        "unfold: the kernel \(kernel) with padding \(padding) and dilation \(dilation) is larger than the input \(fmt(shape))")
        }
        let x = cast(dtype.computeType).contiguous()
        let out = Tensor(uninitialized: [shape[0], g.columnRows, g.outHeight * g.outWidth], dtype: x.dtype, device: device)
        device.backend.im2col(x, g, padValue: padValue, out)
        let result = out.cast(dtype)
        if anyNeedsGrad(self) {
            record(result, "Im2ColBackward", [self]) { c in
                [c.grad.fold(outputSize: (g.height, g.width), kernel: kernel, dilation: dilation, padding: padding, stride: stride)]
            }
        }
        return result
    }

    /// Sums columns `[N, C·kh·kw, L]` back into a `[N, C, H, W]` image (`fold`): the adjoint of `unfold`.
    public func fold(outputSize: (Int, Int), kernel: (Int, Int), dilation: (Int, Int) = (1, 1),
                     padding: (Int, Int) = (0, 0), stride: (Int, Int) = (1, 1)) -> Tensor {
        let k = kernel.0 * kernel.1
        checked {
            try require(rank == 3 && shape[1] % k == 0,
                        "fold: expected a 3-D input [N, C·\(kernel.0)·\(kernel.1), L], got shape \(fmt(shape))")
        }
        let g = WindowGeometry(channels: shape[1] / k, height: outputSize.0, width: outputSize.1, kernel: kernel,
                               stride: stride, padding: padding, dilation: dilation)
        checked {
            try require(g.outHeight * g.outWidth == shape[2],
                        "fold: expected L = \(g.outHeight * g.outWidth) blocks for output size \(outputSize), got \(shape[2])")
        }
        let cols = cast(dtype.computeType).contiguous()
        let out = Tensor.zeros([shape[0], g.channels, outputSize.0, outputSize.1], dtype: cols.dtype, device: device)
        device.backend.col2im(cols, g, out)
        let result = out.cast(dtype)
        if anyNeedsGrad(self) {
            record(result, "Col2ImBackward", [self]) { c in
                [c.grad.unfold(kernel: kernel, dilation: dilation, padding: padding, stride: stride)]
            }
        }
        return result
    }

    /// 2-D convolution with `groups == 1` as one op: im2col, one GEMM per image, and a
    /// backward pass whose weight gradient sums over the batch inside its GEMMs.
    /// `self [N, C, H, W]`, `weight [O, C, kh, kw]`; padding is symmetric.
    public func conv2dIm2col(_ weight: Tensor, _ bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                             dilation: (Int, Int)) -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let g = WindowGeometry(channels: c, height: h, width: w, kernel: (kh, kw), stride: stride, padding: padding, dilation: dilation)
        let (ho, wo) = (g.outHeight, g.outWidth)
        let ck = g.columnRows, l = ho * wo
        let compute = DType.promote(dtype, weight.dtype).computeType
        let x = cast(compute).contiguous()
        if device == .cpu && (compute == .float32 || compute == .float64) {
            return conv2dCPU(x, weight, bias, g, compute: compute)
        }
        let w4 = weight.cast(compute).contiguous()
        let w2 = w4.reshape([o, ck])
        let y = Tensor(uninitialized: [n, o, l], dtype: compute, device: device)
        let y4 = Tensor(storage: y.storage, layout: Layout(contiguous: [n, o, ho, wo]), dtype: compute)
        // A library convolution when the backend has one (cuDNN), else im2col + GEMM; the
        // columns are kept for the weight gradient only on the second path.
        var cols: Tensor? = nil
        let library = device.backend.convolution2d(x, w4, g, y4)
        if !library {
            let c = Tensor(uninitialized: [n, ck, l], dtype: compute, device: device)
            device.backend.im2col(x, g, padValue: 0, c)
            device.backend.matmul(w2.broadcastView([n, o, ck]), c, y)
            cols = c
        }
        var out = y4
        if let bias { out = withNoGrad { out + bias.cast(compute).reshape([1, o, 1, 1]) } }
        let result = out.cast(DType.promote(dtype, weight.dtype))
        let inputs = [self, weight] + (bias.map { [$0] } ?? [])
        if anyNeedsGrad(inputs) {
            let input = self, wt = weight, inShape = shape
            record(result, "ConvolutionBackward", inputs, save: [self, weight]) { ctx in
                let gr = ctx.grad.reshape([n, o, l])
                if ctx.createGraph {
                    // Differentiable formulation (for higher-order gradients).
                    let colsT = input.unfold(kernel: (kh, kw), dilation: dilation, padding: padding, stride: stride)
                    let gw = gr.matmul(colsT.mT).sum(dim: 0).reshape(wt.shape)
                    let gx = wt.reshape([o, ck]).t().matmul(gr).fold(outputSize: (h, w), kernel: (kh, kw), dilation: dilation,
                                                                     padding: padding, stride: stride)
                    return [gx, gw] + (bias != nil ? [ctx.grad.sum(dims: [0, 2, 3])] : [])
                }
                let gc = gr.cast(compute).contiguous()
                let backend = gc.device.backend
                let dy4 = gc.reshape([n, o, ho, wo])
                var gx: Tensor? = nil, gw: Tensor? = nil
                if ctx.needsGrad(0) {
                    let img = Tensor(uninitialized: inShape, dtype: compute, device: gc.device)
                    if !(library && backend.convolution2dBackwardData(w4, dy4, g, img)) {
                        let gcols = Tensor(uninitialized: [n, ck, l], dtype: compute, device: gc.device)
                        backend.matmul(w2.t().broadcastView([n, ck, o]), gc, gcols)
                        backend.fill(img, 0)
                        backend.col2im(gcols, g, img)
                    }
                    gx = img
                }
                if ctx.needsGrad(1) {
                    let acc = Tensor(uninitialized: [o, c, kh, kw], dtype: compute, device: gc.device)
                    if !(library && backend.convolution2dBackwardFilter(x, dy4, g, acc)) {
                        let columns = cols ?? {
                            let c2 = Tensor(uninitialized: [n, ck, l], dtype: compute, device: gc.device)
                            backend.im2col(x, g, padValue: 0, c2)
                            return c2
                        }()
                        backend.matmulSumBatches(gc, columns.mT, acc.reshape([o, ck]))
                    }
                    gw = acc.reshape(wt.shape)
                }
                let gb = bias != nil && ctx.needsGrad(2) ? ctx.grad.sum(dims: [0, 2, 3]) : nil
                return [gx, gw] + (bias != nil ? [gb] : [])
            }
        }
        return result
    }

    /// `C = A·B` (+ C) on one thread, for float32 or float64 buffers.
    private static func gemm1(_ d: DType, m: Int, n: Int, k: Int, a: UnsafeRawPointer, rsA: Int, csA: Int,
                              b: UnsafeRawPointer, rsB: Int, csB: Int, c: UnsafeMutableRawPointer, ldc: Int, accumulate: Bool) {
        if d == .float32 {
            GEMM.sgemm(m: m, n: n, k: k, a: a.assumingMemoryBound(to: Float.self), rowStrideA: rsA, colStrideA: csA,
                       b: b.assumingMemoryBound(to: Float.self), rowStrideB: rsB, colStrideB: csB,
                       c: c.assumingMemoryBound(to: Float.self), ldc: ldc, accumulate: accumulate, threads: 1)
        } else {
            GEMM.dgemm(m: m, n: n, k: k, a: a.assumingMemoryBound(to: Double.self), rowStrideA: rsA, colStrideA: csA,
                       b: b.assumingMemoryBound(to: Double.self), rowStrideB: rsB, colStrideB: csB,
                       c: c.assumingMemoryBound(to: Double.self), ldc: ldc, accumulate: accumulate, threads: 1)
        }
    }

    /// Convolution on the CPU, one image at a time per thread: its columns are built in a
    /// buffer that stays in cache and multiplied at once, so the `[N, C·kh·kw, L]` column
    /// matrix never exists (it was most of the memory traffic); backward rebuilds each
    /// image's columns instead of keeping them.
    private func conv2dCPU(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ g: WindowGeometry, compute: DType) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = weight.shape[0], ck = g.columnRows, l = g.outHeight * g.outWidth
        let item = compute.itemSize
        let w2 = weight.cast(compute).contiguous().reshape([o, ck])
        let y = Tensor(uninitialized: [n, o, l], dtype: compute)
        let cpu = CPUBackend.shared
        let wp = UnsafeRawPointer(w2.storage.data + w2.layout.offset * item), yp = y.storage.data
        // Images go in groups whose columns sit side by side ([C·kh·kw, G·L]): one product per
        // group packs the weights once and is wide enough to run near the kernel's peak.
        // The bias is added while the product is copied out (no separate pass over the output).
        let biasC = bias.map { $0.cast(compute).contiguous() }
        let bp = biasC.map { UnsafeRawPointer($0.storage.data + $0.layout.offset * item) }
        func addBias(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ row: Int, _ b: UnsafeRawPointer) {
            if compute == .float32 {
                let d = dst.assumingMemoryBound(to: Float.self), s = src.assumingMemoryBound(to: Float.self)
                let v = b.assumingMemoryBound(to: Float.self)[row]
                for i in 0..<l { d[i] = s[i] + v }
            } else {
                let d = dst.assumingMemoryBound(to: Double.self), s = src.assumingMemoryBound(to: Double.self)
                let v = b.assumingMemoryBound(to: Double.self)[row]
                for i in 0..<l { d[i] = s[i] + v }
            }
        }
        // Images are split evenly between threads first, then grouped within each share.
        let group = Swift.max(1, Swift.min(8, 1024 / Swift.max(l, 1)))
        parallelFor(n, grain: 1) { range in
            let cols = Tensor(uninitialized: [ck, group * l], dtype: compute)
            let prod = Tensor(uninitialized: [o, group * l], dtype: compute)
            for first in stride(from: range.lowerBound, to: range.upperBound, by: group) {
                let count = Swift.min(group, range.upperBound - first), width = count * l
                cpu.im2col(x.narrow(0, start: first, length: count), g, padValue: 0, into: cols.storage.data, rowPitch: width)
                if count == 1 {
                    let dst = yp + first * o * l * item
                    Tensor.gemm1(compute, m: o, n: l, k: ck, a: wp, rsA: ck, csA: 1, b: cols.storage.data, rsB: l, csB: 1,
                                 c: dst, ldc: l, accumulate: false)
                    if let bp { for r in 0..<o { addBias(dst + r * l * item, dst + r * l * item, r, bp) } }
                    continue
                }
                Tensor.gemm1(compute, m: o, n: width, k: ck, a: wp, rsA: ck, csA: 1, b: cols.storage.data, rsB: width, csB: 1,
                             c: prod.storage.data, ldc: width, accumulate: false)
                // [O, G·L] → G blocks of [O, L], adding the bias on the way
                for j in 0..<count {
                    for r in 0..<o {
                        let dst = yp + ((first + j) * o + r) * l * item, src = prod.storage.data + (r * width + j * l) * item
                        if let bp { addBias(dst, src, r, bp) } else { dst.copyMemory(from: src, byteCount: l * item) }
                    }
                }
            }
        }
        withExtendedLifetime(biasC) {}
        let out = Tensor(storage: y.storage, layout: Layout(contiguous: [n, o, g.outHeight, g.outWidth]), dtype: compute)
        let result = out.cast(DType.promote(dtype, weight.dtype))
        let inputs = [self, weight] + (bias.map { [$0] } ?? [])
        if anyNeedsGrad(inputs) {
            let input = self, wt = weight
            let (kh, kw) = g.kernel
            record(result, "ConvolutionBackward", inputs, save: [self, weight]) { ctx in
                if ctx.createGraph {
                    // Differentiable formulation (for higher-order gradients).
                    let gr = ctx.grad.reshape([n, o, l])
                    let colsT = input.unfold(kernel: (kh, kw), dilation: g.dilation, padding: g.padding, stride: g.stride)
                    let gw = gr.matmul(colsT.mT).sum(dim: 0).reshape(wt.shape)
                    let gx = wt.reshape([o, ck]).t().matmul(gr).fold(outputSize: (h, w), kernel: (kh, kw), dilation: g.dilation,
                                                                     padding: g.padding, stride: g.stride)
                    return [gx, gw] + (bias != nil ? [ctx.grad.sum(dims: [0, 2, 3])] : [])
                }
                let gc = ctx.grad.cast(compute).contiguous()
                let gp = UnsafeRawPointer(gc.storage.data + gc.layout.offset * item)
                let wantX = ctx.needsGrad(0), wantW = ctx.needsGrad(1)
                let gx = wantX ? Tensor.zeros([n, c, h, w], dtype: compute) : nil
                let acc = wantW ? Tensor.zeros([o, ck], dtype: compute) : nil
                let lock = NSLock()
                parallelFor(n, grain: 1) { range in
                    let buf = Tensor(uninitialized: [1, ck, l], dtype: compute)
                    let partial = wantW ? Tensor.zeros([o, ck], dtype: compute) : nil
                    for i in range {
                        let gri = gp + i * o * l * item
                        if let gx {
                            // columns' gradient Wᵀ·g, folded back into image i
                            Tensor.gemm1(compute, m: ck, n: l, k: o, a: wp, rsA: 1, csA: ck, b: gri, rsB: l, csB: 1,
                                         c: buf.storage.data, ldc: l, accumulate: false)
                            cpu.col2im(buf, g, gx.narrow(0, start: i, length: 1))
                        }
                        if let partial {
                            // weight gradient g·colsᵀ, columns rebuilt for this image
                            cpu.im2col(x.narrow(0, start: i, length: 1), g, padValue: 0, buf)
                            if compute == .float32 && ck < 16 {
                                // Few columns rows (one input channel): dot products, no packing.
                                ConvKernels.dots(gri.assumingMemoryBound(to: Float.self), l, buf.storage.data.assumingMemoryBound(to: Float.self), l,
                                               partial.storage.data.assumingMemoryBound(to: Float.self), ck, o, ck, l, 1)
                            } else {
                                Tensor.gemm1(compute, m: o, n: ck, k: l, a: gri, rsA: l, csA: 1, b: buf.storage.data, rsB: 1, csB: l,
                                             c: partial.storage.data, ldc: ck, accumulate: true)
                            }
                        }
                    }
                    if let partial, let acc {
                        lock.lock()
                        withNoGrad { _ = acc.add_(partial) }
                        lock.unlock()
                    }
                }
                let gb = bias != nil && ctx.needsGrad(2) ? ctx.grad.sum(dims: [0, 2, 3]) : nil
                return [gx, acc?.reshape(wt.shape)] + (bias != nil ? [gb] : [])
            }
        }
        return result
    }

    /// Max over `kernel` windows of `[N, C, H, W]` (`max_pool2d`), by a direct kernel that
    /// keeps each maximum's position for the backward pass.
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int) = (0, 0),
                          dilation: (Int, Int) = (1, 1)) -> Tensor {
        checked {
            try require(rank == 4, "maxPool2d: expected a 4-D input [N, C, H, W], got shape \(fmt(shape))")
            try require(dtype.isFloatingPoint, "maxPool2d: expected a floating point tensor, got \(dtype)")
            try require(padding.0 * 2 <= kernel.0 && padding.1 * 2 <= kernel.1,
                        "maxPool2d: pad should be at most half of the effective kernel size (kernel \(kernel), padding \(padding))")
        }
        let g = WindowGeometry(channels: shape[1], height: shape[2], width: shape[3], kernel: kernel, stride: stride,
                               padding: padding, dilation: dilation)
        let x = cast(dtype.computeType).contiguous()
        let out = Tensor(uninitialized: [shape[0], shape[1], g.outHeight, g.outWidth], dtype: x.dtype, device: device)
        let idx = Tensor(uninitialized: out.shape, dtype: .int64, device: device)
        device.backend.maxPool2d(x, g, out, idx)
        let result = out.cast(dtype)
        if anyNeedsGrad(self) {
            let inShape = shape
            record(result, "MaxPool2DWithIndicesBackward", [self]) { c in
                if c.createGraph {
                    let flat = Tensor.zeros([inShape[0], inShape[1], inShape[2] * inShape[3]], dtype: c.grad.dtype, device: c.grad.device)
                    return [flat.scatterAdd(2, idx.flatten(startDim: 2), c.grad.flatten(startDim: 2)).reshape(inShape)]
                }
                let gx = Tensor.zeros(inShape, dtype: c.grad.dtype.computeType, device: c.grad.device)
                c.grad.device.backend.maxPool2dBackward(c.grad.cast(gx.dtype).contiguous(), idx, gx)
                return [gx.cast(c.grad.dtype)]
            }
        }
        return result
    }

    /// Pads the last dimensions with `value` (`torch.nn.functional.pad`, constant mode):
    /// `pads` lists (before, after) pairs starting from the last dimension.
    public func pad(_ pads: [Int], value: Double = 0) -> Tensor {
        checked {
            try require(pads.count % 2 == 0 && pads.count / 2 <= rank,
                        "pad: padding length \(pads.count) must be even and at most 2·rank (shape \(fmt(shape)))")
        }
        var outShape = shape
        var starts = [Int](repeating: 0, count: rank)
        for i in 0..<(pads.count / 2) {
            let d = rank - 1 - i
            outShape[d] += pads[2 * i] + pads[2 * i + 1]
            starts[d] = pads[2 * i]
            checked { try require(outShape[d] >= 0 && pads[2 * i] >= 0 && pads[2 * i + 1] >= 0,
                                  "pad: negative padding is not supported (pads \(fmt(pads)))") }
        }
        let out = Tensor.full(outShape, value, dtype: dtype, device: device)
        let inner = Tensor.region(out, starts, shape)
        device.backend.copy(self, into: inner)
        if anyNeedsGrad(self) {
            let inShape = shape
            record(out, "PadBackward", [self]) { c in [Tensor.region(c.grad, starts, inShape).clone()] }
        }
        return out
    }

    /// A view of `t` starting at `starts` with extent `shape` (no autograd: kernels only).
    static func region(_ t: Tensor, _ starts: [Int], _ shape: [Int]) -> Tensor {
        var l = t.layout
        for d in 0..<t.rank { l.offset += starts[d] * l.strides[d] }
        l.shape = shape
        return Tensor(storage: t.storage, layout: l, dtype: t.dtype)
    }
}
