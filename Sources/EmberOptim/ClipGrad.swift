import EmberCore

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
