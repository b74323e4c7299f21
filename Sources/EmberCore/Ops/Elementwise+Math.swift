import Foundation

// More elementwise math with PyTorch's names and derivatives: trigonometric and hyperbolic
// functions, logarithms and exponentials in other bases, rounding, predicates on float
// classes, and the binary functions (atan2, hypot, fmod, remainder, floor division,
// copysign, xlogy, logaddexp, fmax/fmin, lerp, ...). Kernels where a primitive exists
// (`UnaryOp`, `BinaryOp`), compositions of primitives elsewhere, so every device has them.

// MARK: - One tensor

extension Tensor {
    public func tan() -> Tensor {
        unary(.tan, "TanBackward", saveOutput: true) { c, x in
            let y = c.createGraph ? x.tan() : c.output!
            return c.grad * (y * y + 1)
        }
    }
    public func asin() -> Tensor { unary(.asin, "AsinBackward") { c, x in c.grad * (1 - x * x).rsqrt() } }
    public func acos() -> Tensor { unary(.acos, "AcosBackward") { c, x in -(c.grad * (1 - x * x).rsqrt()) } }
    public func atan() -> Tensor { unary(.atan, "AtanBackward") { c, x in c.grad / (x * x + 1) } }
    public func sinh() -> Tensor { unary(.sinh, "SinhBackward") { c, x in c.grad * x.cosh() } }
    public func cosh() -> Tensor { unary(.cosh, "CoshBackward") { c, x in c.grad * x.sinh() } }
    public func asinh() -> Tensor { unary(.asinh, "AsinhBackward") { c, x in c.grad * (x * x + 1).rsqrt() } }
    public func acosh() -> Tensor { unary(.acosh, "AcoshBackward") { c, x in c.grad * ((x - 1) * (x + 1)).rsqrt() } }
    public func atanh() -> Tensor { unary(.atanh, "AtanhBackward") { c, x in c.grad / (1 - x * x) } }
    public func erfc() -> Tensor {
        unary(.erfc, "ErfcBackward") { c, x in c.grad * (x * x * -1).exp() * -1.1283791670955126 }
    }
    public func exp2() -> Tensor {
        unary(.exp2, "Exp2Backward", saveOutput: true) { c, x in
            c.grad * (c.createGraph ? x.exp2() : c.output!) * 0.6931471805599453
        }
    }
    public func log2() -> Tensor { unary(.log2, "Log2Backward") { c, x in c.grad / (x * 0.6931471805599453) } }
    public func log10() -> Tensor { unary(.log10, "Log10Backward") { c, x in c.grad / (x * 2.302585092994046) } }
    /// Rounds toward zero.
    public func trunc() -> Tensor { unary(.trunc, "TruncBackward") { c, _ in Tensor.zerosLike(c.grad) } }
    /// `x − trunc(x)`, with x's sign.
    public func frac() -> Tensor {
        let y = self - withNoGrad { trunc() }
        return y
    }
    /// Rounds half to even at `decimals` decimal places (negative: tens, hundreds, ...), as
    /// PyTorch does: `round(x · 10^d) / 10^d`.
    public func round(decimals: Int) -> Tensor {
        if decimals == 0 { return round() }
        let scale = Foundation.pow(10.0, Double(Swift.abs(decimals)))
        let r = withNoGrad { decimals > 0 ? (self * scale).round() / scale : (self / scale).round() * scale }
        return r.derivedFrom(self, "RoundBackward") { g, _ in Tensor.zerosLike(g) }
    }
    /// The normalized sinc, `sin(πx) / (πx)`, 1 at 0.
    public func sinc() -> Tensor {
        let x = dtype.isFloatingPoint ? self : to(dtype.floatResult)
        let zero = x.eq(0)
        let safe = Tensor.where(zero, Tensor.onesLike(x), x) * Double.pi
        return Tensor.where(zero, Tensor.onesLike(x), safe.sin() / safe)
    }
    public func deg2rad() -> Tensor { (dtype.isFloatingPoint ? self : to(dtype.floatResult)) * (Double.pi / 180) }
    public func rad2deg() -> Tensor { (dtype.isFloatingPoint ? self : to(dtype.floatResult)) * (180 / Double.pi) }
    /// `log(x / (1 − x))`, with x clamped to `[eps, 1 − eps]` when `eps` is given.
    public func logit(eps: Double? = nil) -> Tensor {
        let x0 = dtype.isFloatingPoint ? self : to(dtype.floatResult)
        guard let eps else { return x0.log() - (-x0).log1p() }
        // PyTorch clamps as `x < eps ? eps : (x > 1 − eps ? 1 − eps : x)` (eps > 0.5 gives eps).
        let lo = Tensor.fullLike(x0, eps), hi = Tensor.fullLike(x0, 1 - eps)
        let y = withNoGrad { () -> Tensor in
            let x = Tensor.where(x0.lt(eps), lo, Tensor.where(x0.gt(1 - eps), hi, x0))
            return x.log() - (-x).log1p()
        }
        // PyTorch's gradient: grad / (x(1 − x)) inside [eps, 1 − eps] (bounds included), 0 outside.
        return y.derivedFrom(x0, "LogitBackward") { g, x in
            Tensor.where(x.lt(eps).logicalOr(x.gt(1 - eps)), Tensor.zerosLike(g), g / (x * (1 - x)))
        }
    }
    /// The identity (`torch.positive`).
    public func positive() -> Tensor {
        checked { try require(dtype != .bool, "positive: not supported for bool tensors") }
        return self
    }
    /// `sign` for real tensors (`torch.sgn`).
    public func sgn() -> Tensor { sign() }
    public func isinf() -> Tensor { dtype.isFloatingPoint ? abs().eq(.infinity) : Tensor.zerosLike(self, dtype: .bool) }
    public func isposinf() -> Tensor { dtype.isFloatingPoint ? eq(.infinity) : Tensor.zerosLike(self, dtype: .bool) }
    public func isneginf() -> Tensor { dtype.isFloatingPoint ? eq(-.infinity) : Tensor.zerosLike(self, dtype: .bool) }
    /// Neither infinite nor NaN.
    public func isfinite() -> Tensor { dtype.isFloatingPoint ? (self - self).eq(0) : Tensor.onesLike(self, dtype: .bool) }
    /// True everywhere for real tensors.
    public func isreal() -> Tensor { Tensor.onesLike(self, dtype: .bool) }
    /// True where the sign bit is set (`-0.0` included).
    public func signbit() -> Tensor {
        if !dtype.isFloatingPoint { return lt(0) }
        return withNoGrad { Tensor.copysign(Tensor.onesLike(self), self).lt(0) }
    }
    /// NaN to `nan`, +∞ to `posinf`, −∞ to `neginf` (default: the dtype's largest and
    /// lowest finite values).
    public func nanToNum(nan: Double = 0, posinf: Double? = nil, neginf: Double? = nil) -> Tensor {
        guard dtype.isFloatingPoint else { return self }
        let big: Double = switch dtype {
        case .float32: Double(Float.greatestFiniteMagnitude)
        case .float16: 65504
        case .bfloat16: 3.3895313892515355e38
        default: Double.greatestFiniteMagnitude
        }
        let fill = Tensor.where(isnan(), Tensor.full([], nan, dtype: dtype, device: device),
                                Tensor.where(gt(0), Tensor.full([], posinf ?? big, dtype: dtype, device: device),
                                             Tensor.full([], neginf ?? -big, dtype: dtype, device: device)))
        return Tensor.where(isfinite(), self, fill)
    }

    /// A result computed without autograd, recorded as a function of `input` with
    /// `derivative(grad, input)`.
    func derivedFrom(_ input: Tensor, _ name: String, _ derivative: @escaping (Tensor, Tensor) -> Tensor) -> Tensor {
        if dtype.isFloatingPoint && anyNeedsGrad(input) {
            let x = input
            record(self, name, [x], save: [x]) { c in [derivative(c.grad, x)] }
        }
        return self
    }
}

// MARK: - Two tensors

extension Tensor {
    /// The angle of the point (b, a): `atan2(a, b)`.
    public static func atan2(_ a: Tensor, _ b: Tensor) -> Tensor {
        binary(.atan2, a, b, "Atan2Backward", save: { a, b in [a, b] }) { c, a, b in
            let r = c.grad / (a * a + b * b)
            return [c.needsGrad(0) ? r * b : nil, c.needsGrad(1) ? -(r * a) : nil]
        }
    }
    /// `√(a² + b²)` without overflow.
    public static func hypot(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = binaryKernel(.hypot, a, b, "hypot")
        if out.dtype.isFloatingPoint && anyNeedsGrad(a, b) {
            record(out, "HypotBackward", [a, b], save: [a, b], saveOutput: true) { c in
                let h = c.createGraph ? Tensor.hypot(a, b) : c.output!
                return [c.needsGrad(0) ? c.grad * a / h : nil, c.needsGrad(1) ? c.grad * b / h : nil]
            }
        }
        return out
    }
    /// |a| with b's sign.
    public static func copysign(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = binaryKernel(.copysign, a, b, "copysign")
        if out.dtype.isFloatingPoint && anyNeedsGrad(a, b) {
            record(out, "CopysignBackward", [a, b], save: [a], saveOutput: true) { c in
                // PyTorch: grad · result / a where a ≠ 0, else 0; nothing flows to b.
                let y = c.createGraph ? Tensor.copysign(a, b) : c.output!
                let ga = Tensor.where(a.eq(0), Tensor.zerosLike(c.grad), c.grad * y / Tensor.where(a.eq(0), Tensor.onesLike(a), a))
                return [c.needsGrad(0) ? ga : nil, c.needsGrad(1) ? Tensor.zerosLike(c.grad) : nil]
            }
        }
        return out
    }
    public func copysign(_ other: Tensor) -> Tensor { Tensor.copysign(self, other) }
    public func copysign(_ v: Double) -> Tensor { Tensor.copysign(self, Tensor.wrapped(v, like: self)) }

    /// The remainder of `self / other` with the dividend's sign (C's `fmod`).
    public func fmod(_ other: Tensor) -> Tensor {
        Tensor.binary(.fmod, self, other, "FmodBackward", save: { a, b in [a, b] }) { c, a, b in
            [c.grad, c.needsGrad(1) ? -(c.grad * withNoGrad { (a / b).trunc() }) : nil]
        }
    }
    public func fmod(_ v: Double) -> Tensor { fmod(Tensor.wrapped(v, like: self)) }
    /// The remainder of `self / other` with the divisor's sign (Python's `%`).
    public func remainder(_ other: Tensor) -> Tensor {
        Tensor.binary(.remainder, self, other, "RemainderBackward", save: { a, b in [a, b] }) { c, a, b in
            [c.grad, c.needsGrad(1) ? -(c.grad * withNoGrad { a.floorDivide(b) }) : nil]
        }
    }
    public func remainder(_ v: Double) -> Tensor { remainder(Tensor.wrapped(v, like: self)) }
    /// `⌊self / other⌋` (Python's `//`); no gradient.
    public func floorDivide(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.floorDivide, self, other, "floor_divide") }
    public func floorDivide(_ v: Double) -> Tensor { floorDivide(Tensor.wrapped(v, like: self)) }

    /// How `div` rounds its quotient.
    public enum RoundingMode: String, Sendable {
        /// Toward zero (C's integer division).
        case trunc
        /// Toward −∞ (Python's `//`).
        case floor
    }
    /// `self / other`, rounded as `roundingMode` says (nil: true division). Integer tensors
    /// stay integral when rounded.
    public func div(_ other: Tensor, roundingMode: RoundingMode? = nil) -> Tensor {
        guard let mode = roundingMode else { return self / other }
        let out: Tensor
        switch mode {
        case .floor: out = floorDivide(other)
        case .trunc:
            let common = ResultType.of2(self, other)
            if common.isFloatingPoint { out = withNoGrad { (self / other).trunc() } } else {
                // Integer division rounds toward zero already.
                out = Tensor.binaryKernel(.div, self.to(common), other.to(common), "div").to(common)
            }
        }
        if out.dtype.isFloatingPoint && anyNeedsGrad(self, other) {
            record(out, "DivBackward", [self, other]) { c in [Tensor.zerosLike(c.grad), Tensor.zerosLike(c.grad)] }
        }
        return out
    }
    public func div(_ v: Double, roundingMode: RoundingMode? = nil) -> Tensor { div(Tensor.wrapped(v, like: self), roundingMode: roundingMode) }
    /// True division (`torch.true_divide`).
    public func trueDivide(_ other: Tensor) -> Tensor { self / other }

    /// `self + alpha · other`.
    public func add(_ other: Tensor, alpha: Double = 1) -> Tensor { alpha == 1 ? self + other : self + other * alpha }
    /// `self − alpha · other`.
    public func sub(_ other: Tensor, alpha: Double = 1) -> Tensor { alpha == 1 ? self - other : self - other * alpha }
    /// `other − alpha · self` (`torch.rsub`).
    public static func rsub(_ a: Tensor, _ b: Tensor, alpha: Double = 1) -> Tensor { alpha == 1 ? b - a : b - a * alpha }

    /// `self ** other` in float64 (`torch.float_power`).
    public func floatPower(_ other: Tensor) -> Tensor { to(.float64).pow(other.to(.float64)) }
    public func floatPower(_ v: Double) -> Tensor { to(.float64).pow(v) }

    /// `a · log(b)`, 0 where `a == 0` (unless b is NaN).
    public static func xlogy(_ a: Tensor, _ b: Tensor) -> Tensor { xlog(a, b, log1p: false) }
    /// `a · log1p(b)`, 0 where `a == 0` (unless b is NaN).
    public static func xlog1py(_ a: Tensor, _ b: Tensor) -> Tensor { xlog(a, b, log1p: true) }
    private static func xlog(_ a: Tensor, _ b: Tensor, log1p: Bool) -> Tensor {
        let dtype = ResultType.of2(a, b).floatResult
        let a = a.to(dtype), b = b.to(dtype)
        let zero = a.eq(0).logicalAnd(b.isnan().logicalNot())
        let safe = Tensor.where(zero, Tensor.full([], log1p ? 0 : 1, dtype: dtype, device: b.device), b)
        return Tensor.where(zero, Tensor.zerosLike(a), a * (log1p ? safe.log1p() : safe.log()))
    }

    /// `log(exp(a) + exp(b))` without overflow.
    public static func logaddexp(_ a: Tensor, _ b: Tensor) -> Tensor {
        let m = maximum(a, b)
        let same = a.eq(b).logicalAnd(a.isinf())
        let d = Tensor.where(same, Tensor.zerosLike(m), a - b)
        return Tensor.where(same, m, m + (-d.abs()).exp().log1p())
    }
    /// `log2(2^a + 2^b)` without overflow.
    public static func logaddexp2(_ a: Tensor, _ b: Tensor) -> Tensor {
        let ln2 = 0.6931471805599453
        return logaddexp(a * ln2, b * ln2) / ln2
    }

    /// The elementwise maximum ignoring NaN (NaN only where both are NaN).
    public static func fmax(_ a: Tensor, _ b: Tensor) -> Tensor { fminmax(a, b, max: true) }
    /// The elementwise minimum ignoring NaN (NaN only where both are NaN).
    public static func fmin(_ a: Tensor, _ b: Tensor) -> Tensor { fminmax(a, b, max: false) }
    private static func fminmax(_ a: Tensor, _ b: Tensor, max: Bool) -> Tensor {
        let out = withNoGrad { () -> Tensor in
            let m = max ? maximum(a, b) : minimum(a, b)
            return Tensor.where(a.isnan(), b.to(m.dtype), Tensor.where(b.isnan(), a.to(m.dtype), m))
        }
        if out.dtype.isFloatingPoint && anyNeedsGrad(a, b) {
            record(out, max ? "FmaxBackward" : "FminBackward", [a, b], save: [a, b]) { c in
                // PyTorch: a takes the gradient where it wins or ties, or where b is NaN.
                let aWins = (max ? a.ge(b) : a.le(b)).logicalOr(b.isnan())
                let z = Tensor.zerosLike(c.grad)
                return [Tensor.where(aWins, c.grad, z), Tensor.where(aWins, z, c.grad)]
            }
        }
        return out
    }

    /// 0 where `self < 0`, `values` where `self == 0`, 1 where `self > 0`; no gradient.
    public func heaviside(_ values: Tensor) -> Tensor {
        let dtype = ResultType.of2(self, values)
        checked {
            try require(values.dtype == self.dtype,
                        "heaviside is not yet implemented for tensors with different dtypes (\(self.dtype) and \(values.dtype))")
        }
        return withNoGrad {
            Tensor.where(eq(0), values.to(dtype), gt(0).to(dtype))
        }
    }

    /// `self + weight · (end − self)`.
    public func lerp(_ end: Tensor, weight: Tensor) -> Tensor { self + weight * (end - self) }
    public func lerp(_ end: Tensor, weight: Double) -> Tensor { self + (end - self) * weight }
    /// `self + value · t1 · t2`.
    public func addcmul(_ t1: Tensor, _ t2: Tensor, value: Double = 1) -> Tensor { value == 1 ? self + t1 * t2 : self + t1 * t2 * value }
    /// `self + value · t1 / t2`.
    public func addcdiv(_ t1: Tensor, _ t2: Tensor, value: Double = 1) -> Tensor { value == 1 ? self + t1 / t2 : self + t1 / t2 * value }

    /// `min(max(self, min), max)` with tensor bounds (either may be nil), broadcast, with
    /// PyTorch's gradients: a tie of the input with one bound splits the gradient between
    /// them; with both bounds equal the input, the input takes it; a lower bound above the
    /// upper one gives everything to the upper one.
    public func clamp(min: Tensor?, max: Tensor?) -> Tensor {
        checked { try require(min != nil || max != nil, "clamp: at least one of 'min' or 'max' must not be nil") }
        guard let lo = min, let hi = max else {
            return min.map { Tensor.maximum(self, $0) } ?? Tensor.minimum(self, max!)
        }
        let x = self
        let out = withNoGrad { Tensor.minimum(Tensor.maximum(x, lo), hi) }
        if out.dtype.isFloatingPoint && anyNeedsGrad(x, lo, hi) {
            record(out, "ClampBackward", [x, lo, hi], save: [x, lo, hi]) { c in
                let g = c.grad, z = Tensor.zerosLike(c.grad)
                let ordered = lo.lt(hi), valid = lo.le(hi)
                let atLo = x.eq(lo).logicalAnd(ordered), atHi = x.eq(hi).logicalAnd(ordered)
                let inside = x.ge(lo).logicalAnd(x.le(hi))
                let half = g * 0.5
                let gx = Tensor.where(inside, Tensor.where(atLo.logicalOr(atHi), half, g), z)
                let gl = Tensor.where(x.lt(lo).logicalAnd(valid), g, Tensor.where(atLo, half, z))
                let gh = Tensor.where(x.gt(hi).logicalAnd(valid).logicalOr(valid.logicalNot()), g, Tensor.where(atHi, half, z))
                return [c.needsGrad(0) ? gx : nil, c.needsGrad(1) ? gl : nil, c.needsGrad(2) ? gh : nil]
            }
        }
        return out
    }
}
