import EmberCore

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
