import EmberCPU
import EmberTestSupport
import Foundation
import XCTest
@testable import Ember

/// Builds the Ember twin of a fixture layer; returns the module and its forward call.
func makeLayer(_ name: String, _ a: [String: Any], _ extra: [String: Any]) -> (Module, ([Tensor]) -> Tensor) {
    func i(_ k: String) -> Int { Int(number(a[k]!)) }
    func one(_ m: Module) -> (Module, ([Tensor]) -> Tensor) { (m, { m($0[0]) }) }
    switch name {
    case "Linear", "Linear3d": return one(Linear(i("in"), i("out")))
    case "LinearNoBias": return one(Linear(i("in"), i("out"), bias: false))
    case "Bilinear":
        let m = Bilinear(i("in1"), i("in2"), i("out"))
        return (m, { m($0[0], $0[1]) })
    case _ where name.hasPrefix("Conv2d"):
        let k = i("k"), p = i("p")
        return one(Conv2d(i("in"), i("out"), kernelSize: (k, k), stride: (i("s"), i("s")),
                          padding: p < 0 ? .same : .explicit(p, p), dilation: (i("d"), i("d")), groups: i("g")))
    case "Conv1d": return one(Conv1d(i("in"), i("out"), kernelSize: i("k"), stride: i("s"), padding: .explicit(0, i("p"))))
    case _ where name.hasPrefix("ConvTranspose2d"):
        return one(ConvTranspose2d(i("in"), i("out"), kernelSize: i("k"), stride: i("s"), padding: i("p"), outputPadding: i("op"), groups: i("g")))
    case "MaxPool2d", "MaxPool2d_s1p1":
        return one(MaxPool2d(i("k"), stride: a["s"].map { Int(number($0)) }, padding: a["p"].map { Int(number($0)) } ?? 0))
    case "AvgPool2d", "AvgPool2d_pad_excl":
        return one(AvgPool2d(i("k"), stride: a["s"].map { Int(number($0)) }, padding: a["p"].map { Int(number($0)) } ?? 0,
                             countIncludePad: a["cip"] == nil))
    case _ where name.hasPrefix("AdaptiveAvgPool2d"): return one(AdaptiveAvgPool2d((i("h"), i("w"))))
    case _ where name.hasPrefix("BatchNorm2d"): return one(BatchNorm2d(i("n")))
    case _ where name.hasPrefix("BatchNorm1d"): return one(BatchNorm1d(i("n")))
    case "LayerNorm", "LayerNorm_affine": return one(LayerNorm((a["shape"] as! [Any]).map { Int(number($0)) }))
    case "GroupNorm": return one(GroupNorm(i("g"), i("c")))
    case "Embedding": return one(Embedding(i("n"), i("d"), paddingIndex: i("pad")))
    case "Flatten": return one(Flatten())
    case _ where name.hasPrefix("RNN") || name.hasPrefix("LSTM") || name.hasPrefix("GRU"):
        let m: Recurrent = name.hasPrefix("RNN") ? RNN(inputSize: i("in"), hiddenSize: i("h"), numLayers: i("layers"), batchFirst: i("bf") == 1)
            : name.hasPrefix("LSTM") ? LSTM(inputSize: i("in"), hiddenSize: i("h"), numLayers: i("layers"), batchFirst: i("bf") == 1)
            : GRU(inputSize: i("in"), hiddenSize: i("h"), numLayers: i("layers"), batchFirst: i("bf") == 1)
        if name.hasSuffix("_state") {
            return (m, { x in
                let r = m.forward(x[0], h0: x[1], c0: x.count > 2 ? x[2] : nil)
                return r.c.map { Tensor.cat([r.h, $0], dim: 0) } ?? r.h
            })
        }
        return one(m)
    case "MultiheadAttention":
        let m = MultiheadAttention(embedDim: i("e"), numHeads: i("h"))
        let kpm = fixtureTensor(extra["kpm"])
        return (m, { m.forward($0[0], $0[1], $0[2], keyPaddingMask: kpm).output })
    case "MultiheadAttention_mask3d":
        let m = MultiheadAttention(embedDim: i("e"), numHeads: i("h"))
        let kpm = fixtureTensor(extra["kpm"]), mask = fixtureTensor(extra["mask"])
        return (m, { m.forward($0[0], $0[1], $0[2], keyPaddingMask: kpm, attnMask: mask, needWeights: false).output })
    case "MultiheadAttention_weights":
        let m = MultiheadAttention(embedDim: i("e"), numHeads: i("h"), batchFirst: true)
        // The mask PyTorch's call gets: true above the diagonal = may not attend.
        let mask = Tensor.ones([3, 3]).triu(diagonal: 1).to(.bool)
        return (m, { m.forward($0[0], $0[1], $0[2], attnMask: mask, needWeights: true).weights! })
    case "SDPA_causal": return (Identity(), { scaledDotProductAttention($0[0], $0[1], $0[2], isCausal: true) })
    case "SDPA_mask":
        let mask = Tensor([[true, false, true], [true, true, false]])
        return (Identity(), { scaledDotProductAttention($0[0], $0[1], $0[2], attnMask: mask) })
    default: fatalError("no Ember twin for fixture layer \(name)")
    }
}

