import CEmberKernels
import EmberCPU

/// Optimizer steps on the CPU: one loop over each parameter (instead of a kernel per
/// arithmetic step), split across threads.
extension CPUBackend {
    public func adamStep(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ vmax: Tensor?, _ k: FusedUpdate.AdamCoefficients) {
        floatSwitch(p.dtype, "adam step", {
            adamFloat(p.ptr(Float.self), g.ptr(Float.self), m.ptr(Float.self), v.ptr(Float.self), vmax?.ptr(Float.self), p.count, k)
        }, {
            let (pp, gp, mp, vp, xp) = (p.ptr(Double.self), g.ptr(Double.self), m.ptr(Double.self), v.ptr(Double.self), vmax?.ptr(Double.self))
            parallelFor(p.count, grain: elementwiseGrain) { r in CPUBackend.adamLoop(pp, gp, mp, vp, xp, r, k) }
        })
    }

    /// The scalar Adam loop over `range` (float64).
    @inline(__always)
    static func adamLoop<T: BinaryFloatingPoint>(_ pp: UnsafeMutablePointer<T>, _ gp: UnsafeMutablePointer<T>,
                                                 _ mp: UnsafeMutablePointer<T>, _ vp: UnsafeMutablePointer<T>,
                                                 _ xp: UnsafeMutablePointer<T>?, _ range: Range<Int>, _ k: FusedUpdate.AdamCoefficients) {
        // Coefficients in Double, rounded once (as PyTorch passes Python floats to its kernels).
        let (c1, b2, c2, e, wd) = (T(1 - k.beta1), T(k.beta2), T(1 - k.beta2), T(k.eps), T(k.weightDecay))
        let decay = T(1 - k.lr * k.weightDecay), step = T(k.lr / k.bc1), sbc2 = T(k.bc2.squareRoot())
        for i in range {
            var gi = gp[i]
            if k.weightDecay != 0 { if k.decoupled { pp[i] *= decay } else { gi += wd * pp[i] } }
            let mi = mp[i] + c1 * (gi - mp[i])
            let vi = b2 * vp[i] + c2 * gi * gi
            mp[i] = mi
            vp[i] = vi
            var second = vi
            if let xp { second = Swift.max(xp[i], vi); xp[i] = second }
            pp[i] -= step * mi / (second.squareRoot() / sbc2 + e)
        }
    }

    /// Adam over float32 parameters: the C loop (vectorised, square root included), split
    /// across threads. The same operations in the same order as `adamLoop`.
    private func adamFloat(_ pp: UnsafeMutablePointer<Float>, _ gp: UnsafeMutablePointer<Float>, _ mp: UnsafeMutablePointer<Float>,
                           _ vp: UnsafeMutablePointer<Float>, _ xp: UnsafeMutablePointer<Float>?, _ count: Int,
                           _ k: FusedUpdate.AdamCoefficients) {
        let flags: Int32 = (k.weightDecay != 0 ? 1 : 0) | (k.decoupled ? 2 : 0)
        let kernel = switch CPUFeatures.active {
        case .avx512: ember_adam_f32_avx512
        case .avx2: ember_adam_f32_avx2
        case .baseline: ember_adam_f32
        }
        // The coefficients on the stack (this runs for every parameter of every step).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 8) { c in
            // `k.derived`, written out (no array on this path).
            c[0] = Float(1 - k.beta1); c[1] = Float(k.beta2); c[2] = Float(1 - k.beta2); c[3] = Float(k.eps)
            c[4] = Float(k.weightDecay); c[5] = Float(1 - k.lr * k.weightDecay); c[6] = Float(k.lr / k.bc1)
            c[7] = Float(k.bc2.squareRoot())
            parallelFor(count, grain: elementwiseGrain) { r in
                let o = r.lowerBound
                kernel(pp + o, gp + o, mp + o, vp + o, xp.map { $0 + o }, r.count, c.baseAddress, flags)
            }
        }
    }

    public func sgdStep(_ p: Tensor, _ g: Tensor, _ buf: Tensor?, _ k: FusedUpdate.SGDCoefficients) {
        func run<T: BinaryFloatingPoint>(_: T.Type) {
            let pp = p.ptr(T.self), gp = g.ptr(T.self), bp = buf?.ptr(T.self)
            let (l, mo, damp, wd) = (T(k.lr), T(k.momentum), T(1 - k.dampening), T(k.weightDecay))  // rounded once from Double
            let (nesterov, firstStep) = (k.nesterov, k.firstStep)
            parallelFor(p.count, grain: elementwiseGrain) { r in
                for i in r {
                    var gi = gp[i] + wd * pp[i]
                    if let bp {
                        let b = firstStep ? gi : mo * bp[i] + damp * gi
                        bp[i] = b
                        gi = nesterov ? gi + mo * b : b
                    }
                    pp[i] -= l * gi
                }
            }
        }
        floatSwitch(p.dtype, "sgd step", { run(Float.self) }, { run(Double.self) })
    }
}
