import EmberCore
import Foundation

/// Weight initialisation, identical in distribution to `torch.nn.init`. Every function
/// fills the tensor in place without recording autograd and returns it.
public enum Init {
    /// `(fan_in, fan_out)` as PyTorch computes them: dim 1 and dim 0 times the receptive field.
    public static func fans(_ t: Tensor) -> (fanIn: Int, fanOut: Int) {
        Ember.check(t.rank >= 2, "fans: fan in and fan out can not be computed for tensor with fewer than 2 dimensions (shape \(t.shape))")
        let receptive = t.shape.dropFirst(2).reduce(1, *)
        return (t.shape[1] * receptive, t.shape[0] * receptive)
    }

    /// The recommended gain for a nonlinearity (`calculate_gain`).
    public static func gain(_ nonlinearity: String, param: Double? = nil) -> Double {
        switch nonlinearity {
        case "linear", "conv1d", "conv2d", "conv3d", "sigmoid": return 1
        case "tanh": return 5.0 / 3
        case "relu": return 2.0.squareRoot()
        case "leaky_relu":
            let slope = param ?? 0.01
            return (2.0 / (1 + slope * slope)).squareRoot()
        case "selu": return 3.0 / 4
        default: Ember.misuse("gain: unsupported nonlinearity \(nonlinearity)")
        }
    }

    @discardableResult
    public static func uniform(_ t: Tensor, _ low: Double = 0, _ high: Double = 1, generator: Generator? = nil) -> Tensor {
        withNoGrad { t.copy_(Tensor.uniform(t.shape, low: low, high: high, dtype: t.dtype, generator: generator)) }
    }

    @discardableResult
    public static func normal(_ t: Tensor, mean: Double = 0, std: Double = 1, generator: Generator? = nil) -> Tensor {
        withNoGrad { t.copy_(Tensor.randn(t.shape, mean: mean, std: std, dtype: t.dtype, generator: generator)) }
    }

    @discardableResult
    public static func constant(_ t: Tensor, _ value: Double) -> Tensor { withNoGrad { t.fill_(value) } }
    @discardableResult
    public static func zeros(_ t: Tensor) -> Tensor { constant(t, 0) }
    @discardableResult
    public static func ones(_ t: Tensor) -> Tensor { constant(t, 1) }

    @discardableResult
    public static func xavierUniform(_ t: Tensor, gain: Double = 1, generator: Generator? = nil) -> Tensor {
        let (fi, fo) = fans(t)
        let a = gain * (6.0 / Double(fi + fo)).squareRoot()
        return uniform(t, -a, a, generator: generator)
    }

    @discardableResult
    public static func xavierNormal(_ t: Tensor, gain: Double = 1, generator: Generator? = nil) -> Tensor {
        let (fi, fo) = fans(t)
        return normal(t, std: gain * (2.0 / Double(fi + fo)).squareRoot(), generator: generator)
    }

    /// Kaiming (He) uniform; `a` is the negative slope of the leaky ReLU that follows.
    @discardableResult
    public static func kaimingUniform(_ t: Tensor, a: Double = 0, fanOutMode: Bool = false,
                                      nonlinearity: String = "leaky_relu", generator: Generator? = nil) -> Tensor {
        let (fi, fo) = fans(t)
        let bound = gain(nonlinearity, param: a) * (3.0 / Double(fanOutMode ? fo : fi)).squareRoot()
        return uniform(t, -bound, bound, generator: generator)
    }

    @discardableResult
    public static func kaimingNormal(_ t: Tensor, a: Double = 0, fanOutMode: Bool = false,
                                     nonlinearity: String = "leaky_relu", generator: Generator? = nil) -> Tensor {
        let (fi, fo) = fans(t)
        return normal(t, std: gain(nonlinearity, param: a) / Double(fanOutMode ? fo : fi).squareRoot(), generator: generator)
    }

    /// A (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix, signs fixed
    /// by R's diagonal, as `torch.nn.init.orthogonal_`.
    @discardableResult
    public static func orthogonal(_ t: Tensor, gain: Double = 1, generator: Generator? = nil) -> Tensor {
        let rows = t.shape[0], cols = t.count / max(rows, 1)
        let transpose = rows < cols
        let (m, n) = transpose ? (cols, rows) : (rows, cols)  // m >= n
        var a = Tensor.randn([m, n], dtype: .float64, generator: generator).toArray(Double.self)
        // Modified Gram–Schmidt QR: Q is m×n with orthonormal columns, d = sign(diag R).
        var q = [Double](repeating: 0, count: m * n)
        for j in 0..<n {
            for k in 0..<j {
                var dot = 0.0
                for i in 0..<m { dot += q[i * n + k] * a[i * n + j] }
                for i in 0..<m { a[i * n + j] -= dot * q[i * n + k] }
            }
            var norm = 0.0
            for i in 0..<m { norm += a[i * n + j] * a[i * n + j] }
            norm = norm.squareRoot()
            for i in 0..<m { q[i * n + j] = a[i * n + j] / norm }
        }
        var result = Tensor(q, shape: [m, n], dtype: .float64)
        if transpose { result = result.t() }
        return withNoGrad { t.copy_((result * gain).reshape(t.shape)) }
    }
}
