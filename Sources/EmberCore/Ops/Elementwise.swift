import Foundation

// MARK: - Kernel plumbing shared by the elementwise ops

extension Tensor {
    /// Runs a unary primitive: promotes integers for float-only ops, upcasts
    /// float16/bfloat16 to float32 for the kernel and rounds the result back.
    func unaryKernel(_ op: UnaryOp) -> Tensor {
        let resultType = op.needsFloat ? dtype.floatResult : dtype
        let x = cast(resultType.computeType)
        let out = Tensor(uninitialized: shape, dtype: op == .logicalNot ? .bool : x.dtype, device: device, like: layout)
        device.backend.unary(op, x, out)
        return op == .logicalNot ? out : out.cast(resultType)
    }

    /// Runs a binary primitive on broadcast views in the promoted dtype.
    static func binaryKernel(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ name: @autoclosure () -> String) -> Tensor {
        let shape = a.shape == b.shape ? a.shape : checked { try broadcastShapes(a.shape, b.shape, op: name()) }
        if a.device != b.device && !a.isWrappedNumber && !b.isWrappedNumber {
            misuse(EmberError.invalidArgument(
                "\(name()): expected all tensors to be on the same device, but found \(a.device) and \(b.device)"))
        }
        var common = ResultType.of2(a, b)
        if op == .div || op.needsFloat || op == .pow && common == .bool { common = common.floatResult }
        if common == .bool && op == .sub {
            misuse(EmberError.invalidArgument("\(name()): subtraction with two bool tensors is not supported; use logicalXor or ne"))
        }
        let compute = common.computeType
        let device = a.isWrappedNumber ? b.device : a.device
        // A wrapped number from elsewhere is moved to the tensor's device (it is one element).
        let av = (a.device == device ? a : a.to(device)).cast(compute), bv = (b.device == device ? b : b.to(device)).cast(compute)
        let out = Tensor(uninitialized: shape, dtype: op.isPredicate ? .bool : compute, device: device,
                         like: av.shape == shape ? av.layout : bv.layout)
        device.backend.binary(op, av.broadcastView(shape), bv.broadcastView(shape), out)
        return op.isPredicate ? out : out.cast(common)
    }

    /// A stride-0 view broadcast to `shape` (no autograd: kernels only).
    func broadcastView(_ shape: [Int]) -> Tensor {
        if self.shape == shape { return self }
        return Tensor(storage: storage, layout: layout.broadcast(to: shape)!, dtype: dtype)
    }

    /// Records a unary op with its derivative (dispatch + graph in one place).
    func unary(_ op: UnaryOp, _ name: String, saveOutput: Bool = false,
                       _ derivative: @escaping (BackwardContext, Tensor) -> Tensor?) -> Tensor {
        let y = unaryKernel(op)
        if y.dtype.isFloatingPoint && anyNeedsGrad(self) {
            let x = self
            record(y, name, [x], save: [x], saveOutput: saveOutput) { c in [derivative(c, x)] }
        }
        return y
    }
}

// MARK: - Unary math (derivative right under each forward)

extension Tensor {
    public func neg() -> Tensor { unary(.neg, "NegBackward") { c, _ in -c.grad } }
    public static prefix func - (x: Tensor) -> Tensor { x.neg() }

    public func abs() -> Tensor { unary(.abs, "AbsBackward") { c, x in c.grad * x.sign() } }
    public func sign() -> Tensor { unary(.sign, "SignBackward") { c, _ in Tensor.zerosLike(c.grad) } }

    public func exp() -> Tensor {
        unary(.exp, "ExpBackward", saveOutput: true) { c, x in c.grad * (c.createGraph ? x.exp() : c.output!) }
    }
    public func log() -> Tensor { unary(.log, "LogBackward") { c, x in c.grad / x } }
    public func log1p() -> Tensor { unary(.log1p, "Log1pBackward") { c, x in c.grad / (x + 1) } }
    public func expm1() -> Tensor {
        unary(.expm1, "Expm1Backward", saveOutput: true) { c, x in c.grad * ((c.createGraph ? x.expm1() : c.output!) + 1) }
    }
    public func sqrt() -> Tensor {
        unary(.sqrt, "SqrtBackward", saveOutput: true) { c, x in c.grad / ((c.createGraph ? x.sqrt() : c.output!) * 2) }
    }
    public func rsqrt() -> Tensor {
        unary(.rsqrt, "RsqrtBackward", saveOutput: true) { c, x in
            let y = c.createGraph ? x.rsqrt() : c.output!
            return c.grad * y * y * y * -0.5
        }
    }
    public func sin() -> Tensor { unary(.sin, "SinBackward") { c, x in c.grad * x.cos() } }
    public func cos() -> Tensor { unary(.cos, "CosBackward") { c, x in -(c.grad * x.sin()) } }
    public func tanh() -> Tensor {
        unary(.tanh, "TanhBackward", saveOutput: true) { c, x in
            let y = c.createGraph ? x.tanh() : c.output!
            return c.grad * (1 - y * y)
        }
    }
    public func sigmoid() -> Tensor {
        unary(.sigmoid, "SigmoidBackward", saveOutput: true) { c, x in
            let y = c.createGraph ? x.sigmoid() : c.output!
            return c.grad * y * (1 - y)
        }
    }
    public func relu() -> Tensor {
        unary(.relu, "ReluBackward", saveOutput: true) { c, x in
            c.createGraph ? c.grad * x.gt(0) : Tensor.binaryKernel(.reluBackward, c.grad, c.output!, "relu backward")
        }
    }
    public func leakyRelu(_ negativeSlope: Double = 0.01) -> Tensor {
        unary(.leakyRelu(slope: negativeSlope), "LeakyReluBackward") { c, x in
            c.grad * Tensor.where(x.gt(0), 1.0, negativeSlope, like: x)
        }
    }
    /// GELU, exact (`approximate: false`) or with the tanh approximation.
    public func gelu(approximate: Bool = false) -> Tensor {
        if approximate {
            return unary(.geluTanh, "GeluBackward") { c, x in
                let kBeta = 0.7978845608028654, kKappa = 0.044715
                let t = ((x + x * x * x * kKappa) * kBeta).tanh()
                let left = x * 0.5, right = t + 1
                let dInner = (x * x * (3 * kKappa) + 1) * kBeta
                return c.grad * (right * 0.5 + left * (1 - t * t) * dInner)
            }
        }
        return unary(.gelu, "GeluBackward") { c, x in
            let cdf = ((x * 0.7071067811865476).erf() + 1) * 0.5
            let pdf = (x * x * -0.5).exp() * 0.3989422804014327
            return c.grad * (cdf + x * pdf)
        }
    }
    public func silu() -> Tensor {
        unary(.silu, "SiluBackward") { c, x in
            let s = x.sigmoid()
            return c.grad * s * (x * (1 - s) + 1)
        }
    }
    public func softplus(beta: Double = 1, threshold: Double = 20) -> Tensor {
        unary(.softplus(beta: beta, threshold: threshold), "SoftplusBackward") { c, x in
            let z = (x * beta).sigmoid()
            return Tensor.where((x * beta).gt(threshold), c.grad, c.grad * z)
        }
    }
    public func erf() -> Tensor {
        unary(.erf, "ErfBackward") { c, x in c.grad * (x * x * -1).exp() * 1.1283791670955126 }
    }
    public func reciprocal() -> Tensor {
        unary(.reciprocal, "ReciprocalBackward", saveOutput: true) { c, x in
            let y = c.createGraph ? x.reciprocal() : c.output!
            return -(c.grad * y * y)
        }
    }
    public func square() -> Tensor { unary(.square, "PowBackward") { c, x in c.grad * x * 2 } }
    public func floor() -> Tensor { unary(.floor, "FloorBackward") { c, _ in Tensor.zerosLike(c.grad) } }
    public func ceil() -> Tensor { unary(.ceil, "CeilBackward") { c, _ in Tensor.zerosLike(c.grad) } }
    /// Rounds half to even, as PyTorch does.
    public func round() -> Tensor { unary(.round, "RoundBackward") { c, _ in Tensor.zerosLike(c.grad) } }

    /// `self ** exponent` for a scalar exponent (a float exponent makes integer tensors float,
    /// as in PyTorch; use `pow(_: Int)` to stay integral).
    public func pow(_ exponent: Double) -> Tensor {
        return unary(.powScalar(exponent), "PowBackward") { c, x in
            exponent == 0 ? Tensor.zerosLike(c.grad) : c.grad * x.pow(exponent - 1) * exponent
        }
    }

    /// `self ** exponent` for an integer exponent; integer tensors stay integral.
    public func pow(_ exponent: Int) -> Tensor {
        if dtype.isFloatingPoint { return pow(Double(exponent)) }
        return Tensor.binaryKernel(.pow, self, Tensor.wrapped(exponent, like: self), "pow")
    }

    /// Limits values to `[min, max]` (either bound may be nil).
    public func clamp(min: Double? = nil, max: Double? = nil) -> Tensor {
        checked { try require(min != nil || max != nil, "clamp: at least one of 'min' or 'max' must not be nil") }
        // min(max(x, min), max), as PyTorch: a lower bound above the upper one gives the upper
        // one everywhere. The gradient passes strictly inside the bounds (PyTorch ≥ 2.x: 0 at
        // x == min or x == max).
        return unary(.clamp(min: min, max: max), "ClampBackward") { c, x in
            var mask = Tensor.onesLike(x, dtype: .bool)
            if let min { mask = mask.logicalAnd(x.gt(min)) }
            if let max { mask = mask.logicalAnd(x.lt(max)) }
            return c.grad * mask
        }
    }

    public func logicalNot() -> Tensor { unaryKernel(.logicalNot) }
}

// MARK: - Binary arithmetic

extension Tensor {
    /// Records a binary op; `derivative` gets (grad, a, b) and returns both gradients
    /// at the broadcast shape (the engine reduces them to each input's shape).
    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ name: String,
                       save: (Tensor, Tensor) -> [Tensor] = { _, _ in [] },
                       _ derivative: @escaping (BackwardContext, Tensor, Tensor) -> [Tensor?]) -> Tensor {
        let out = binaryKernel(op, a, b, op.name)
        if out.dtype.isFloatingPoint && anyNeedsGrad(a, b) {
            record(out, name, [a, b], save: save(a, b)) { c in derivative(c, a, b) }
        }
        return out
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        binary(.add, a, b, "AddBackward") { c, _, _ in [c.grad, c.grad] }
    }
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        binary(.sub, a, b, "SubBackward") { c, _, _ in [c.grad, c.needsGrad(1) ? -c.grad : nil] }
    }
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        binary(.mul, a, b, "MulBackward", save: { a, b in
            (a.requiresGrad ? [b] : []) + (b.requiresGrad ? [a] : [])
        }) { c, a, b in
            [c.needsGrad(0) ? c.grad * b : nil, c.needsGrad(1) ? c.grad * a : nil]
        }
    }
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        binary(.div, a, b, "DivBackward", save: { a, b in b.requiresGrad ? [a, b] : [b] }) { c, a, b in
            [c.needsGrad(0) ? c.grad / b : nil, c.needsGrad(1) ? -(c.grad * a / (b * b)) : nil]
        }
    }

    /// `self ** exponent`, elementwise.
    public func pow(_ exponent: Tensor) -> Tensor {
        Tensor.binary(.pow, self, exponent, "PowBackward", save: { a, b in [a, b] }) { c, a, b in
            var ga: Tensor? = nil, gb: Tensor? = nil
            if c.needsGrad(0) {
                ga = Tensor.where(b.eq(0), 0.0, 1.0, like: c.grad) * c.grad * b * a.pow(b - 1)
            }
            if c.needsGrad(1) {
                // d/db a^b = a^b log a, taken as 0 where a == 0 and b >= 0.
                let v = c.grad * a.pow(b) * a.log()
                gb = Tensor.where(a.eq(0).logicalAnd(b.ge(0)), Tensor.zerosLike(v), v)
            }
            return [ga, gb]
        }
    }

    /// Elementwise maximum; NaN propagates. Ties split the gradient in half (as PyTorch).
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        binary(.maximum, a, b, "MaximumBackward", save: { a, b in [a, b] }) { c, a, b in
            let half = Tensor.where(a.eq(b), 0.5, 1.0, like: c.grad) * c.grad
            return [half * a.ge(b), half * b.ge(a)]
        }
    }

    /// Elementwise minimum; NaN propagates. Ties split the gradient in half.
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        binary(.minimum, a, b, "MinimumBackward", save: { a, b in [a, b] }) { c, a, b in
            let half = Tensor.where(a.eq(b), 0.5, 1.0, like: c.grad) * c.grad
            return [half * a.le(b), half * b.le(a)]
        }
    }

    // Scalars: a Swift number is a 0-dim tensor that ranks lowest in type promotion.
    public static func + (a: Tensor, b: Double) -> Tensor { a + wrapped(b, like: a) }
    public static func + (a: Double, b: Tensor) -> Tensor { wrapped(a, like: b) + b }
    public static func - (a: Tensor, b: Double) -> Tensor { a - wrapped(b, like: a) }
    public static func - (a: Double, b: Tensor) -> Tensor { wrapped(a, like: b) - b }
    public static func * (a: Tensor, b: Double) -> Tensor { a * wrapped(b, like: a) }
    public static func * (a: Double, b: Tensor) -> Tensor { wrapped(a, like: b) * b }
    public static func / (a: Tensor, b: Double) -> Tensor { a / wrapped(b, like: a) }
    public static func / (a: Double, b: Tensor) -> Tensor { wrapped(a, like: b) / b }
    public static func + (a: Tensor, b: Int) -> Tensor { a + wrapped(b, like: a) }
    public static func + (a: Int, b: Tensor) -> Tensor { wrapped(a, like: b) + b }
    public static func - (a: Tensor, b: Int) -> Tensor { a - wrapped(b, like: a) }
    public static func - (a: Int, b: Tensor) -> Tensor { wrapped(a, like: b) - b }
    public static func * (a: Tensor, b: Int) -> Tensor { a * wrapped(b, like: a) }
    public static func * (a: Int, b: Tensor) -> Tensor { wrapped(a, like: b) * b }
    public static func / (a: Tensor, b: Int) -> Tensor { a / wrapped(b, like: a) }
    public static func / (a: Int, b: Tensor) -> Tensor { wrapped(a, like: b) / b }
    public static func + (a: Tensor, b: Float) -> Tensor { a + Double(b) }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Double(b) }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Double(b) }
    public static func / (a: Tensor, b: Float) -> Tensor { a / Double(b) }
    public static func * (a: Float, b: Tensor) -> Tensor { Double(a) * b }

    public static func maximum(_ a: Tensor, _ b: Double) -> Tensor { maximum(a, wrapped(b, like: a)) }
    public static func minimum(_ a: Tensor, _ b: Double) -> Tensor { minimum(a, wrapped(b, like: a)) }
}

// MARK: - Comparisons and logic (bool results, no gradient)

extension Tensor {
    public func eq(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.eq, self, other, "eq") }
    public func ne(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.ne, self, other, "ne") }
    public func lt(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.lt, self, other, "lt") }
    public func le(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.le, self, other, "le") }
    public func gt(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.gt, self, other, "gt") }
    public func ge(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.ge, self, other, "ge") }
    public func eq(_ v: Double) -> Tensor { eq(Tensor.wrapped(v, like: self)) }
    public func ne(_ v: Double) -> Tensor { ne(Tensor.wrapped(v, like: self)) }
    public func lt(_ v: Double) -> Tensor { lt(Tensor.wrapped(v, like: self)) }
    public func le(_ v: Double) -> Tensor { le(Tensor.wrapped(v, like: self)) }
    public func gt(_ v: Double) -> Tensor { gt(Tensor.wrapped(v, like: self)) }
    public func ge(_ v: Double) -> Tensor { ge(Tensor.wrapped(v, like: self)) }

    public func logicalAnd(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.logicalAnd, self, other, "logicalAnd") }
    public func logicalOr(_ other: Tensor) -> Tensor { Tensor.binaryKernel(.logicalOr, self, other, "logicalOr") }
    public func logicalXor(_ other: Tensor) -> Tensor { logicalOr(other).logicalAnd(logicalAnd(other).logicalNot()) }

    /// True where values are NaN.
    public func isnan() -> Tensor { ne(self) }

    /// True when every element of the two tensors is equal (`torch.equal`).
    public func equal(_ other: Tensor) -> Bool {
        shape == other.shape && eq(other).toArray(Bool.self).allSatisfy { $0 }
    }

    /// `cond ? a : b`, elementwise with broadcasting (`torch.where`).
    public static func `where`(_ cond: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = checked { () throws -> [Int] in
            try require(cond.dtype == .bool, "where: expected condition to be a bool tensor, but got \(cond.dtype)")
            try require(cond.device == a.device && a.device == b.device,
                        "where: expected all tensors to be on the same device, but found condition on \(cond.device), input on \(a.device), other on \(b.device)")
            return try broadcastShapes(try broadcastShapes(cond.shape, a.shape, op: "where"), b.shape, op: "where")
        }
        let dtype = ResultType.of(a, b)
        let out = Tensor(uninitialized: shape, dtype: dtype, device: cond.device)
        out.device.backend.select(cond.broadcastView(shape), a.cast(dtype).broadcastView(shape),
                                  b.cast(dtype).broadcastView(shape), out)
        if dtype.isFloatingPoint && anyNeedsGrad(a, b) {
            record(out, "WhereBackward", [a, b], save: [cond]) { c in
                let z = Tensor.zerosLike(c.grad)
                return [c.needsGrad(0) ? Tensor.where(cond, c.grad, z) : nil,
                        c.needsGrad(1) ? Tensor.where(cond, z, c.grad) : nil]
            }
        }
        return out
    }

    /// `cond ? a : b` with scalar branches, in `like`'s dtype and device.
    public static func `where`(_ cond: Tensor, _ a: Double, _ b: Double, like: Tensor) -> Tensor {
        `where`(cond, Tensor.full([], a, dtype: like.dtype, device: like.device),
                Tensor.full([], b, dtype: like.dtype, device: like.device))
    }
}

// MARK: - In place (optimizers and users); version counter bumped on every write

extension Tensor {
    /// Writes `compute(self)` into `self`. Under grad mode the op is recorded so that the
    /// graph stays correct (the previous value's history becomes the new node's input),
    /// and every node that saved this storage sees the version change.
    func inPlace(_ name: String, _ compute: (Tensor) -> Tensor) -> Tensor {
        let tracking = GradMode.isEnabled
        if tracking {
            checked {
                try require(!(isLeaf && requiresGrad),
                            "\(name): a leaf tensor that requires grad is being used in an in-place operation (shape \(fmt(shape))); wrap it in withNoGrad")
            }
        }
        let old: Tensor
        if tracking && requiresGrad {
            old = Tensor(storage: storage, layout: layout, dtype: dtype)
            old.gradFn = gradFn
        } else {
            old = self
        }
        let r = compute(old)
        if tracking && r.requiresGrad {
            checked {
                try require(viewBase == nil || !(viewBase!.requiresGrad),
                            "\(name): in-place operation with autograd on a view of a tensor that requires grad is not supported; use an out-of-place op")
                try require(dtype.isFloatingPoint, "\(name): result requires grad but \(dtype) cannot hold gradients")
            }
        }
        checked {
            try require(r.shape == shape || r.count == 1 && count == 1,
                        "\(name): output with shape \(fmt(shape)) doesn't match the broadcast shape \(fmt(r.shape))")
        }
        device.backend.copy(r.cast(dtype), into: self)
        storage.bumpVersion()
        if tracking && r.requiresGrad {
            let rr = r.dtype == dtype ? r : r.to(dtype)
            gradFn = rr.gradFn
            leafRequiresGrad = false
        }
        return self
    }

    /// Writes `value` broadcast to this shape into `self`.
    private func inPlaceBroadcast(_ name: String, _ compute: (Tensor) -> Tensor) -> Tensor {
        inPlace(name) { old in
            let r = compute(old)
            return r.shape == old.shape ? r : r.expand(old.shape)
        }
    }

    @discardableResult public func add_(_ other: Tensor, alpha: Double = 1) -> Tensor {
        inPlaceBroadcast("add_") { alpha == 1 ? $0 + other : $0 + other * alpha }
    }
    @discardableResult public func add_(_ v: Double) -> Tensor { inPlace("add_") { $0 + v } }
    @discardableResult public func sub_(_ other: Tensor, alpha: Double = 1) -> Tensor {
        inPlaceBroadcast("sub_") { alpha == 1 ? $0 - other : $0 - other * alpha }
    }
    @discardableResult public func sub_(_ v: Double) -> Tensor { inPlace("sub_") { $0 - v } }
    @discardableResult public func mul_(_ other: Tensor) -> Tensor { inPlaceBroadcast("mul_") { $0 * other } }
    @discardableResult public func mul_(_ v: Double) -> Tensor { inPlace("mul_") { $0 * v } }
    @discardableResult public func div_(_ other: Tensor) -> Tensor { inPlaceBroadcast("div_") { $0 / other } }
    @discardableResult public func div_(_ v: Double) -> Tensor { inPlace("div_") { $0 / v } }
    @discardableResult public func pow_(_ e: Double) -> Tensor { inPlace("pow_") { $0.pow(e) } }
    @discardableResult public func clamp_(min: Double? = nil, max: Double? = nil) -> Tensor {
        inPlace("clamp_") { $0.clamp(min: min, max: max) }
    }
    @discardableResult public func relu_() -> Tensor { inPlace("relu_") { $0.relu() } }
    @discardableResult public func neg_() -> Tensor { inPlace("neg_") { $0.neg() } }
    @discardableResult public func exp_() -> Tensor { inPlace("exp_") { $0.exp() } }
    @discardableResult public func sqrt_() -> Tensor { inPlace("sqrt_") { $0.sqrt() } }
    /// `self += value * t1 * t2` (`addcmul_`).
    @discardableResult public func addcmul_(_ t1: Tensor, _ t2: Tensor, value: Double = 1) -> Tensor {
        inPlaceBroadcast("addcmul_") { $0 + t1 * t2 * value }
    }
    /// `self += value * t1 / t2` (`addcdiv_`).
    @discardableResult public func addcdiv_(_ t1: Tensor, _ t2: Tensor, value: Double = 1) -> Tensor {
        inPlaceBroadcast("addcdiv_") { $0 + t1 / t2 * value }
    }
    /// `self += weight * (end - self)` (`lerp_`).
    @discardableResult public func lerp_(_ end: Tensor, weight: Double) -> Tensor {
        inPlaceBroadcast("lerp_") { $0 + (end - $0) * weight }
    }

    /// Copies `src` (broadcast to this shape, any dtype) into `self`.
    @discardableResult public func copy_(_ src: Tensor) -> Tensor {
        checked {
            try require(src.layout.broadcast(to: shape) != nil,
                        "copy_: the source of shape \(fmt(src.shape)) cannot be broadcast to the destination of shape \(fmt(shape))")
        }
        if GradMode.isEnabled && (requiresGrad || src.requiresGrad) {
            return inPlace("copy_") { _ in src.expand(shape) }
        }
        let s = src.device == device ? src : src.to(device)
        device.backend.copy(s.broadcastView(shape), into: self)
        storage.bumpVersion()
        return self
    }

    /// `self = src · scale` in one pass without autograd (a scaled copy, as data-parallel
    /// training uses to average gradients on their way into a communication buffer). `src`
    /// has self's shape and a floating-point dtype; the result is cast to self's dtype.
    @discardableResult public func copy_(_ src: Tensor, scaledBy scale: Double) -> Tensor {
        checked {
            try require(src.shape == shape, "copy_(scaledBy:): source shape \(fmt(src.shape)) differs from \(fmt(shape))")
            try require(dtype.isFloatingPoint, "copy_(scaledBy:): expected a floating-point destination, got \(dtype)")
        }
        if scale == 1 { return withNoGrad { copy_(src) } }
        // Half precision computes in float32 (backend primitives take compute dtypes).
        if dtype.computeType != dtype { return withNoGrad { copy_(src.cast(dtype.computeType) * scale) } }
        let s = (src.device == device ? src : src.to(device)).cast(dtype)
        let factor = Tensor.full([], scale, dtype: dtype, device: device)
        device.backend.binary(.mul, s, factor.broadcastView(shape), self)
        storage.bumpVersion()
        return self
    }

    /// Sets every element to `value`.
    @discardableResult public func fill_(_ value: Double) -> Tensor {
        if GradMode.isEnabled && requiresGrad { return inPlace("fill_") { Tensor.fullLike($0, value) } }
        device.backend.fill(self, value)
        storage.bumpVersion()
        return self
    }

    /// Sets every element to zero.
    @discardableResult public func zero_() -> Tensor { fill_(0) }

    /// Where `mask` is true, sets `value` (`masked_fill_`).
    @discardableResult public func maskedFill_(_ mask: Tensor, _ value: Double) -> Tensor {
        inPlace("maskedFill_") { $0.maskedFill(mask, value) }
    }
}
