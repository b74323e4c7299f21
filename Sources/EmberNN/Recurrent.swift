import EmberCore

/// Multi-layer recurrent networks (`nn.RNN`, `nn.LSTM`, `nn.GRU`) with PyTorch's parameter
/// names (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, …), gate order
/// (LSTM: i, f, g, o; GRU: r, z, n) and initialisation (uniform ±1/√hidden).
/// Input `[T, N, in]`, or `[N, T, in]` with `batchFirst`.
public final class Recurrent: Module {
    public enum Kind: Sendable {
        case rnnTanh, rnnRelu, lstm, gru
        /// The layer's name in messages (`LSTM`).
        public var layerName: String {
            switch self {
            case .rnnTanh, .rnnRelu: "RNN"
            case .lstm: "LSTM"
            case .gru: "GRU"
            }
        }
    }
    public let kind: Kind, inputSize: Int, hiddenSize: Int, numLayers: Int, batchFirst: Bool, hasBias: Bool
    /// Per layer: weight_ih, weight_hh, bias_ih, bias_hh.
    public private(set) var weightsIH: [Tensor] = [], weightsHH: [Tensor] = [], biasesIH: [Tensor] = [], biasesHH: [Tensor] = []

    public init(_ kind: Kind, inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = false) {
        self.kind = kind
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.batchFirst = batchFirst
        hasBias = bias
        super.init()
        let gates = kind == .lstm ? 4 : (kind == .gru ? 3 : 1)
        let bound = 1 / Double(hiddenSize).squareRoot()
        for l in 0..<numLayers {
            let inSize = l == 0 ? inputSize : hiddenSize
            weightsIH.append(Init.uniform(Tensor.empty([gates * hiddenSize, inSize]), -bound, bound).requiringGrad())
            weightsHH.append(Init.uniform(Tensor.empty([gates * hiddenSize, hiddenSize]), -bound, bound).requiringGrad())
            if bias {
                biasesIH.append(Init.uniform(Tensor.empty([gates * hiddenSize]), -bound, bound).requiringGrad())
                biasesHH.append(Init.uniform(Tensor.empty([gates * hiddenSize]), -bound, bound).requiringGrad())
            }
        }
    }

    public override func dynamicParameters() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for l in 0..<numLayers {
            out.append(("weight_ih_l\(l)", weightsIH[l]))
            out.append(("weight_hh_l\(l)", weightsHH[l]))
            if hasBias {
                out.append(("bias_ih_l\(l)", biasesIH[l]))
                out.append(("bias_hh_l\(l)", biasesHH[l]))
            }
        }
        return out
    }

    /// Runs the sequence. `h0`/`c0` are `[numLayers, N, hidden]` (zeros when nil).
    /// Returns the last layer's outputs for every step, and the final hidden (and cell) state.
    public func forward(_ input: Tensor, h0: Tensor? = nil, c0: Tensor? = nil) -> (output: Tensor, h: Tensor, c: Tensor?) {
        Ember.check(input.rank == 3 && input.shape[2] == inputSize,
                    "\(kind.layerName): expected input \(batchFirst ? "[N, T, \(inputSize)]" : "[T, N, \(inputSize)]") (batchFirst: \(batchFirst)), got shape \(input.shape)")
        let x = batchFirst ? input.transpose(0, 1) : input
        let (steps, n) = (x.shape[0], x.shape[1])
        var layerInput = (0..<steps).map { x[$0] }
        var hs: [Tensor] = [], cs: [Tensor] = []
        for l in 0..<numLayers {
            var h = h0?[l] ?? Tensor.zeros([n, hiddenSize], dtype: input.dtype, device: input.device)
            var c = c0?[l] ?? Tensor.zeros([n, hiddenSize], dtype: input.dtype, device: input.device)
            var outputs: [Tensor] = []
            let wih = weightsIH[l], whh = weightsHH[l]
            let bih = hasBias ? biasesIH[l] : nil, bhh = hasBias ? biasesHH[l] : nil
            for t in 0..<steps {
                let gi = linear(layerInput[t], wih, bih), gh = linear(h, whh, bhh)
                switch kind {
                case .rnnTanh: h = (gi + gh).tanh()
                case .rnnRelu: h = (gi + gh).relu()
                case .lstm:
                    let g = (gi + gh).chunk(4, dim: 1)
                    c = g[1].sigmoid() * c + g[0].sigmoid() * g[2].tanh()
                    h = g[3].sigmoid() * c.tanh()
                case .gru:
                    let a = gi.chunk(3, dim: 1), b = gh.chunk(3, dim: 1)
                    let r = (a[0] + b[0]).sigmoid(), z = (a[1] + b[1]).sigmoid()
                    let nn = (a[2] + r * b[2]).tanh()
                    h = (1 - z) * nn + z * h
                }
                outputs.append(h)
            }
            hs.append(h)
            cs.append(c)
            layerInput = outputs
        }
        var out = Tensor.stack(layerInput, dim: 0)
        if batchFirst { out = out.transpose(0, 1) }
        return (out, Tensor.stack(hs, dim: 0), kind == .lstm ? Tensor.stack(cs, dim: 0) : nil)
    }

    public override func callAsFunction(_ input: Tensor) -> Tensor { forward(input).output }
}

public func RNN(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, nonlinearity: String = "tanh", bias: Bool = true,
                batchFirst: Bool = false) -> Recurrent {
    Ember.check(nonlinearity == "tanh" || nonlinearity == "relu", "RNN: unknown nonlinearity \(nonlinearity)")
    return Recurrent(nonlinearity == "tanh" ? .rnnTanh : .rnnRelu, inputSize: inputSize, hiddenSize: hiddenSize,
                     numLayers: numLayers, bias: bias, batchFirst: batchFirst)
}

public func LSTM(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = false) -> Recurrent {
    Recurrent(.lstm, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias, batchFirst: batchFirst)
}

public func GRU(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bias: Bool = true, batchFirst: Bool = false) -> Recurrent {
    Recurrent(.gru, inputSize: inputSize, hiddenSize: hiddenSize, numLayers: numLayers, bias: bias, batchFirst: batchFirst)
}
