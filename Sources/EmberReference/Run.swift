import EmberCore

/// Runs one case on `device` against PyTorch's values; returns failure messages.
public func runOpCase(_ c: OpCase, device: Device = .cpu) -> [String] {
    var failures: [String] = []
    let built = c.inputs.map { $0.build(device: device) }
    let outs: [Tensor]
    switch c.table {
    case .core:
        guard let fn = opTable[c.op] else { return ["no Ember op for \(c.op)"] }
        outs = fn(built.map(\.view), c.params)
    case .opInfo:
        guard let fn = opInfoTable[c.op] else { return ["no Ember op for OpInfo's \(c.op)"] }
        let call = OpCall(built.map(\.view), c.params, device: device)
        outs = fn(call)
        if !call.unread.isEmpty { return ["the adapter ignores " + call.unread.joined(separator: ", ")] }
    }
    if outs.count != c.outputs.count { return ["\(outs.count) outputs, expected \(c.outputs.count)"] }
    for (i, (o, want)) in zip(outs, c.outputs).enumerated() {
        if o.shape != want.shape { failures.append("output \(i) shape \(o.shape) != \(want.shape)") }
        if o.dtype != want.dtype { failures.append("output \(i) dtype \(o.dtype) != \(want.dtype)") }
        if let m = mismatch(o.toArray(Double.self), want.data, want.dtype) { failures.append("output \(i): \(m)") }
    }
    guard let ups = c.upstream, let grads = c.grads else { return failures }
    // loss = Σ sum(out_i * upstream_i)
    var loss: Tensor? = nil
    for (o, u) in zip(outs, ups) {
        guard let u else { continue }
        let term = (o * Tensor(u, shape: o.shape, dtype: o.dtype).to(o.device)).sum()
        loss = loss.map { $0 + term } ?? term
    }
    guard let loss else { return failures + ["no differentiable output"] }
    if !loss.requiresGrad {
        // No path from the inputs to the outputs (fill, zeros_like): every gradient is zero.
        for (k, want) in grads.enumerated() {
            guard let want else { continue }
            if want.contains(where: { $0 != 0 }) { failures.append("grad of input \(k): zero in Ember but not in PyTorch") }
        }
        return failures
    }
    let leaves = built.compactMap(\.leaf)
    let wantDouble = c.doubleGrads != nil
    // Gradients through a less precise leaf (float32 weights of a float64 op) are only as
    // accurate as that leaf's dtype: the loosest tolerance among the leaves applies to all.
    let loosest = leaves.map(\.dtype).max { tolerance($0).0 < tolerance($1).0 }
    func gradDType(_ own: DType) -> DType { loosest.map { tolerance($0).0 > tolerance(own).0 ? $0 : own } ?? own }
    do {
        let g = try Autograd.grad(of: [loss], wrt: leaves, createGraph: wantDouble)
        var li = 0
        for (k, input) in built.enumerated() {
            guard input.leaf != nil else { continue }
            defer { li += 1 }
            guard let want = grads[k] else { continue }
            let got = g[li]?.toArray(Double.self) ?? [Double](repeating: 0, count: want.count)
            if let gg = g[li], gg.shape != c.inputs[k].baseShape {
                failures.append("grad \(k) shape \(gg.shape) != \(c.inputs[k].baseShape)")
            }
            if let m = mismatch(got, want, gradDType(c.inputs[k].dtype), scale: 5) { failures.append("grad of input \(k): \(m)") }
        }
        if let dv = c.doubleV, let dg = c.doubleGrads {
            var s: Tensor? = nil
            for (gi, v) in zip(g, dv) {
                guard let gi, let v, gi.requiresGrad else { continue }
                let term = (gi * Tensor(v, shape: gi.shape, dtype: gi.dtype).to(gi.device)).sum()
                s = s.map { $0 + term } ?? term
            }
            if let s {
                let gg = try Autograd.grad(of: [s], wrt: leaves)
                for (i, want) in dg.enumerated() {
                    let got = gg[i]?.toArray(Double.self) ?? [Double](repeating: 0, count: want.count)
                    if let m = mismatch(got, want, gradDType(leaves[i].dtype), scale: 5) {
                        failures.append("second-order grad of leaf \(i): \(m)")
                    }
                }
            } else {
                // The first gradients do not depend on the inputs: the second order is zero.
                for (i, want) in dg.enumerated() where want.contains(where: { $0 != 0 }) {
                    failures.append("second-order grad of leaf \(i) is zero in Ember but not in PyTorch")
                }
            }
        }
    } catch {
        failures.append("backward threw \(error)")
    }
    return failures
}

