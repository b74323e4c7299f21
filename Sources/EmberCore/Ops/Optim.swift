import Foundation

/// Optimizer steps as ops: one Adam or SGD update of one parameter. Each runs as the
/// backend's fused kernel (one pass over the parameter) when the tensors allow it, else as
/// tensor ops with the same arithmetic. The optimizers of EmberOptim keep the
/// hyper-parameters and the state, and call these.
public enum OptimizerStep {
    /// One Adam/AdamW step (PyTorch's single-tensor algorithm) at step number `step` (from 1):
    /// updates `param`, `expAvg`, `expAvgSq` and, for AMSGrad, `maxExpAvgSq` in place.
    public static func adam(param p: Tensor, grad g: Tensor, expAvg m: Tensor, expAvgSq v: Tensor, maxExpAvgSq vmax: Tensor?,
                            lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double, decoupled: Bool,
                            step: Double) {
        let bc1 = 1 - Foundation.pow(beta1, step), bc2 = 1 - Foundation.pow(beta2, step)
        if FusedUpdate.adam(param: p, grad: g, expAvg: m, expAvgSq: v, maxExpAvgSq: vmax, lr: lr, beta1: beta1, beta2: beta2,
                            eps: eps, weightDecay: weightDecay, decoupled: decoupled, bc1: bc1, bc2: bc2) { return }
        withNoGrad {
            var grad = g
            if weightDecay != 0 {
                if decoupled { p.mul_(1 - lr * weightDecay) } else { grad = grad + p * weightDecay }
            }
            m.lerp_(grad, weight: 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2)
            var second = v
            if let vmax {
                vmax.copy_(Tensor.maximum(vmax, v))
                second = vmax
            }
            p.addcdiv_(m, second.sqrt() / bc2.squareRoot() + eps, value: -lr / bc1)
        }
    }

    /// One SGD step with momentum, dampening, Nesterov and weight decay. With `firstStep`,
    /// the momentum buffer is set to the gradient (as PyTorch does).
    public static func sgd(param p: Tensor, grad g: Tensor, momentumBuffer buf: Tensor?, lr: Double, momentum: Double,
                           dampening: Double, nesterov: Bool, weightDecay: Double, firstStep: Bool) {
        if FusedUpdate.sgd(param: p, grad: g, momentumBuffer: buf, lr: lr, momentum: momentum, dampening: dampening,
                           nesterov: nesterov, weightDecay: weightDecay, firstStep: firstStep) { return }
        withNoGrad {
            var grad = g
            if weightDecay != 0 { grad = grad + p * weightDecay }
            if let buf {
                if firstStep { buf.copy_(grad) } else { buf.mul_(momentum).add_(grad, alpha: 1 - dampening) }
                grad = nesterov ? grad + buf * momentum : buf
            }
            p.sub_(grad, alpha: lr)
        }
    }
}

/// Optimizer updates as one fused kernel per parameter (instead of a kernel per arithmetic
/// step), on any backend. Each returns false when the fused path does not apply (mixed
/// dtypes or devices, non-contiguous tensors, a dtype other than float32/float64); callers
/// then use tensor ops (`OptimizerStep` does both).
public enum FusedUpdate {
    static func applicable(_ ts: [Tensor]) -> Bool {
        let d = ts[0].dtype, device = ts[0].device
        return ts.allSatisfy { $0.device == device && $0.dtype == d && $0.isContiguous && $0.count == ts[0].count }
            && (d == .float32 || d == .float64)
    }

    /// Adam/AdamW for one parameter (PyTorch's single-tensor algorithm). `bc1`, `bc2` are the
    /// bias corrections `1 - β^step`.
    public static func adam(param p: Tensor, grad g: Tensor, expAvg m: Tensor, expAvgSq v: Tensor, maxExpAvgSq vmax: Tensor?,
                            lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double, decoupled: Bool,
                            bc1: Double, bc2: Double) -> Bool {
        let written = [p, m, v] + (vmax.map { [$0] } ?? [])
        guard applicable(written + [g]) else { return false }
        let k = AdamCoefficients(beta1: beta1, beta2: beta2, eps: eps, lr: lr, weightDecay: weightDecay, decoupled: decoupled,
                                 bc1: bc1, bc2: bc2)
        if p.count > 0 { p.device.backend.adamStep(p, g, m, v, vmax, k) }
        for t in written { t.storage.bumpVersion() }
        return true
    }

    /// SGD with momentum, dampening, Nesterov and weight decay for one parameter. With
    /// `firstStep`, the momentum buffer is set to the gradient (as PyTorch does).
    public static func sgd(param p: Tensor, grad g: Tensor, momentumBuffer buf: Tensor?, lr: Double, momentum: Double,
                           dampening: Double, nesterov: Bool, weightDecay: Double, firstStep: Bool) -> Bool {
        let written = [p] + (buf.map { [$0] } ?? [])
        guard applicable(written + [g]) else { return false }
        let k = SGDCoefficients(lr: lr, momentum: momentum, dampening: dampening, weightDecay: weightDecay,
                                nesterov: nesterov, firstStep: firstStep)
        if p.count > 0 { p.device.backend.sgdStep(p, g, buf, k) }
        for t in written { t.storage.bumpVersion() }
        return true
    }

    /// The scalars of one Adam step: `bc1`, `bc2` are the bias corrections `1 - β^step`.
    /// Every kernel rounds the same derived coefficients once to the parameter's dtype:
    /// `1 - β1`, `β2`, `1 - β2`, `eps`, `weightDecay`, `1 - lr·weightDecay`, `lr / bc1`, `√bc2`.
    public struct AdamCoefficients: Sendable {
        public let beta1, beta2, eps, lr, weightDecay: Double, decoupled: Bool, bc1, bc2: Double
        /// The eight derived coefficients above, in that order.
        public var derived: [Double] {
            [1 - beta1, beta2, 1 - beta2, eps, weightDecay, 1 - lr * weightDecay, lr / bc1, bc2.squareRoot()]
        }
    }

    /// The scalars of one SGD step.
    public struct SGDCoefficients: Sendable {
        public let lr, momentum, dampening, weightDecay: Double, nesterov, firstStep: Bool
    }
}
