import EmberCore

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
