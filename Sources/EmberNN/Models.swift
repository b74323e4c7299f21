import EmberCore

/// The Fashion-MNIST models of the training job, laid out exactly as their PyTorch twins
/// (`nn.Sequential` with the same children), so state dicts match name for name.
public enum FashionModels {
    /// MLP 784-256-128-10 with ReLU; input `[N, 28, 28]` or `[N, 1, 28, 28]`.
    public static func mlp() -> Sequential {
        Sequential(Flatten(), Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    }

    /// Conv(1→32, 3, pad 1)-ReLU-MaxPool2-Conv(32→64, 3, pad 1)-ReLU-MaxPool2-Linear(3136→128)-ReLU-Linear(128→10);
    /// input `[N, 1, 28, 28]`.
    public static func cnn() -> Sequential {
        Sequential(Conv2d(1, 32, kernelSize: 3, padding: 1), ReLU(), MaxPool2d(2),
                   Conv2d(32, 64, kernelSize: 3, padding: 1), ReLU(), MaxPool2d(2),
                   Flatten(), Linear(3136, 128), ReLU(), Linear(128, 10))
    }
}
