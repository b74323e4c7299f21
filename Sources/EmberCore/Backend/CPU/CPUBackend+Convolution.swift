import CEmberKernels
import EmberCPU
import Foundation

/// Sliding windows on the CPU: im2col/col2im, convolution forward and backward, max pooling.
extension CPUBackend {
    public func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, _ out: Tensor) {
        im2col(x, g, padValue: padValue, into: base(out), rowPitch: nil)
    }

    /// im2col into raw memory. With `rowPitch`, the columns of all images share rows:
    /// row `(c·kh + i)·kw + j` starts at `rowPitch·row` and image `n`'s columns at `n·L` in it
    /// (one `[C·kh·kw, N·L]` matrix, so that one product covers several images).
    func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, into out: UnsafeMutableRawPointer, rowPitch: Int?) {
        let n = x.shape[0], (C, H, W) = (g.channels, g.height, g.width)
        let (kh, kw) = g.kernel, (sh, sw) = g.stride, (ph, pw) = g.padding, (dh, dw) = g.dilation
        let Ho = g.outHeight, Wo = g.outWidth, L = Ho * Wo
        if x.dtype == .float32 {
            let src = x.ptr(Float.self), dst = out.assumingMemoryBound(to: Float.self), pad = Float(padValue)
            let geo = [H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo]
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range {
                    let rows = rowPitch.map { dst + (t % C) * kh * kw * $0 + (t / C) * L } ?? dst + t * kh * kw * L
                    ConvKernels.im2col(src + t * H * W, rows, rowPitch ?? L, geo, pad)
                }
            }
            return
        }
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let src = x.ptr(T.self), dst = out.assumingMemoryBound(to: T.self), pad = T(padValue)
            // One task per (image, channel): writes kh·kw rows of L columns.
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range {
                    let plane = src + t * H * W
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let row: UnsafeMutablePointer<T>
                            if let rowPitch {
                                row = dst + (((t % C) * kh + i) * kw + j) * rowPitch + (t / C) * L
                            } else {
                                row = dst + (t * kh * kw + i * kw + j) * L  // [N, C·kh·kw, L]
                            }
                            for y in 0..<Ho {
                                let iy = y * sh - ph + i * dh
                                let r = row + y * Wo
                                if iy < 0 || iy >= H {
                                    for xo in 0..<Wo { r[xo] = pad }
                                    continue
                                }
                                let line = plane + iy * W
                                let x0 = j * dw - pw
                                // Output columns whose input column xo·sw + x0 lies inside the row.
                                let (xs, xe) = validColumns(x0, sw, W, Wo)
                                for xo in 0..<xs { r[xo] = pad }
                                if sw == 1 {
                                    (r + xs).update(from: line + (xs + x0), count: xe - xs)
                                } else {
                                    for xo in xs..<xe { r[xo] = line[xo * sw + x0] }
                                }
                                for xo in xe..<Wo { r[xo] = pad }
                            }
                        }
                    }
                }
            }
        }
        switch x.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        default: unsupported("im2col", x.dtype)
        }
    }

    /// The output columns `xs..<xe` whose input column `xo·stride + x0` is in `0..<width`.
    @inline(__always) private func validColumns(_ x0: Int, _ stride: Int, _ width: Int, _ outWidth: Int) -> (Int, Int) {
        let xs = x0 >= 0 ? 0 : Swift.min(outWidth, (-x0 + stride - 1) / stride)
        let xe = width - x0 <= 0 ? 0 : Swift.min(outWidth, (width - x0 + stride - 1) / stride)
        return (xs, Swift.max(xs, xe))
    }

    public func col2im(_ cols: Tensor, _ g: WindowGeometry, _ out: Tensor) {
        let n = out.shape[0], (C, H, W) = (g.channels, g.height, g.width)
        let (kh, kw) = g.kernel, (sh, sw) = g.stride, (ph, pw) = g.padding, (dh, dw) = g.dilation
        let Ho = g.outHeight, Wo = g.outWidth, L = Ho * Wo
        if out.dtype == .float32 {
            let src = cols.ptr(Float.self), dst = out.ptr(Float.self)
            let geo = [H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo]
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range { ConvKernels.col2im(src + t * kh * kw * L, dst + t * H * W, L, geo) }
            }
            return
        }
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let src = cols.ptr(T.self), dst = out.ptr(T.self)
            parallelFor(n * C, grain: Swift.max(1, 4096 / Swift.max(kh * kw * L, 1))) { range in
                for t in range {  // each (image, channel) plane is written by one task only
                    let plane = dst + t * H * W
                    let rows = src + t * kh * kw * L
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let row = rows + (i * kw + j) * L
                            for y in 0..<Ho {
                                let iy = y * sh - ph + i * dh
                                if iy < 0 || iy >= H { continue }
                                let line = plane + iy * W, r = row + y * Wo
                                let x0 = j * dw - pw
                                let (xs, xe) = validColumns(x0, sw, W, Wo)
                                if sw == 1 {
                                    let l = line + x0
                                    for xo in xs..<xe { l[xo] += r[xo] }
                                } else {
                                    for xo in xs..<xe { line[xo * sw + x0] += r[xo] }
                                }
                            }
                        }
                    }
                }
            }
        }
        switch out.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        default: unsupported("col2im", out.dtype)
        }
    }

    // MARK: convolution

    /// Images `first..<first+count` of a contiguous `[N, …]` tensor, as a view (no autograd).
    private func images(_ t: Tensor, _ first: Int, _ count: Int) -> Tensor {
        let per = t.shape.dropFirst().reduce(1, *)
        return Tensor(storage: t.storage, layout: Layout(shape: [count] + t.shape.dropFirst(), strides: t.strides,
                                                         offset: t.layout.offset + first * per), dtype: t.dtype)
    }

    /// `C = A·B` (+ C) on one thread, for float32 or float64 buffers.
    private func gemm1(_ d: DType, m: Int, n: Int, k: Int, a: UnsafeRawPointer, rsA: Int, csA: Int,
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

    /// The address of a contiguous tensor's first element.
    private func base(_ t: Tensor) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(t.ptr(UInt8.self)) }

    /// One image at a time per thread: its columns are built in a buffer that stays in cache
    /// and multiplied at once, so the `[N, C·kh·kw, L]` column matrix never exists (it was
    /// most of the memory traffic). Images go in groups whose columns sit side by side
    /// (`[C·kh·kw, G·L]`): one product per group packs the weights once and is wide enough to
    /// run near the kernel's peak. The bias is added while the product is copied out.
    public func convolution2d(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ g: WindowGeometry, _ out: Tensor) {
        let d = x.dtype
        guard d == .float32 || d == .float64 else { unsupported("conv2d", d) }
        let n = x.shape[0], o = w.shape[0], ck = g.columnRows, l = g.outHeight * g.outWidth
        let item = d.itemSize
        let wp = UnsafeRawPointer(base(w)), yp = base(out)
        let bp = bias.map { UnsafeRawPointer(base($0)) }
        func addBias(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ row: Int, _ b: UnsafeRawPointer) {
            if d == .float32 {
                let dd = dst.assumingMemoryBound(to: Float.self), s = src.assumingMemoryBound(to: Float.self)
                let v = b.assumingMemoryBound(to: Float.self)[row]
                for i in 0..<l { dd[i] = s[i] + v }
            } else {
                let dd = dst.assumingMemoryBound(to: Double.self), s = src.assumingMemoryBound(to: Double.self)
                let v = b.assumingMemoryBound(to: Double.self)[row]
                for i in 0..<l { dd[i] = s[i] + v }
            }
        }
        // Images are split evenly between threads first, then grouped within each share.
        let group = Swift.max(1, Swift.min(8, 1024 / Swift.max(l, 1)))
        parallelFor(n, grain: 1) { range in
            let cols = Tensor(uninitialized: [ck, group * l], dtype: d)
            let prod = Tensor(uninitialized: [o, group * l], dtype: d)
            for first in stride(from: range.lowerBound, to: range.upperBound, by: group) {
                let count = Swift.min(group, range.upperBound - first), width = count * l
                im2col(images(x, first, count), g, padValue: 0, into: base(cols), rowPitch: width)
                if count == 1 {
                    let dst = yp + first * o * l * item
                    gemm1(d, m: o, n: l, k: ck, a: wp, rsA: ck, csA: 1, b: base(cols), rsB: l, csB: 1, c: dst, ldc: l, accumulate: false)
                    if let bp { for r in 0..<o { addBias(dst + r * l * item, dst + r * l * item, r, bp) } }
                    continue
                }
                gemm1(d, m: o, n: width, k: ck, a: wp, rsA: ck, csA: 1, b: base(cols), rsB: width, csB: 1,
                      c: base(prod), ldc: width, accumulate: false)
                // [O, G·L] → G blocks of [O, L], adding the bias on the way
                for j in 0..<count {
                    for r in 0..<o {
                        let dst = yp + ((first + j) * o + r) * l * item, src = base(prod) + (r * width + j * l) * item
                        if let bp { addBias(dst, src, r, bp) } else { dst.copyMemory(from: src, byteCount: l * item) }
                    }
                }
            }
        }
    }

    /// Both gradients in one pass over the images, each thread on its share: the columns'
    /// gradient Wᵀ·dy folded back into the image, and dy·colsᵀ (columns rebuilt for the
    /// image) into a per-thread partial sum of the weight gradient.
    public func convolution2dBackward(_ x: Tensor, _ w: Tensor, _ dy: Tensor, _ g: WindowGeometry, dx: Tensor?, dw: Tensor?) {
        let d = dy.dtype
        guard d == .float32 || d == .float64 else { unsupported("conv2d backward", d) }
        let n = dy.shape[0], o = w.shape[0], ck = g.columnRows, l = g.outHeight * g.outWidth
        let item = d.itemSize
        let wp = UnsafeRawPointer(base(w)), gp = UnsafeRawPointer(base(dy))
        if let dx { fill(dx, 0) }
        if let dw { fill(dw, 0) }
        let lock = NSLock()
        parallelFor(n, grain: 1) { range in
            let buf = Tensor(uninitialized: [1, ck, l], dtype: d)
            let partial = dw.map { _ in Tensor(uninitialized: [o, ck], dtype: d) }
            if let partial { fill(partial, 0) }
            for i in range {
                let gri = gp + i * o * l * item
                if let dx {
                    gemm1(d, m: ck, n: l, k: o, a: wp, rsA: 1, csA: ck, b: gri, rsB: l, csB: 1, c: base(buf), ldc: l, accumulate: false)
                    col2im(buf, g, images(dx, i, 1))
                }
                if let partial {
                    im2col(images(x, i, 1), g, padValue: 0, buf)
                    if d == .float32 && ck < 16 {
                        // Few column rows (one input channel): dot products, no packing.
                        ConvKernels.dots(gri.assumingMemoryBound(to: Float.self), l, base(buf).assumingMemoryBound(to: Float.self), l,
                                         base(partial).assumingMemoryBound(to: Float.self), ck, o, ck, l, 1)
                    } else {
                        gemm1(d, m: o, n: ck, k: l, a: gri, rsA: l, csA: 1, b: base(buf), rsB: 1, csB: l,
                              c: base(partial), ldc: ck, accumulate: true)
                    }
                }
            }
            if let partial, let dw {
                lock.lock()
                binary(.add, dw, Tensor(storage: partial.storage, layout: Layout(contiguous: dw.shape), dtype: d), dw)
                lock.unlock()
            }
        }
    }

    // MARK: pooling

    public func maxPool2d(_ x: Tensor, _ g: WindowGeometry, _ out: Tensor, _ indices: Tensor) {
        let planes = x.shape[0] * g.channels, (H, W) = (g.height, g.width)
        let (kh, kw) = g.kernel, (sh, sw) = g.stride, (ph, pw) = g.padding, (dh, dw) = g.dilation
        let Ho = g.outHeight, Wo = g.outWidth
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let src = x.ptr(T.self), dst = out.ptr(T.self), idx = indices.ptr(Int64.self)
            if T.self == Float.self && kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 {
                // The common 2×2/2 window in float32: the branch-free C kernel.
                let s = x.ptr(Float.self), d = out.ptr(Float.self)
                parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(Ho * Wo * 4, 1))) { range in
                    for pl in range { ConvKernels.maxPool2x2(s + pl * H * W, d + pl * Ho * Wo, idx + pl * Ho * Wo, W, Ho, Wo) }
                }
                return
            }
            if kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 {
                // The common 2×2/2 window without padding: four loads, no bounds checks.
                // Ties keep the first element in scan order; NaN wins (as PyTorch).
                parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(Ho * Wo * 4, 1))) { range in
                    for pl in range {
                        let plane = src + pl * H * W, o = dst + pl * Ho * Wo, io = idx + pl * Ho * Wo
                        for y in 0..<Ho {
                            let r0 = 2 * y * W, r1 = r0 + W
                            for xo in 0..<Wo {
                                let c0 = r0 + 2 * xo, c1 = r1 + 2 * xo
                                var best = plane[c0], at = c0
                                let b = plane[c0 + 1], c = plane[c1], d = plane[c1 + 1]
                                if b > best || b.isNaN { best = b; at = c0 + 1 }
                                if c > best || c.isNaN { best = c; at = c1 }
                                if d > best || d.isNaN { best = d; at = c1 + 1 }
                                o[y * Wo + xo] = best
                                io[y * Wo + xo] = Int64(at)
                            }
                        }
                    }
                }
                return
            }
            parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(Ho * Wo * kh * kw, 1))) { range in
                for pl in range {
                    let plane = src + pl * H * W, o = dst + pl * Ho * Wo, io = idx + pl * Ho * Wo
                    for y in 0..<Ho {
                        for xo in 0..<Wo {
                            var best = -T.infinity, at = -1
                            for i in 0..<kh {
                                let iy = y * sh - ph + i * dh
                                if iy < 0 || iy >= H { continue }
                                for j in 0..<kw {
                                    let ix = xo * sw - pw + j * dw
                                    if ix < 0 || ix >= W { continue }
                                    let v = plane[iy * W + ix]
                                    if v > best || v.isNaN || at < 0 { best = v; at = iy * W + ix; if v.isNaN { break } }
                                }
                            }
                            o[y * Wo + xo] = best
                            io[y * Wo + xo] = Int64(at)
                        }
                    }
                }
            }
        }
        if x.dtype == .float32 { run(Float.self) } else { run(Double.self) }
    }

    public func maxPool2dBackward(_ grad: Tensor, _ indices: Tensor, _ out: Tensor) {
        let planes = out.shape[0] * out.shape[1], hw = out.shape[2] * out.shape[3], l = grad.shape[2] * grad.shape[3]
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let g = grad.ptr(T.self), idx = indices.ptr(Int64.self), o = out.ptr(T.self)
            parallelFor(planes, grain: Swift.max(1, 16384 / Swift.max(l, 1))) { range in
                for pl in range {
                    let gp = g + pl * l, ip = idx + pl * l, op = o + pl * hw
                    for k in 0..<l where ip[k] >= 0 { op[Int(ip[k])] += gp[k] }
                }
            }
        }
        if out.dtype == .float32 { run(Float.self) } else { run(Double.self) }
    }
}

/// The window kernels of the active instruction-set level (the same C compiled per ISA).
enum ConvKernels {
    static var im2col: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, UnsafePointer<Int>?, Float) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_im2col_plane_f32_avx512
        case .avx2: ember_im2col_plane_f32_avx2
        case .baseline: ember_im2col_plane_f32
        }
    }
    static var col2im: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, UnsafePointer<Int>?) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_col2im_plane_f32_avx512
        case .avx2: ember_col2im_plane_f32_avx2
        case .baseline: ember_col2im_plane_f32
        }
    }
    static var maxPool2x2: @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int64>?, Int, Int, Int) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_maxpool2x2_plane_f32_avx512
        case .avx2: ember_maxpool2x2_plane_f32_avx2
        case .baseline: ember_maxpool2x2_plane_f32
        }
    }
    static var dots: @convention(c) (UnsafePointer<Float>?, Int, UnsafePointer<Float>?, Int, UnsafeMutablePointer<Float>?, Int, Int, Int, Int, Int32) -> Void {
        switch CPUFeatures.active {
        case .avx512: ember_dots_f32_avx512
        case .avx2: ember_dots_f32_avx2
        case .baseline: ember_dots_f32
        }
    }
}
