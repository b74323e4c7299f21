// The activation functions of `torch.nn.functional` that have no kernel of their own:
// compositions of elementwise primitives whose gradients are PyTorch's (the strict
// inequalities of hardtanh, the kinks of the shrink functions). Every branch that is not
// taken is computed from a safe value, so no NaN or ∞ reaches a gradient through `where`.

extension Tensor {
    /// `clamp(x, minVal, maxVal)`; the gradient passes strictly inside the bounds.
    public func hardtanh(minVal: Double = -1, maxVal: Double = 1) -> Tensor {
        checked { try require(maxVal >= minVal, "hardtanh: min_val (\(minVal)) cannot be greater than max_val (\(maxVal))") }
        return clamp(min: minVal, max: maxVal)
    }
    /// `min(max(x, 0), 6)`.
    public func relu6() -> Tensor { hardtanh(minVal: 0, maxVal: 6) }
    /// `x` where `x > 0`, `alpha · (exp(x) − 1)` elsewhere.
    public func elu(alpha: Double = 1) -> Tensor { elu(alpha: alpha, scale: 1, inputScale: 1) }
    /// ELU scaled by SELU's constants.
    public func selu() -> Tensor { elu(alpha: 1.6732632423543772848170429916717, scale: 1.0507009873554804934193349852946, inputScale: 1) }
    /// `max(0, x) + min(0, alpha · (exp(x / alpha) − 1))`.
    public func celu(alpha: Double = 1) -> Tensor {
        checked { try require(alpha != 0, "celu: ZeroDivisionError: alpha cannot be 0 for CELU") }
        return elu(alpha: alpha, scale: 1, inputScale: 1 / alpha)
    }
    private func elu(alpha: Double, scale: Double, inputScale: Double) -> Tensor {
        let negative = ((clamp(max: 0) * inputScale).expm1() * alpha)
        let y = Tensor.where(gt(0), self, negative)
        return scale == 1 ? y : y * scale
    }
    /// `x · tanh(softplus(x))`.
    public func mish() -> Tensor { self * softplus().tanh() }
    /// `x · relu6(x + 3) / 6`.
    public func hardswish() -> Tensor {
        let y = withNoGrad { self * (self + 3).clamp(min: 0, max: 6) / 6 }
        // PyTorch: 0 below −3, x/3 + 1/2 in [−3, 3], 1 above.
        return y.derivedFrom(self, "HardswishBackward") { g, x in
            Tensor.where(x.lt(-3), Tensor.zerosLike(g), Tensor.where(x.le(3), g * (x / 3 + 0.5), g))
        }
    }
    /// `relu6(x + 3) / 6`.
    public func hardsigmoid() -> Tensor {
        let y = withNoGrad { (self + 3).clamp(min: 0, max: 6) / 6 }
        return y.derivedFrom(self, "HardsigmoidBackward") { g, x in
            // PyTorch's kernel multiplies by 1/6 rounded to float32, in every dtype.
            Tensor.where(x.gt(-3).logicalAnd(x.lt(3)), g * Double(Float(1) / Float(6)), Tensor.zerosLike(g))
        }
    }
    /// `log(sigmoid(x))` without overflow: `−softplus(−x)`.
    public func logsigmoid() -> Tensor { -(-self).softplus() }
    /// `x / (1 + |x|)`.
    public func softsign() -> Tensor { self / (abs() + 1) }
    /// `x − tanh(x)`.
    public func tanhshrink() -> Tensor { self - tanh() }
    /// `x − λ` above λ, `x + λ` below −λ, 0 between.
    public func softshrink(lambda: Double = 0.5) -> Tensor {
        checked { try require(lambda >= 0, "softshrink: lambda must be greater or equal to 0, but found to be \(lambda).") }
        return Tensor.where(gt(lambda), self - lambda, Tensor.where(lt(-lambda), self + lambda, Tensor.zerosLike(self)))
    }
    /// `x` where `|x| > λ`, 0 elsewhere.
    public func hardshrink(lambda: Double = 0.5) -> Tensor {
        Tensor.where(gt(lambda).logicalOr(lt(-lambda)), self, Tensor.zerosLike(self))
    }
    /// `x` where `x > threshold`, `value` elsewhere.
    public func threshold(_ threshold: Double, _ value: Double) -> Tensor {
        Tensor.where(gt(threshold), self, Tensor.full([], value, dtype: dtype, device: device))
    }
    /// The gated linear unit: the first half of `dim` times the sigmoid of the second.
    public func glu(dim: Int = -1) -> Tensor {
        let d = checked { try normalizeDim(dim, rank, op: "glu") }
        checked {
            try require(rank > 0 && shape[d] % 2 == 0,
                        "glu: Halving dimension must be even, but dimension \(d) is size \(rank > 0 ? shape[d] : 0) (shape \(fmt(shape)))")
        }
        let h = shape[d] / 2
        return narrow(d, start: 0, length: h) * narrow(d, start: h, length: h).sigmoid()
    }
    /// `softmax(−x)`.
    public func softmin(dim: Int) -> Tensor { (-self).softmax(dim: dim) }
}

/// Special functions (`torch.special`).
public enum Special {
    /// `−x · log(x)`: 0 at 0, −∞ below 0.
    public static func entr(_ x: Tensor) -> Tensor {
        let y = withNoGrad { () -> Tensor in
            let safe = Tensor.where(x.gt(0), x, Tensor.onesLike(x))
            let inside = -(safe * safe.log())
            let edge = Tensor.where(x.eq(0), Tensor.zerosLike(x), Tensor.fullLike(x, -.infinity))
            return Tensor.where(x.isnan(), x, Tensor.where(x.gt(0), inside, edge))
        }
        return y.derivedFrom(x, "SpecialEntrBackward") { g, x in -(g * (x.log() + 1)) }
    }
    /// The standard normal CDF, `(1 + erf(x/√2)) / 2`.
    public static func ndtr(_ x: Tensor) -> Tensor {
        let x = x.dtype.isFloatingPoint ? x : x.to(x.dtype.floatResult)
        return (x * -0.7071067811865476).erfc() * 0.5
    }
    /// `log(ndtr(x))`, accurate in both tails.
    public static func logNdtr(_ x: Tensor) -> Tensor {
        let x = x.dtype.isFloatingPoint ? x : x.to(x.dtype.floatResult)
        let lower = Tensor.where(x.lt(-1), x, Tensor.fullLike(x, -1))
        let upper = Tensor.where(x.lt(-1), Tensor.fullLike(x, -1), x)
        return Tensor.where(x.lt(-1), ((lower * -0.7071067811865476).erfc() * 0.5).log(),
                            ((upper * 0.7071067811865476).erfc() * -0.5).log1p())
    }
    public static func expit(_ x: Tensor) -> Tensor { x.sigmoid() }
    public static func xlogy(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.xlogy(a, b) }
    public static func xlog1py(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.xlog1py(a, b) }
}

extension Tensor {
    /// `x` where `x > 0`, `weight · x` elsewhere; `weight` has one value or one per channel
    /// (dimension 1).
    public func prelu(_ weight: Tensor) -> Tensor {
        var w = weight
        if weight.count != 1 {
            checked {
                try require(rank >= 1 && weight.count == shape[rank >= 2 ? 1 : 0],
                            "prelu: Mismatch of parameter numbers and input channel size. Found parameter numbers = \(weight.count) and channel size = \(rank >= 2 ? shape[1] : (rank == 1 ? shape[0] : 1)).")
            }
            var s = [Int](repeating: 1, count: rank)
            s[rank >= 2 ? 1 : 0] = weight.count
            w = weight.reshape(s)
        } else {
            w = weight.reshape([])
        }
        return Tensor.where(gt(0), self, self * w)
    }

    /// `x / √(mean(x²) + eps) · weight` over the last `normalizedShape.count` dimensions
    /// (`eps` nil: the dtype's machine epsilon, as PyTorch).
    public func rmsNorm(_ normalizedShape: [Int], weight: Tensor? = nil, eps: Double? = nil) -> Tensor {
        let k = normalizedShape.count
        checked {
            try require(k <= rank && Array(shape.suffix(k)) == normalizedShape,
                        "rms_norm: Given normalized_shape=\(fmt(normalizedShape)), expected input with shape [*, \(normalizedShape.map(String.init).joined(separator: ", "))], but got input of size \(fmt(shape))")
        }
        let e = eps ?? (dtype == .float64 ? Double.ulpOfOne : (dtype == .float16 ? 0.0009765625 : (dtype == .bfloat16 ? 0.0078125 : Double(Float.ulpOfOne))))
        let dims = Array((rank - k)..<rank)
        let y = self * ((self * self).mean(dims: dims, keepdim: true) + e).rsqrt()
        return weight.map { y * $0 } ?? y
    }

    /// Local response normalization across channels (dimension 1):
    /// `x / (k + alpha · mean of x² over `size` neighbouring channels)^beta`.
    public func localResponseNorm(size: Int, alpha: Double = 1e-4, beta: Double = 0.75, k: Double = 1) -> Tensor {
        checked { try require(rank >= 3, "local_response_norm: Expected 3D or higher dimensionality input (got \(rank) dimensions)") }
        let c = shape[1]
        let sq = self * self
        var before = shape, after = shape
        before[1] = size / 2
        after[1] = (size - 1) / 2
        let padded = Tensor.cat([Tensor.zeros(before, dtype: dtype, device: device), sq, Tensor.zeros(after, dtype: dtype, device: device)], dim: 1)
        var window = padded.narrow(1, start: 0, length: c)
        for o in 1..<Swift.max(size, 1) { window = window + padded.narrow(1, start: o, length: c) }
        return self / (window / Double(size) * alpha + k).pow(beta)
    }
}
