import EmberCore

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
            Optimizer.checkOptions(g.options, "\(type(of: self))")
            for p in g.params {
                Ember.check(seen.insert(ObjectIdentifier(p)).inserted, "\(type(of: self)): some parameters appear in more than one parameter group")
            }
        }
    }

    /// PyTorch's checks of the hyper-parameters (`Invalid learning rate: -1.0`), by their names.
    static func checkOptions(_ o: [String: Double], _ name: String) {
        func atLeast0(_ key: String, _ what: String) {
            if let v = o[key] { Ember.check(v >= 0, "\(name): invalid \(what): \(v) (\(key) must be at least 0)") }
        }
        atLeast0("lr", "learning rate")
        atLeast0("eps", "epsilon value")
        atLeast0("weight_decay", "weight_decay value")
        atLeast0("momentum", "momentum value")
        atLeast0("alpha", "alpha value")
        atLeast0("lr_decay", "lr_decay value")
        for (i, key) in ["beta1", "beta2"].enumerated() {
            if let v = o[key] { Ember.check(v >= 0 && v < 1, "\(name): invalid beta parameter at index \(i): \(v) (must be in [0, 1))") }
        }
    }

    /// Updates one parameter with its gradient; `s` is its state.
    open func update(_ p: Tensor, _ g: Tensor, _ s: inout [String: Tensor], _ o: [String: Double]) {
        Ember.misuse("\(type(of: self)) must override update")
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
