import RealModule

// The window functions of `torch.signal.windows`, computed as PyTorch computes them (a
// `linspace` of positions, then the window's formula), so float32 values agree.

/// `torch.signal.windows`: M points, symmetric (`sym`, for filter design) or periodic (for
/// spectral analysis: the first M points of an M + 1-point symmetric window).
public enum SignalWindows {
    static func positions(_ M: Int, start: Double, step: Double, dtype: DType, device: Device) -> Tensor {
        Tensor.linspace(start, start + Double(M - 1) * step, steps: M, dtype: dtype, device: device)
    }
    static func check(_ name: String, _ M: Int, _ dtype: DType) {
        Ember.check(M >= 0, "\(name) requires non-negative window length, got M=\(M)")
        Ember.check(dtype.isFloatingPoint, "\(name) expects float32 or float64 dtypes, got: \(dtype)")
    }
    /// Empty for M = 0, a single 1 for M = 1 (every window).
    static func trivial(_ M: Int, _ dtype: DType, _ device: Device) -> Tensor? {
        M == 0 ? Tensor.empty([0], dtype: dtype, device: device) : (M == 1 ? Tensor.ones([1], dtype: dtype, device: device) : nil)
    }

    /// `Σᵢ (−1)ⁱ aᵢ cos(i k)` (`general_cosine`).
    public static func generalCosine(_ M: Int, a: [Double], sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        check("general_cosine", M, dtype)
        if let t = trivial(M, dtype, device) { return t }
        let constant = 2 * Double.pi / Double(sym ? M - 1 : M)
        let k = positions(M, start: 0, step: constant, dtype: dtype, device: device)
        var out: Tensor? = nil
        for (i, w) in a.enumerated() {
            let term = (k * Double(i)).cos() * (i % 2 == 0 ? w : -w)
            out = out.map { $0 + term } ?? term
        }
        return out ?? Tensor.zeros([M], dtype: dtype, device: device)
    }
    /// `α − (1 − α) cos(k)` (`general_hamming`).
    public static func generalHamming(_ M: Int, alpha: Double = 0.54, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        generalCosine(M, a: [alpha, 1 - alpha], sym: sym, dtype: dtype, device: device)
    }
    public static func hamming(_ M: Int, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        generalHamming(M, alpha: 0.54, sym: sym, dtype: dtype, device: device)
    }
    public static func hann(_ M: Int, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        generalHamming(M, alpha: 0.5, sym: sym, dtype: dtype, device: device)
    }
    public static func blackman(_ M: Int, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        generalCosine(M, a: [0.42, 0.5, 0.08], sym: sym, dtype: dtype, device: device)
    }
    public static func nuttall(_ M: Int, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        generalCosine(M, a: [0.3635819, 0.4891775, 0.1365995, 0.0106411], sym: sym, dtype: dtype, device: device)
    }
    /// `1 − |k|`, k from −1 (`bartlett`).
    public static func bartlett(_ M: Int, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        check("bartlett", M, dtype)
        if let t = trivial(M, dtype, device) { return t }
        return 1 - positions(M, start: -1, step: 2 / Double(sym ? M - 1 : M), dtype: dtype, device: device).abs()
    }
    /// `sin(k)`, k from π/(2M') (`cosine`).
    public static func cosine(_ M: Int, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        check("cosine", M, dtype)
        if let t = trivial(M, dtype, device) { return t }
        let constant = Double.pi / Double(sym ? M : M + 1)
        return positions(M, start: 0.5 * constant, step: constant, dtype: dtype, device: device).sin()
    }
    /// `exp(−|k − center| / τ)` (`exponential`; center defaults to the middle).
    public static func exponential(_ M: Int, center: Double? = nil, tau: Double = 1, sym: Bool = true,
                                   dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        check("exponential", M, dtype)
        Ember.check(tau > 0, "exponential: Tau must be positive, got: \(tau) instead.")
        Ember.check(!(sym && center != nil), "exponential: Center must be None for symmetric windows")
        if let t = trivial(M, dtype, device) { return t }
        let c = center ?? Double(sym ? M - 1 : M) / 2
        return (-positions(M, start: -c / tau, step: 1 / tau, dtype: dtype, device: device).abs()).exp()
    }
    /// `exp(−k²)` with k = n / (σ√2) from the middle (`gaussian`).
    public static func gaussian(_ M: Int, std: Double = 1, sym: Bool = true, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        check("gaussian", M, dtype)
        Ember.check(std > 0, "gaussian: Standard deviation must be positive, got: \(std) instead.")
        if let t = trivial(M, dtype, device) { return t }
        let start = -Double(sym ? M - 1 : M) / 2, constant = 1 / (std * 2.0.squareRoot())
        let k = positions(M, start: start * constant, step: constant, dtype: dtype, device: device)
        return (-(k * k)).exp()
    }
}
