import EmberCore

// Sliding windows on the GPU: im2col/col2im and max pooling kernels; convolutions through
// cuDNN (float32, one group) when it is loaded, else im2col + cuBLAS.

extension KernelSource {
    /// Window kernels of one floating dtype: x [N, C, H, W]; cols [N, C*kh*kw, Ho*Wo].
    public static func convolutionModule(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        let grid = gridLoop
        return prelude + "\n" + """
        struct Win { long long N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo; };
        extern "C" __global__ void \(name("im2col", d.description))(Win w, double pad, \(st)* cols, const \(st)* x) {
            long long L = w.Ho * w.Wo, n = w.N * w.C * w.kh * w.kw * L;
            \(grid) {
                long long p = i % L, r = i / L, j = r % w.kw; r /= w.kw; long long q = r % w.kh; r /= w.kh;
                long long c = r % w.C, b = r / w.C, y = p / w.Wo, xo = p % w.Wo;
                long long iy = y * w.sh - w.ph + q * w.dh, ix = xo * w.sw - w.pw + j * w.dw;
                cols[i] = (iy >= 0 && iy < w.H && ix >= 0 && ix < w.W) ? x[((b * w.C + c) * w.H + iy) * w.W + ix] : \(store(d, "pad"));
            }
        }
        // col2im as a gather: each input pixel sums the columns that read it (deterministic).
        extern "C" __global__ void \(name("col2im", d.description))(Win w, \(st)* x, const \(st)* cols) {
            long long L = w.Ho * w.Wo, n = w.N * w.C * w.H * w.W;
            \(grid) {
                long long ix = i % w.W, r = i / w.W, iy = r % w.H; r /= w.H; long long c = r % w.C, b = r / w.C;
                \(t) acc = 0;
                for (long long q = 0; q < w.kh; q++) {
                    long long ty = iy + w.ph - q * w.dh;
                    if (ty < 0 || ty % w.sh) continue;
                    long long y = ty / w.sh; if (y >= w.Ho) continue;
                    for (long long j = 0; j < w.kw; j++) {
                        long long tx = ix + w.pw - j * w.dw;
                        if (tx < 0 || tx % w.sw) continue;
                        long long xo = tx / w.sw; if (xo >= w.Wo) continue;
                        acc += \(load(d, "cols[(((b * w.C + c) * w.kh + q) * w.kw + j) * L + y * w.Wo + xo]"));
                    }
                }
                x[i] = \(store(d, "\(load(d, "x[i]")) + acc"));
            }
        }
        extern "C" __global__ void \(name("maxPool2d", d.description))(Win w, \(st)* out, long long* indices, const \(st)* x) {
            long long n = w.N * w.C * w.Ho * w.Wo;
            \(grid) {
                long long xo = i % w.Wo, r = i / w.Wo, y = r % w.Ho, pl = r / w.Ho;
                const \(st)* plane = x + pl * w.H * w.W;
                \(t) best = -EMBER_INF; long long at = -1;
                for (long long q = 0; q < w.kh; q++) {
                    long long iy = y * w.sh - w.ph + q * w.dh; if (iy < 0 || iy >= w.H) continue;
                    for (long long j = 0; j < w.kw; j++) {
                        long long ix = xo * w.sw - w.pw + j * w.dw; if (ix < 0 || ix >= w.W) continue;
                        \(t) v = \(load(d, "plane[iy * w.W + ix]"));
                        if (at < 0 || v > best || v != v) { best = v; at = iy * w.W + ix; }
                    }
                }
                out[i] = \(store(d, "best")); indices[i] = at;
            }
        }
        extern "C" __global__ void \(name("maxPool2dBackward", d.description))(long long n, long long l, long long hw, \(st)* out, const \(st)* grad, const long long* indices) {
            \(grid) {
                long long at = indices[i]; if (at < 0) continue;
                \(atomicAdd(d, "out[(i / l) * hw + at]", "grad[i]"));
            }
        }

        """
    }
}

extension CUDABackend {
    private func win(_ n: Int, _ g: WindowGeometry) -> [Int64] {
        [n, g.channels, g.height, g.width, g.kernel.0, g.kernel.1, g.stride.0, g.stride.1, g.padding.0, g.padding.1,
         g.dilation.0, g.dilation.1, g.outHeight, g.outWidth].map(Int64.init)
    }

    private func windowKernel(_ name: String, _ d: DType) -> OpaquePointer {
        kernel(.convolution, d, KernelSource.name(name, d.description))
    }

    func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, _ out: Tensor) {
        let args = KernelArgs.forThisThread().addWords(win(x.shape[0], g)).add(padValue).add(address(out)).add(address(x))
        dev.launch(windowKernel("im2col", x.dtype), items: out.count, args)
    }

    func col2im(_ cols: Tensor, _ g: WindowGeometry, _ out: Tensor) {
        let args = KernelArgs.forThisThread().addWords(win(out.shape[0], g)).add(address(out)).add(address(cols))
        dev.launch(windowKernel("col2im", out.dtype), items: out.count, args)
    }

    func maxPool2d(_ x: Tensor, _ g: WindowGeometry, _ out: Tensor, _ indices: Tensor) {
        let args = KernelArgs.forThisThread().addWords(win(x.shape[0], g)).add(address(out)).add(address(indices)).add(address(x))
        dev.launch(windowKernel("maxPool2d", x.dtype), items: out.count, args)
    }

    func maxPool2dBackward(_ grad: Tensor, _ indices: Tensor, _ out: Tensor) {
        let l = grad.shape[2] * grad.shape[3], hw = out.shape[2] * out.shape[3]
        let args = KernelArgs.forThisThread().add(Int64(grad.count)).add(Int64(l)).add(Int64(hw)).add(address(out)).add(address(grad)).add(address(indices))
        dev.launch(windowKernel("maxPool2dBackward", out.dtype), items: grad.count, args)
    }

    // MARK: convolution

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

    /// The columns of every image, `[N, C·kh·kw, L]` (the im2col path).
    private func columns(_ x: Tensor, _ g: WindowGeometry) -> Tensor {
        let c = Tensor.empty([x.shape[0], g.columnRows, g.outHeight * g.outWidth], dtype: x.dtype, device: x.device)
        im2col(x, g, padValue: 0, c)
        return c
    }

    // Views below are made by the public view ops: nothing here requires grad, so no graph
    // is recorded.

    func convolution2d(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ g: WindowGeometry, _ out: Tensor) {
        let n = x.shape[0], o = w.shape[0], ck = g.columnRows, l = g.outHeight * g.outWidth
        if out.count == 0 { return }
        if !cudnn(.forward, x: x, w: w, y: out, g) {
            matmul(w.reshape([o, ck]).expand([n, o, ck]), columns(x, g), out.reshape([n, o, l]))
        }
        if let bias { binary(.add, out, bias.reshape([1, o, 1, 1]).expand(out.shape), out) }
    }

    func convolution2dBackward(_ x: Tensor, _ w: Tensor, _ dy: Tensor, _ g: WindowGeometry, dx: Tensor?, dw: Tensor?) {
        let n = dy.shape[0], o = w.shape[0], ck = g.columnRows, l = g.outHeight * g.outWidth
        if let dx, dx.count > 0, !cudnn(.backwardData, x: dx, w: w, y: dy, g) {
            // The columns' gradient Wᵀ·dy, folded back into the images.
            let gcols = Tensor.empty([n, ck, l], dtype: dy.dtype, device: dy.device)
            if o > 0 { matmul(w.reshape([o, ck]).t().expand([n, ck, o]), dy.reshape([n, o, l]), gcols) } else { fill(gcols, 0) }
            fill(dx, 0)
            col2im(gcols, g, dx)
        }
        if let dw, dw.count > 0, !cudnn(.backwardFilter, x: x, w: dw, y: dy, g) {
            // Σ over images of dy·colsᵀ, the batch sum inside the product.
            matmulSumBatches(dy.reshape([n, o, l]), columns(x, g).mT, dw.reshape([o, ck]))
        }
    }
}
