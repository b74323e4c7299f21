import EmberCore

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
        let step = nextStep(&s)
        OptimizerStep.adam(param: p, grad: grad, expAvg: s["exp_avg"]!, expAvgSq: s["exp_avg_sq"]!,
                           maxExpAvgSq: amsgrad ? s["max_exp_avg_sq"]! : nil, lr: lr, beta1: b1, beta2: b2, eps: eps,
                           weightDecay: wd, decoupled: decoupled, step: step)
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
