import Ember

/// Bilinear on (x, 2x): a one-input module for the checks.
final class BilinearBlock: Module {
    let layer = Bilinear(3, 3, 2)
    override func callAsFunction(_ x: Tensor) -> Tensor { layer(x, x * 2) }
}

/// Self-attention over `x`: a one-input module for the checks.
final class SelfAttention: Module {
    let attention = MultiheadAttention(embedDim: 8, numHeads: 2)
    override func callAsFunction(_ x: Tensor) -> Tensor { attention.forward(x, x, x).output }
}
