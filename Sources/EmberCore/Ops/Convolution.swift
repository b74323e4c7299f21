import Foundation

/// Sliding-window ops: `unfold`/`fold` (im2col/col2im), convolutions, pooling and constant
/// padding. The functional forms (`conv2d`, `maxPool2d`, …) follow `torch.nn.functional`;
/// the layers that hold their weights are in EmberNN.
extension Tensor {
    /// Extracts sliding `kernel` windows of a `[N, C, H, W]` tensor into columns
    /// `[N, C·kh·kw, L]` (`torch.nn.functional.unfold`). Positions outside the input read
    /// `padValue` (0, or -∞ for max pooling).
    public func unfold(kernel: (Int, Int), dilation: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                       stride: (Int, Int) = (1, 1), padValue: Double = 0) -> Tensor {
        if rank == 3 {
            return unsqueeze(0).unfold(kernel: kernel, dilation: dilation, padding: padding, stride: stride, padValue: padValue).squeeze(0)
        }
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

    /// 2-D convolution with one group as one op (`self [N, C, H, W]`, `weight [O, C, kh, kw]`,
    /// symmetric padding): the backend's convolution forward, and one backward that gives
    /// both gradients. On the CPU: grouped im2col + GEMM per thread; on a GPU: cuDNN, or
    /// im2col + cuBLAS.
    public func conv2dIm2col(_ weight: Tensor, _ bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                             dilation: (Int, Int)) -> Tensor {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let g = WindowGeometry(channels: c, height: h, width: w, kernel: (kh, kw), stride: stride, padding: padding, dilation: dilation)
        let resultType = DType.promote(dtype, weight.dtype), compute = resultType.computeType
        checked {
            try require(compute.isFloatingPoint, "conv2d: expected floating point input and weight, got \(dtype) and \(weight.dtype)")
            try require(weight.device == device && (bias?.device ?? device) == device,
                        "conv2d: expected input, weight and bias on the same device, found \(device), \(weight.device) and \(bias?.device ?? device)")
            try require(g.outHeight > 0 && g.outWidth > 0,
                        "conv2d: the kernel [\(kh), \(kw)] with padding \(padding) and dilation \(dilation) is larger than the input \(fmt(shape))")
        }
        let x = cast(compute).contiguous(), w4 = weight.cast(compute).contiguous()
        let y = Tensor(uninitialized: [n, o, g.outHeight, g.outWidth], dtype: compute, device: device)
        device.backend.convolution2d(x, w4, bias.map { $0.cast(compute).contiguous() }, g, y)
        let result = y.cast(resultType)
        let inputs = [self, weight] + (bias.map { [$0] } ?? [])
        if anyNeedsGrad(inputs) {
            let input = self, ck = g.columnRows, l = g.outHeight * g.outWidth
            record(result, "ConvolutionBackward", inputs, save: [self, weight]) { ctx in
                let gb = bias != nil && ctx.needsGrad(2) ? ctx.grad.sum(dims: [0, 2, 3]) : nil
                if ctx.createGraph {
                    // Differentiable formulation (for higher-order gradients).
                    let gr = ctx.grad.reshape([n, o, l])
                    let colsT = input.unfold(kernel: (kh, kw), dilation: dilation, padding: padding, stride: stride)
                    let gw = gr.matmul(colsT.mT).sum(dim: 0).reshape(weight.shape)
                    let gx = weight.reshape([o, ck]).t().matmul(gr).fold(outputSize: (h, w), kernel: (kh, kw), dilation: dilation,
                                                                         padding: padding, stride: stride)
                    return [gx, gw] + (bias != nil ? [gb] : [])
                }
                let dy = ctx.grad.cast(compute).contiguous()
                let dx = ctx.needsGrad(0) ? Tensor(uninitialized: x.shape, dtype: compute, device: dy.device) : nil
                let dw = ctx.needsGrad(1) ? Tensor(uninitialized: w4.shape, dtype: compute, device: dy.device) : nil
                dy.device.backend.convolution2dBackward(x, w4, dy, g, dx: dx, dw: dw)
                return [dx, dw] + (bias != nil ? [gb] : [])
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
    /// How `pad` fills the border.
    public enum PadMode: String, Sendable {
        /// `value` everywhere.
        case constant
        /// The input mirrored at its edge, the edge itself not repeated.
        case reflect
        /// The edge element repeated.
        case replicate
        /// The input wrapped around.
        case circular
    }

    /// Pads (or, with negative amounts, crops) the last `pads.count / 2` dimensions, the last
    /// one first: `[left, right, top, bottom, …]` (`torch.nn.functional.pad`).
    public func pad(_ pads: [Int], mode: PadMode, value: Double = 0) -> Tensor {
        checked {
            try require(pads.count % 2 == 0 && pads.count / 2 <= rank,
                        "pad: padding length \(pads.count) must be even and at most 2·rank (shape \(fmt(shape)))")
        }
        if mode == .reflect || mode == .replicate { return padByIndex(pads, mode: mode) }
        // Crops first, then pads what remains positive (constant, and circular, which wraps
        // around the cropped tensor, as PyTorch's does).
        var x = self
        for i in 0..<(pads.count / 2) {
            let d = rank - 1 - i, lo = pads[2 * i], hi = pads[2 * i + 1]
            let start = Swift.max(0, -lo), stop = x.shape[d] - Swift.max(0, -hi)
            checked { try require(stop >= start, "pad: cropping \(fmt(pads)) leaves a negative size of dimension \(d) (shape \(fmt(shape)))") }
            if start > 0 || stop < x.shape[d] { x = x.narrow(d, start: start, length: stop - start) }
        }
        let positive = pads.map { Swift.max($0, 0) }
        if positive.allSatisfy({ $0 == 0 }) { return x === self ? clone() : x }
        return mode == .circular ? x.padByIndex(positive, mode: .circular) : x.pad(positive, value: value)
    }

    /// Reflect, replicate and circular padding as PyTorch indexes them: output position j of
    /// a padded dimension reads input position `j − left` mirrored, clamped or wrapped into
    /// `0..<n` (for reflect and replicate, negative amounts crop exactly as those formulas do).
    private func padByIndex(_ pads: [Int], mode: PadMode) -> Tensor {
        var x = self
        for i in 0..<(pads.count / 2) {
            let d = rank - 1 - i, lo = pads[2 * i], hi = pads[2 * i + 1], n = x.shape[d]
            if lo == 0 && hi == 0 { continue }
            let m = n + lo + hi
            checked {
                try require(m >= 0, "pad: padding \(fmt(pads)) leaves a negative size of dimension \(d) (shape \(fmt(shape)))")
                try require(n > 0 || m == 0, "pad: cannot \(mode.rawValue)-pad an empty dimension \(d) (shape \(fmt(shape)))")
                if mode == .reflect {
                    try require(lo < n && hi < n,
                                "pad: Padding size should be less than the corresponding input dimension, but got: padding (\(lo), \(hi)) at dimension \(d) of input \(fmt(shape))")
                }
                if mode == .circular {
                    try require(lo <= n && hi <= n,
                                "pad: Padding value causes wrapping around more than once (padding (\(lo), \(hi)), dimension \(d) of size \(n))")
                }
            }
            let index = (0..<m).map { j -> Int in
                let k = j - lo
                switch mode {
                case .reflect: return k < 0 ? -k : (k > n - 1 ? 2 * (n - 1) - k : k)
                case .replicate: return Swift.min(Swift.max(k, 0), n - 1)
                case .circular: return ((k % n) + n) % n
                case .constant: return k
                }
            }
            x = x.indexSelect(d, indexTensor(index))
        }
        return x === self ? clone() : x
    }

    public func pad(_ pads: [Int], value: Double = 0) -> Tensor {
        if pads.contains(where: { $0 < 0 }) { return pad(pads, mode: .constant, value: value) }
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
            // Narrowing the gradient (differentiable again, for second-order gradients).
            record(out, "PadBackward", [self]) { c in
                var g = c.grad
                for d in 0..<inShape.count where g.shape[d] != inShape[d] { g = g.narrow(d, start: starts[d], length: inShape[d]) }
                return [g.contiguous()]
            }
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

// MARK: - Functional convolutions and pooling (`torch.nn.functional`)


/// Convolution padding: explicit sizes, `.valid` (none) or `.same` (output size = input
/// size at stride 1, extra padding on the bottom/right as PyTorch does).
public enum Padding: Equatable, Sendable {
    case explicit(Int, Int)
    case valid
    case same
}

/// 2-D convolution (`torch.nn.functional.conv2d`): `x [N, C, H, W]`, `weight [O, C/groups, kh, kw]`.
/// One group runs as one op (`conv2dIm2col`: the backend's convolution); several groups as
/// im2col and one batched product per group.
public func conv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                   padding: Padding = .explicit(0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    // An unbatched image [C, H, W] is a batch of one.
    if x.rank == 3 {
        return conv2d(x.unsqueeze(0), weight, bias, stride: stride, padding: padding, dilation: dilation, groups: groups).squeeze(0)
    }
    checked { try require(x.rank == 4, "conv2d: expected a 3-D [C, H, W] or 4-D input [N, C, H, W], got shape \(fmt(x.shape))") }
    checked { try require(weight.rank == 4, "conv2d: expected a 4-D weight [O, C/groups, kh, kw], got shape \(fmt(weight.shape))") }
    let (n, c) = (x.shape[0], x.shape[1])
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    checked {
        try require(groups > 0 && c % groups == 0 && o % groups == 0 && weight.shape[1] * groups == c,
                    "conv2d: input \(fmt(x.shape)) with \(c) channels, weight \(fmt(weight.shape)) and groups=\(groups) do not fit (expected weight.shape[1] * groups == channels)")
    }
    var input = x
    var pad = (0, 0)
    switch padding {
    case .explicit(let ph, let pw): pad = (ph, pw)
    case .valid: pad = (0, 0)
    case .same:
        checked { try require(stride == (1, 1), "conv2d: padding='same' is not supported for strided convolutions") }
        let th = dilation.0 * (kh - 1), tw = dilation.1 * (kw - 1)
        if th % 2 == 0 && tw % 2 == 0 {
            pad = (th / 2, tw / 2)
        } else {
            input = x.pad([tw / 2, tw - tw / 2, th / 2, th - th / 2])
        }
    }
    // One group: a single op (the CPU's fused kernels, cuDNN on a GPU, else im2col + GEMM).
    if groups == 1 {
        return input.conv2dIm2col(weight, bias, stride: stride, padding: pad, dilation: dilation)
    }
    let cols = input.unfold(kernel: (kh, kw), dilation: dilation, padding: pad, stride: stride)  // [N, C·kh·kw, L]
    let (h, w) = (input.shape[2], input.shape[3])
    let ho = (h + 2 * pad.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let wo = (w + 2 * pad.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    // Several groups: one batched product per group over the columns.
    let ck = c / groups * kh * kw
    var y = weight.reshape([groups, o / groups, ck]).matmul(cols.reshape([n, groups, ck, ho * wo])).reshape([n, o, ho * wo])
    if let bias { y = y + bias.reshape([1, o, 1]) }
    return y.reshape([n, o, ho, wo])
}

/// 1-D convolution: `x [N, C, L]`, `weight [O, C/groups, k]`.
public func conv1d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: Int = 1, padding: Padding = .explicit(0, 0),
                   dilation: Int = 1, groups: Int = 1) -> Tensor {
    if x.rank == 2 {
        return conv1d(x.unsqueeze(0), weight, bias, stride: stride, padding: padding, dilation: dilation, groups: groups).squeeze(0)
    }
    checked { try require(x.rank == 3, "conv1d: expected a 3-D input [N, C, L] or 2-D [C, L], got shape \(fmt(x.shape))") }
    let p: Padding
    switch padding {
    case .explicit(_, let pw): p = .explicit(0, pw)
    default: p = padding
    }
    return conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, stride: (1, stride), padding: p, dilation: (1, dilation),
                  groups: groups).squeeze(2)
}

/// Transposed 2-D convolution (`conv_transpose2d`): `weight [C_in, C_out/groups, kh, kw]`.
public func convTranspose2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                            padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1),
                            groups: Int = 1) -> Tensor {
    if x.rank == 3 {
        return convTranspose2d(x.unsqueeze(0), weight, bias, stride: stride, padding: padding, outputPadding: outputPadding,
                               dilation: dilation, groups: groups).squeeze(0)
    }
    checked {
        try require(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[0] && x.shape[1] % groups == 0,
                    "convTranspose2d: input \(fmt(x.shape)) and weight \(fmt(weight.shape)) do not fit (groups=\(groups))")
    }
    let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (coutG, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
    let cout = coutG * groups
    let ho = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + outputPadding.0 + 1
    let wo = (w - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + outputPadding.1 + 1
    let cinG = cin / groups
    // Columns [N, C_out·kh·kw, H·W] = Wᵀ · x, per group, then summed back into the image.
    let wt = weight.reshape([groups, cinG, coutG * kh * kw]).transpose(1, 2)  // [g, Cout/g·k·k, Cin/g]
    let cols = wt.matmul(x.reshape([n, groups, cinG, h * w])).reshape([n, cout * kh * kw, h * w])
    // Folded uncropped, then cropped by the padding on both sides (the output padding extends
    // the bottom and right ends, which may still hold contributions).
    let fullH = (h - 1) * stride.0 + dilation.0 * (kh - 1) + 1, fullW = (w - 1) * stride.1 + dilation.1 * (kw - 1) + 1
    var y = cols.fold(outputSize: (fullH, fullW), kernel: (kh, kw), dilation: dilation, padding: (0, 0), stride: stride)
    if padding != (0, 0) || outputPadding != (0, 0) {
        y = y.pad([-padding.1, outputPadding.1 - padding.1, -padding.0, outputPadding.0 - padding.0])
    }
    if let bias { y = y + bias.reshape([1, cout, 1, 1]) }
    return y
}


/// Max over `kernel` windows (`max_pool2d`); padding reads -∞.
public func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      dilation: (Int, Int) = (1, 1)) -> Tensor {
    checked { try require(x.rank == 4, "maxPool2d: expected a 4-D input [N, C, H, W], got shape \(fmt(x.shape))") }
    return x.maxPool2d(kernel: kernel, stride: stride ?? kernel, padding: padding, dilation: dilation)
}

/// Mean over `kernel` windows (`avg_pool2d`).
public func avgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      countIncludePad: Bool = true) -> Tensor {
    checked { try require(x.rank == 4, "avgPool2d: expected a 4-D input [N, C, H, W], got shape \(fmt(x.shape))") }
    let s = stride ?? kernel
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let cols = x.reshape([n * c, 1, h, w]).unfold(kernel: kernel, padding: padding, stride: s)
    let ho = (h + 2 * padding.0 - kernel.0) / s.0 + 1, wo = (w + 2 * padding.1 - kernel.1) / s.1 + 1
    if countIncludePad || padding == (0, 0) {
        return cols.mean(dim: 1).reshape([n, c, ho, wo])
    }
    let counts = Tensor.ones([1, 1, h, w], dtype: x.dtype, device: x.device).unfold(kernel: kernel, padding: padding, stride: s).sum(dim: 1)
    return (cols.sum(dim: 1) / counts).reshape([n, c, ho, wo])
}

/// Mean over adaptive windows giving an `outputSize` result (`adaptive_avg_pool2d`).
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) -> Tensor {
    if x.rank == 3 { return adaptiveAvgPool2d(x.unsqueeze(0), outputSize: outputSize).squeeze(0) }
    checked { try require(x.rank == 4, "adaptiveAvgPool2d: expected a 4-D input [N, C, H, W], got shape \(fmt(x.shape))") }
    let (h, w) = (x.shape[2], x.shape[3])
    let (oh, ow) = outputSize
    if h % oh == 0 && w % ow == 0 { return avgPool2d(x, kernel: (h / oh, w / ow)) }
    var rows: [Tensor] = []
    for i in 0..<oh {
        let h0 = (i * h) / oh, h1 = ((i + 1) * h + oh - 1) / oh
        var cells: [Tensor] = []
        for j in 0..<ow {
            let w0 = (j * w) / ow, w1 = ((j + 1) * w + ow - 1) / ow
            cells.append(x.narrow(2, start: h0, length: h1 - h0).narrow(3, start: w0, length: w1 - w0).mean(dims: [2, 3]))
        }
        rows.append(Tensor.stack(cells, dim: -1))
    }
    return Tensor.stack(rows, dim: -2)
}
