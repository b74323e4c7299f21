import EmberCore

/// `nn.Conv2d`, initialised as PyTorch (kaiming-uniform a = √5, bias ±1/√fan_in).
public final class Conv2d: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?
    public let stride: (Int, Int), padding: Padding, dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: Padding = .explicit(0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true) {
        Ember.check(inChannels % groups == 0 && outChannels % groups == 0, "Conv2d: in_channels (\(inChannels)) and out_channels (\(outChannels)) must be divisible by groups (\(groups))")
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
