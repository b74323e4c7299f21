import ArgumentParser
import Ember

/// Fits a small two-layer network to y = sin(x) with plain gradient descent, printing the
/// loss and one gradient: tensors, broadcasting, matmul, autograd and in-place updates.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a tensor graph, run backward, print gradients and fit a tiny model.")

    @Option(help: "Training steps.") var steps = 300
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        Ember.manualSeed(seed)
        // A graph and its gradient.
        let x = Tensor([[1, 2], [3, 4]] as [[Float]], requiresGrad: true)
        let w = Tensor([0.5, -1.0, 2.0, 0.25], shape: [2, 2], requiresGrad: true)
        let y = (x.matmul(w).relu() * x).sum()
        try y.backward()
        print("y = (relu(x·w) * x).sum() =", y.item())
        print("dy/dx =", x.grad!)
        print("dy/dw =", w.grad!)

        // A tiny MLP fitted to sin(x) on [-π, π].
        let xs = Tensor.linspace(-3.14159, 3.14159, steps: 128).unsqueeze(1)
        let ys = xs.sin()
        let w1 = (Tensor.randn([1, 32]) * 0.5).requiringGrad(), b1 = Tensor.zeros([32], requiresGrad: true)
        let w2 = (Tensor.randn([32, 1]) * 0.2).requiringGrad(), b2 = Tensor.zeros([1], requiresGrad: true)
        let params = [w1, b1, w2, b2]
        let lr = 0.05
        for step in 0...steps {
            let pred = (xs.matmul(w1) + b1).tanh().matmul(w2) + b2
            let loss = ((pred - ys) * (pred - ys)).mean()
            for p in params { p.grad = nil }
            try loss.backward()
            withNoGrad { for p in params { p.sub_(p.grad!, alpha: lr) } }
            if step % 100 == 0 { print("step \(step): mse \(loss.item())") }
        }
    }
}
