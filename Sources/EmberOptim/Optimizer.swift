import EmberCore
import EmberNN
import Foundation

/// A set of parameters with its own hyper-parameters (`param_groups[i]`).
public struct ParamGroup {
    public var params: [Tensor]
    /// Hyper-parameters by PyTorch's names: "lr", "momentum", "weight_decay", "beta1"…
    public var options: [String: Double]

    public init(params: [Tensor], options: [String: Double] = [:]) {
        self.params = params
        self.options = options
    }

    public var lr: Double {
        get { options["lr"]! }
        set { options["lr"] = newValue }
    }
}

/// An optimizer's state in PyTorch's layout: per-parameter state keyed by the parameter's
/// position across groups, and each group's hyper-parameters with its parameter positions.
public struct OptimizerState {
    public var state: [Int: [String: Tensor]] = [:]
    public var groups: [(options: [String: Double], params: [Int])] = []
    public init() {}
}

public enum OptimizerError: Error, Equatable, CustomStringConvertible {
    case stateMismatch(String)
    public var description: String {
        switch self { case .stateMismatch(let m): "loadStateDict: \(m)" }
    }
}

/// The base of every optimizer (`torch.optim.Optimizer`). Subclasses implement `update`.
open class Optimizer {
    public var paramGroups: [ParamGroup]
    /// Per-parameter state ("step", "exp_avg", "momentum_buffer"…).
    public var state: [ObjectIdentifier: [String: Tensor]] = [:]

    /// One group from `params` with `defaults`, or several groups each completed by `defaults`.
    public init(groups: [ParamGroup], defaults: [String: Double]) {
        paramGroups = groups.map { g in
            var g = g
            for (k, v) in defaults where g.options[k] == nil { g.options[k] = v }
            return g
        }
        var seen = Set<ObjectIdentifier>()
        for g in paramGroups {
            for p in g.params {
                precondition(seen.insert(ObjectIdentifier(p)).inserted, "\(type(of: self)): some parameters appear in more than one parameter group")
            }
        }
    }

    /// Updates one parameter with its gradient; `s` is its state.
    open func update(_ p: Tensor, _ g: Tensor, _ s: inout [String: Tensor], _ o: [String: Double]) {
        preconditionFailure("\(type(of: self)) must override update")
    }

    /// One optimisation step over every parameter that has a gradient.
    public func step() {
        withNoGrad {
            for group in paramGroups {
                for p in group.params {
                    guard var g = p.grad else { continue }
                    if (group.options["maximize"] ?? 0) != 0 { g = -g }
                    let id = ObjectIdentifier(p)
                    var s = state[id] ?? [:]
                    update(p, g, &s, group.options)
                    state[id] = s
                }
            }
        }
    }

    /// Clears every parameter's gradient (to nil by default).
    public func zeroGrad(setToNone: Bool = true) {
        for g in paramGroups {
            for p in g.params {
                if setToNone { p.grad = nil } else if let gr = p.grad { withNoGrad { _ = gr.zero_() } }
            }
        }
    }

    /// The state in PyTorch's layout (`state_dict()`), sharing tensors with the optimizer.
    public func stateDict() -> OptimizerState {
        var out = OptimizerState()
        var index = 0
        for g in paramGroups {
            var ids: [Int] = []
            for p in g.params {
                if let s = state[ObjectIdentifier(p)] { out.state[index] = s }
                ids.append(index)
                index += 1
            }
            out.groups.append((g.options, ids))
        }
        return out
    }

    /// Restores state saved by `stateDict()` (hyper-parameters included).
    public func loadStateDict(_ saved: OptimizerState) throws {
        guard saved.groups.count == paramGroups.count else {
            throw OptimizerError.stateMismatch("loaded state dict has \(saved.groups.count) parameter groups, the optimizer has \(paramGroups.count)")
        }
        for (i, g) in paramGroups.enumerated() where g.params.count != saved.groups[i].params.count {
            throw OptimizerError.stateMismatch("group \(i) has \(g.params.count) parameters, the saved group has \(saved.groups[i].params.count)")
        }
        var newState: [ObjectIdentifier: [String: Tensor]] = [:]
        for (i, g) in paramGroups.enumerated() {
            for (p, index) in zip(g.params, saved.groups[i].params) {
                guard let s = saved.state[index] else { continue }
                for (k, t) in s where k != "step" && t.shape != p.shape {
                    throw OptimizerError.stateMismatch("state \(k) of parameter \(index) has shape \(t.shape), the parameter \(p.shape)")
                }
                // Moments live on the parameter's device; the step count stays on the CPU.
                var moved: [String: Tensor] = [:]
                for (k, t) in s { moved[k] = k == "step" ? t.clone() : t.to(p.device).clone() }
                newState[ObjectIdentifier(p)] = moved
            }
            paramGroups[i].options = saved.groups[i].options
        }
        state = newState
    }
}

extension Optimizer {
    /// The step count of a parameter's state (a float tensor, as PyTorch keeps it).
    func nextStep(_ s: inout [String: Tensor]) -> Double {
        let step = (s["step"]?.item() ?? 0) + 1
        s["step"] = Tensor(scalar: Float(step))
        return step
    }
}

/// Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.
public final class SGD: Optimizer {
    public init(_ params: [Tensor], lr: Double = 1e-3, momentum: Double = 0, dampening: Double = 0,
                weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum requires a momentum and zero dampening")
        super.init(groups: [ParamGroup(params: params)],
                   defaults: ["lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weightDecay,
                              "nesterov": nesterov ? 1 : 0, "maximize": maximize ? 1 : 0])
    }

    public init(groups: [ParamGroup], lr: Double = 1e-3, momentum: Double = 0, weightDecay: Double = 0) {
        super.init(groups: groups, defaults: ["lr": lr, "momentum": momentum, "dampening": 0, "weight_decay": weightDecay,
                                              "nesterov": 0, "maximize": 0])
    }

    public override func update(_ p: Tensor, _ grad: Tensor, _ s: inout [String: Tensor], _ o: [String: Double]) {
        let wd = o["weight_decay"]!, momentum = o["momentum"]!
        let first = s["momentum_buffer"] == nil
        let buffer = momentum != 0 ? (s["momentum_buffer"] ?? Tensor.zerosLike(p)) : nil
        if FusedUpdate.sgd(param: p, grad: grad, momentumBuffer: buffer, lr: o["lr"]!, momentum: momentum,
                           dampening: o["dampening"]!, nesterov: o["nesterov"]! != 0, weightDecay: wd, firstStep: first) {
            if let buffer { s["momentum_buffer"] = buffer }
            return
        }
        var g = grad
        if wd != 0 { g = g + p * wd }
        if momentum != 0 {
            let buf: Tensor
            if let b = s["momentum_buffer"] {
                buf = b.mul_(momentum).add_(g, alpha: 1 - o["dampening"]!)
            } else {
                buf = g.clone()
                s["momentum_buffer"] = buf
            }
            g = o["nesterov"]! != 0 ? g + buf * momentum : buf
        }
        p.sub_(g, alpha: o["lr"]!)
    }
}

/// Adam, and AdamW when `decoupled` (weight decay applied to the weights, not the gradient).
public class Adam: Optimizer {
    let decoupled: Bool

    public init(_ params: [Tensor], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false) {
        decoupled = false
        super.init(groups: [ParamGroup(params: params)], defaults: Adam.defaults(lr, betas, eps, weightDecay, amsgrad, maximize))
    }

    init(groups: [ParamGroup], lr: Double, betas: (Double, Double), eps: Double, weightDecay: Double, amsgrad: Bool,
         maximize: Bool, decoupled: Bool) {
        self.decoupled = decoupled
        super.init(groups: groups, defaults: Adam.defaults(lr, betas, eps, weightDecay, amsgrad, maximize))
    }

    public convenience init(groups: [ParamGroup], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                            weightDecay: Double = 0, amsgrad: Bool = false) {
        self.init(groups: groups, lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad, maximize: false,
                  decoupled: false)
    }

    static func defaults(_ lr: Double, _ betas: (Double, Double), _ eps: Double, _ wd: Double, _ amsgrad: Bool,
                         _ maximize: Bool) -> [String: Double] {
        ["lr": lr, "beta1": betas.0, "beta2": betas.1, "eps": eps, "weight_decay": wd, "amsgrad": amsgrad ? 1 : 0,
         "maximize": maximize ? 1 : 0]
    }

    public override func update(_ p: Tensor, _ grad: Tensor, _ s: inout [String: Tensor], _ o: [String: Double]) {
        let (lr, b1, b2, eps, wd) = (o["lr"]!, o["beta1"]!, o["beta2"]!, o["eps"]!, o["weight_decay"]!)
        let amsgrad = o["amsgrad"]! != 0
        if s["exp_avg"] == nil {
            s["exp_avg"] = Tensor.zerosLike(p)
            s["exp_avg_sq"] = Tensor.zerosLike(p)
            if amsgrad { s["max_exp_avg_sq"] = Tensor.zerosLike(p) }
        }
        let stepCount = (s["step"]?.item() ?? 0) + 1
        if FusedUpdate.adam(param: p, grad: grad, expAvg: s["exp_avg"]!, expAvgSq: s["exp_avg_sq"]!,
                            maxExpAvgSq: amsgrad ? s["max_exp_avg_sq"]! : nil, lr: lr, beta1: b1, beta2: b2, eps: eps,
                            weightDecay: wd, decoupled: decoupled, bc1: 1 - Foundation.pow(b1, stepCount),
                            bc2: 1 - Foundation.pow(b2, stepCount)) {
            s["step"] = Tensor(scalar: Float(stepCount))
            return
        }
        var g = grad
        if wd != 0 {
            if decoupled { p.mul_(1 - lr * wd) } else { g = g + p * wd }
        }
        let step = nextStep(&s)
        let m = s["exp_avg"] ?? Tensor.zerosLike(p), v = s["exp_avg_sq"] ?? Tensor.zerosLike(p)
        m.lerp_(g, weight: 1 - b1)
        v.mul_(b2).addcmul_(g, g, value: 1 - b2)
        s["exp_avg"] = m
        s["exp_avg_sq"] = v
        let bc1 = 1 - Foundation.pow(b1, step), bc2 = 1 - Foundation.pow(b2, step)
        var second = v
        if amsgrad {
            let vmax = Tensor.maximum(s["max_exp_avg_sq"]!, v)
            s["max_exp_avg_sq"] = vmax
            second = vmax
        }
        let denom = second.sqrt() / bc2.squareRoot() + eps
        p.addcdiv_(m, denom, value: -lr / bc1)
    }
}

/// Adam with decoupled weight decay (default 0.01).
public final class AdamW: Adam {
    public override init(_ params: [Tensor], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 1e-2, amsgrad: Bool = false, maximize: Bool = false) {
        super.init(groups: [ParamGroup(params: params)], lr: lr, betas: betas, eps: eps, weightDecay: weightDecay,
                   amsgrad: amsgrad, maximize: maximize, decoupled: true)
    }
}

/// RMSprop (optionally centered, with momentum).
public final class RMSprop: Optimizer {
    public init(_ params: [Tensor], lr: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0,
                momentum: Double = 0, centered: Bool = false) {
        super.init(groups: [ParamGroup(params: params)],
                   defaults: ["lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weightDecay, "momentum": momentum,
                              "centered": centered ? 1 : 0, "maximize": 0])
    }

    public override func update(_ p: Tensor, _ grad: Tensor, _ s: inout [String: Tensor], _ o: [String: Double]) {
        let (lr, alpha, eps, wd, momentum) = (o["lr"]!, o["alpha"]!, o["eps"]!, o["weight_decay"]!, o["momentum"]!)
        var g = grad
        if wd != 0 { g = g + p * wd }
        _ = nextStep(&s)
        let sq = s["square_avg"] ?? Tensor.zerosLike(p)
        sq.mul_(alpha).addcmul_(g, g, value: 1 - alpha)
        s["square_avg"] = sq
        var avg: Tensor
        if o["centered"]! != 0 {
            let ga = s["grad_avg"] ?? Tensor.zerosLike(p)
            ga.lerp_(g, weight: 1 - alpha)
            s["grad_avg"] = ga
            avg = (sq - ga * ga).sqrt() + eps
        } else {
            avg = sq.sqrt() + eps
        }
        if momentum > 0 {
            let buf = s["momentum_buffer"] ?? Tensor.zerosLike(p)
            buf.mul_(momentum).addcdiv_(g, avg)
            s["momentum_buffer"] = buf
            p.sub_(buf, alpha: lr)
        } else {
            avg = g / avg
            p.sub_(avg, alpha: lr)
        }
    }
}

/// Adagrad with learning-rate decay.
public final class Adagrad: Optimizer {
    public init(_ params: [Tensor], lr: Double = 1e-2, lrDecay: Double = 0, weightDecay: Double = 0,
                initialAccumulatorValue: Double = 0, eps: Double = 1e-10) {
        super.init(groups: [ParamGroup(params: params)],
                   defaults: ["lr": lr, "lr_decay": lrDecay, "weight_decay": weightDecay,
                              "initial_accumulator_value": initialAccumulatorValue, "eps": eps, "maximize": 0])
    }

    public override func update(_ p: Tensor, _ grad: Tensor, _ s: inout [String: Tensor], _ o: [String: Double]) {
        var g = grad
        if o["weight_decay"]! != 0 { g = g + p * o["weight_decay"]! }
        let step = nextStep(&s)
        let sum = s["sum"] ?? Tensor.fullLike(p, o["initial_accumulator_value"]!)
        sum.addcmul_(g, g)
        s["sum"] = sum
        let clr = o["lr"]! / (1 + (step - 1) * o["lr_decay"]!)
        p.addcdiv_(g, sum.sqrt() + o["eps"]!, value: -clr)
    }
}

// MARK: - Gradient clipping

/// Scales gradients so that their total `normType`-norm is at most `maxNorm`
/// (`clip_grad_norm_`); returns the total norm before clipping.
@discardableResult
public func clipGradNorm(_ params: [Tensor], maxNorm: Double, normType: Double = 2) -> Double {
    clipGradNormTensor(params, maxNorm: maxNorm, normType: normType).map { $0.item() } ?? 0
}

/// `clipGradNorm` without waiting for a GPU: the total norm as a 0-dimensional tensor on the
/// first gradient's device (nil without gradients). As in PyTorch, the per-gradient norms,
/// their norm and the clipping coefficient `min(1, maxNorm / (total + 1e-6))` are computed on
/// the device in the gradients' dtype, and every gradient is multiplied by it.
@discardableResult
public func clipGradNormTensor(_ params: [Tensor], maxNorm: Double, normType: Double = 2) -> Tensor? {
    withNoGrad {
        let grads = params.compactMap(\.grad)
        guard let first = grads.first else { return nil }
        let device = first.device
        let norms = grads.map { g in
            let n = normType == .infinity ? g.abs().max() : g.norm(p: normType)
            return n.device == device ? n : n.to(device)
        }
        let types = Set(norms.map(\.dtype))
        let common: DType = types.count == 1 ? first.dtype : (types.contains(.float64) ? .float64 : .float32)
        let stacked = Tensor.stack(norms.map { $0.dtype == common ? $0 : $0.to(common) })
        let total = normType == .infinity ? stacked.max() : stacked.norm(p: normType)
        let coef = (maxNorm / (total + 1e-6)).clamp(max: 1)
        for g in grads { g.mul_(g.device == device ? coef : coef.to(g.device)) }
        return total
    }
}

/// Clamps every gradient element to `[-clipValue, clipValue]` (`clip_grad_value_`).
public func clipGradValue(_ params: [Tensor], clipValue: Double) {
    withNoGrad { for p in params { p.grad?.clamp_(min: -clipValue, max: clipValue) } }
}
