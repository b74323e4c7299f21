import EmberCore
import Foundation

/// Convolution padding: explicit sizes, `.valid` (none) or `.same` (output size = input
/// size at stride 1, extra padding on the bottom/right as PyTorch does).
public enum Padding: Equatable, Sendable {
    case explicit(Int, Int)
    case valid
    case same
}

/// 2-D convolution (`torch.nn.functional.conv2d`): `x [N, C, H, W]`, `weight [O, C/groups, kh, kw]`.
/// Lowered to im2col + one batched GEMM (per group), so forward and both backward passes
/// run on the packed, multi-threaded GEMM.
public func conv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                   padding: Padding = .explicit(0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    precondition(x.rank == 4, "conv2d: expected a 4-D input [N, C, H, W], got shape \(x.shape)")
    precondition(weight.rank == 4, "conv2d: expected a 4-D weight [O, C/groups, kh, kw], got shape \(weight.shape)")
    let (n, c) = (x.shape[0], x.shape[1])
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    precondition(groups > 0 && c % groups == 0 && o % groups == 0 && weight.shape[1] * groups == c,
                 "conv2d: input \(x.shape) with \(c) channels, weight \(weight.shape) and groups=\(groups) do not fit (expected weight.shape[1] * groups == channels)")
    var input = x
    var pad = (0, 0)
    switch padding {
    case .explicit(let ph, let pw): pad = (ph, pw)
    case .valid: pad = (0, 0)
    case .same:
        precondition(stride == (1, 1), "conv2d: padding='same' is not supported for strided convolutions")
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
    var y: Tensor
    if groups == 1 {
        y = weight.reshape([o, -1]).matmul(cols)  // [N, O, L]
    } else {
        let ck = c / groups * kh * kw
        y = weight.reshape([groups, o / groups, ck]).matmul(cols.reshape([n, groups, ck, ho * wo])).reshape([n, o, ho * wo])
    }
    if let bias { y = y + bias.reshape([1, o, 1]) }
    return y.reshape([n, o, ho, wo])
}

/// 1-D convolution: `x [N, C, L]`, `weight [O, C/groups, k]`.
public func conv1d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, stride: Int = 1, padding: Padding = .explicit(0, 0),
                   dilation: Int = 1, groups: Int = 1) -> Tensor {
    precondition(x.rank == 3, "conv1d: expected a 3-D input [N, C, L], got shape \(x.shape)")
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
    precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[0] && x.shape[1] % groups == 0,
                 "convTranspose2d: input \(x.shape) and weight \(weight.shape) do not fit (groups=\(groups))")
    let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (coutG, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
    let cout = coutG * groups
    let ho = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + outputPadding.0 + 1
    let wo = (w - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + outputPadding.1 + 1
    let cinG = cin / groups
    // Columns [N, C_out·kh·kw, H·W] = Wᵀ · x, per group, then summed back into the image.
    let wt = weight.reshape([groups, cinG, coutG * kh * kw]).transpose(1, 2)  // [g, Cout/g·k·k, Cin/g]
    let cols = wt.matmul(x.reshape([n, groups, cinG, h * w])).reshape([n, cout * kh * kw, h * w])
    var y = cols.fold(outputSize: (ho, wo), kernel: (kh, kw), dilation: dilation, padding: padding, stride: stride)
    if let bias { y = y + bias.reshape([1, cout, 1, 1]) }
    return y
}

/// `nn.Conv2d`, initialised as PyTorch (kaiming-uniform a = √5, bias ±1/√fan_in).
public final class Conv2d: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?
    public let stride: (Int, Int), padding: Padding, dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: Padding = .explicit(0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv2d: channels must be divisible by groups")
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let w = Init.kaimingUniform(Tensor.empty([outChannels, inChannels / groups, kernelSize.0, kernelSize.1]), a: 5.0.squareRoot())
        weight = w
        let bound = 1 / Double(Init.fans(w).fanIn).squareRoot()
        self.bias = bias ? Init.uniform(Tensor.empty([outChannels]), -bound, bound) : nil
        super.init()
    }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        self.init(inChannels, outChannels, kernelSize: (kernelSize, kernelSize), stride: (stride, stride),
                  padding: .explicit(padding, padding), dilation: (dilation, dilation), groups: groups, bias: bias)
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight, bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// `nn.Conv1d`.
public final class Conv1d: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?
    public let stride: Int, padding: Padding, dilation: Int, groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Padding = .explicit(0, 0),
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let w = Init.kaimingUniform(Tensor.empty([outChannels, inChannels / groups, kernelSize]), a: 5.0.squareRoot())
        weight = w
        let bound = 1 / Double(Init.fans(w).fanIn).squareRoot()
        self.bias = bias ? Init.uniform(Tensor.empty([outChannels]), -bound, bound) : nil
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        conv1d(x, weight, bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// `nn.ConvTranspose2d`; weight `[C_in, C_out/groups, kh, kw]`.
public final class ConvTranspose2d: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?
    public let stride: (Int, Int), padding: (Int, Int), outputPadding: (Int, Int), dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                outputPadding: Int = 0, dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.outputPadding = (outputPadding, outputPadding)
        self.dilation = (dilation, dilation)
        self.groups = groups
        let w = Init.kaimingUniform(Tensor.empty([inChannels, outChannels / groups, kernelSize, kernelSize]), a: 5.0.squareRoot())
        weight = w
        let bound = 1 / Double(Init.fans(w).fanIn).squareRoot()
        self.bias = bias ? Init.uniform(Tensor.empty([outChannels]), -bound, bound) : nil
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        convTranspose2d(x, weight, bias, stride: stride, padding: padding, outputPadding: outputPadding, dilation: dilation,
                        groups: groups)
    }
}

// MARK: - Pooling

/// Max over `kernel` windows (`max_pool2d`); padding reads -∞.
public func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      dilation: (Int, Int) = (1, 1)) -> Tensor {
    precondition(x.rank == 4, "maxPool2d: expected a 4-D input [N, C, H, W], got shape \(x.shape)")
    return x.maxPool2d(kernel: kernel, stride: stride ?? kernel, padding: padding, dilation: dilation)
}

/// Mean over `kernel` windows (`avg_pool2d`).
public func avgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                      countIncludePad: Bool = true) -> Tensor {
    precondition(x.rank == 4, "avgPool2d: expected a 4-D input [N, C, H, W], got shape \(x.shape)")
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
    precondition(x.rank == 4, "adaptiveAvgPool2d: expected a 4-D input [N, C, H, W], got shape \(x.shape)")
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

public final class MaxPool2d: Module {
    public let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)
    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1) {
        kernel = (kernelSize, kernelSize)
        self.stride = (stride ?? kernelSize, stride ?? kernelSize)
        self.padding = (padding, padding)
        self.dilation = (dilation, dilation)
        super.init()
    }
    public override func callAsFunction(_ x: Tensor) -> Tensor {
        maxPool2d(x, kernel: kernel, stride: stride, padding: padding, dilation: dilation)
    }
}

public final class AvgPool2d: Module {
    public let kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), countIncludePad: Bool
    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) {
        kernel = (kernelSize, kernelSize)
        self.stride = (stride ?? kernelSize, stride ?? kernelSize)
        self.padding = (padding, padding)
        self.countIncludePad = countIncludePad
        super.init()
    }
    public override func callAsFunction(_ x: Tensor) -> Tensor {
        avgPool2d(x, kernel: kernel, stride: stride, padding: padding, countIncludePad: countIncludePad)
    }
}

public final class AdaptiveAvgPool2d: Module {
    public let outputSize: (Int, Int)
    public init(_ outputSize: (Int, Int)) {
        self.outputSize = outputSize
        super.init()
    }
    public convenience init(_ size: Int) { self.init((size, size)) }
    public override func callAsFunction(_ x: Tensor) -> Tensor { adaptiveAvgPool2d(x, outputSize: outputSize) }
}
