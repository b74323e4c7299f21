import EmberCore
import Foundation

// MARK: - Linear layers

/// `y = x·Wᵀ + b` (`nn.Linear`); weight `[out, in]`, initialised as PyTorch does
/// (kaiming-uniform with a = √5, bias uniform in ±1/√in).
public final class Linear: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?
    public let inFeatures: Int, outFeatures: Int

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, dtype: DType = .float32) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let w = Tensor.empty([outFeatures, inFeatures], dtype: dtype)
        Init.kaimingUniform(w, a: 5.0.squareRoot())
        weight = w
        if bias {
            let bound = inFeatures > 0 ? 1 / Double(inFeatures).squareRoot() : 0
            self.bias = Init.uniform(Tensor.empty([outFeatures], dtype: dtype), -bound, bound)
        } else {
            self.bias = nil
        }
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight, bias) }
}

/// `y = x1ᵀ·A·x2 + b` (`nn.Bilinear`); weight `[out, in1, in2]`.
public final class Bilinear: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?

    public init(_ in1: Int, _ in2: Int, _ out: Int, bias: Bool = true) {
        let bound = 1 / Double(in1).squareRoot()
        weight = Init.uniform(Tensor.empty([out, in1, in2]), -bound, bound)
        self.bias = bias ? Init.uniform(Tensor.empty([out]), -bound, bound) : nil
        super.init()
    }

    public func callAsFunction(_ x1: Tensor, _ x2: Tensor) -> Tensor {
        EmberNN.bilinear(x1, x2, weight, bias)
    }
}

/// `y[n, o] = Σᵢⱼ x1[n, i]·W[o, i, j]·x2[n, j] + b[o]`.
public func bilinear(_ x1: Tensor, _ x2: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    // [1, N, in1] · [out, in1, in2] → [out, N, in2]; times x2 and summed over in2 → [out, N].
    let lead = Array(x1.shape.dropLast())
    let a = x1.reshape([-1, x1.shape.last!]), b = x2.reshape([-1, x2.shape.last!])
    let t = a.unsqueeze(0).matmul(weight)
    var y = (t * b.unsqueeze(0)).sum(dim: -1).t()
    if let bias { y = y + bias }
    return y.reshape(lead + [weight.shape[0]])
}

/// Returns its input (`nn.Identity`).
public final class Identity: Module {
    public override init() { super.init() }
    public override func callAsFunction(_ x: Tensor) -> Tensor { x }
}

/// Flattens dimensions `startDim...endDim` (`nn.Flatten`, default from 1).
public final class Flatten: Module {
    public let startDim: Int, endDim: Int
    public init(startDim: Int = 1, endDim: Int = -1) {
        self.startDim = startDim
        self.endDim = endDim
        super.init()
    }
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.flatten(startDim: startDim, endDim: endDim) }
}

// MARK: - Containers

/// Modules applied in order (`nn.Sequential`); children are named "0", "1", …
public final class Sequential: Module {
    public private(set) var layers: [Module]
    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
    }
    public convenience init(_ layers: Module...) { self.init(layers) }
    public override func namedChildren() -> [(String, Module)] { layers.enumerated().map { ("\($0.offset)", $0.element) } }
    /// Runs the layers in order; a `Linear` followed by `ReLU()` runs as one fused op
    /// (bias and activation applied in the product's output buffer).
    public override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        var i = 0
        while i < layers.count {
            if let lin = layers[i] as? Linear, i + 1 < layers.count, layers[i + 1] is ReLU, y.rank == 2 {
                y = Tensor.linear(y, lin.weight, lin.bias, relu: true)
                i += 2
                continue
            }
            y = layers[i](y)
            i += 1
        }
        return y
    }
    public subscript(_ i: Int) -> Module { layers[i] }
    public var count: Int { layers.count }
    public func append(_ m: Module) { layers.append(m) }
}

/// A list of modules registered as children "0", "1", … (`nn.ModuleList`).
public final class ModuleList: Module, Sequence {
    public private(set) var modules: [Module]
    public init(_ modules: [Module] = []) {
        self.modules = modules
        super.init()
    }
    public override func namedChildren() -> [(String, Module)] { modules.enumerated().map { ("\($0.offset)", $0.element) } }
    public subscript(_ i: Int) -> Module { modules[i] }
    public var count: Int { modules.count }
    public func append(_ m: Module) { modules.append(m) }
    public func makeIterator() -> IndexingIterator<[Module]> { modules.makeIterator() }
}

// MARK: - Activations

/// A module wrapping an elementwise function (`nn.GELU()`, `nn.Tanh()`, …).
public final class Activation: Module {
    public let name: String
    let f: (Tensor) -> Tensor
    public init(_ name: String, _ f: @escaping (Tensor) -> Tensor) {
        self.name = name
        self.f = f
        super.init()
    }
    public override func callAsFunction(_ x: Tensor) -> Tensor { f(x) }
}

/// `max(x, 0)` (`nn.ReLU`); a type of its own so that `Sequential` can fuse `Linear` + `ReLU`.
public final class ReLU: Module {
    public override init() { super.init() }
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

public func LeakyReLU(_ negativeSlope: Double = 0.01) -> Activation { Activation("LeakyReLU") { $0.leakyRelu(negativeSlope) } }
public func GELU(approximate: Bool = false) -> Activation { Activation("GELU") { $0.gelu(approximate: approximate) } }
public func SiLU() -> Activation { Activation("SiLU") { $0.silu() } }
public func Sigmoid() -> Activation { Activation("Sigmoid") { $0.sigmoid() } }
public func Tanh() -> Activation { Activation("Tanh") { $0.tanh() } }
public func Softplus(beta: Double = 1, threshold: Double = 20) -> Activation {
    Activation("Softplus") { $0.softplus(beta: beta, threshold: threshold) }
}
public func Softmax(dim: Int) -> Activation { Activation("Softmax") { $0.softmax(dim: dim) } }
public func LogSoftmax(dim: Int) -> Activation { Activation("LogSoftmax") { $0.logSoftmax(dim: dim) } }

// MARK: - Dropout and embedding

/// Zeroes elements with probability `p` in training and scales the rest by 1/(1-p).
public final class Dropout: Module {
    public let p: Double
    public let generator: Generator?
    public init(_ p: Double = 0.5, generator: Generator? = nil) {
        Ember.check(p >= 0 && p <= 1, "Dropout: probability has to be between 0 and 1, but got \(p)")
        self.p = p
        self.generator = generator
        super.init()
    }
    public override func callAsFunction(_ x: Tensor) -> Tensor { dropout(x, p: p, training: training, generator: generator) }
}

/// Functional dropout.
public func dropout(_ x: Tensor, p: Double = 0.5, training: Bool = true, generator: Generator? = nil) -> Tensor {
    if !training || p == 0 { return x }
    if p == 1 { return x * 0 }
    let mask = Tensor.bernoulli(x.shape, p: 1 - p, dtype: x.dtype, device: x.device, generator: generator)
    return x * mask / (1 - p)
}

/// A lookup table of `num` vectors of size `dim` (`nn.Embedding`), initialised N(0, 1);
/// the row at `paddingIndex` starts at zero and receives no gradient.
public final class Embedding: Module {
    @Parameter public var weight: Tensor
    public let paddingIndex: Int?

    public init(_ num: Int, _ dim: Int, paddingIndex: Int? = nil) {
        let w = Tensor.randn([num, dim])
        if let p = paddingIndex { w[p < 0 ? p + num : p].zero_() }
        weight = w
        self.paddingIndex = paddingIndex
        super.init()
    }

    public override func callAsFunction(_ indices: Tensor) -> Tensor { embedding(indices, weight, paddingIndex: paddingIndex) }
}
