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
