import EmberCore

/// Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.
public final class SGD: Optimizer {
    public init(_ params: [Tensor], lr: Double = 1e-3, momentum: Double = 0, dampening: Double = 0,
                weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false) {
        Ember.check(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum requires a momentum and zero dampening")
        super.init(groups: [ParamGroup(params: params)],
                   defaults: ["lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weightDecay,
                              "nesterov": nesterov ? 1 : 0, "maximize": maximize ? 1 : 0])
    }

    public init(groups: [ParamGroup], lr: Double = 1e-3, momentum: Double = 0, weightDecay: Double = 0) {
        super.init(groups: groups, defaults: ["lr": lr, "momentum": momentum, "dampening": 0, "weight_decay": weightDecay,
                                              "nesterov": 0, "maximize": 0])
    }

    public override func update(_ p: Tensor, _ grad: Tensor, _ s: inout [String: Tensor], _ o: [String: Double]) {
        let momentum = o["momentum"]!
        let first = s["momentum_buffer"] == nil
        let buffer = momentum != 0 ? (s["momentum_buffer"] ?? Tensor.zerosLike(p)) : nil
        OptimizerStep.sgd(param: p, grad: grad, momentumBuffer: buffer, lr: o["lr"]!, momentum: momentum, dampening: o["dampening"]!,
                          nesterov: o["nesterov"]! != 0, weightDecay: o["weight_decay"]!, firstStep: first)
        if let buffer { s["momentum_buffer"] = buffer }
    }
}
