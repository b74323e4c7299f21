import EmberCore

// Optimizer steps on the GPU: one kernel per parameter and step, with the CPU loops'
// arithmetic in the same order (`CPUBackend+Optim.swift`).

extension KernelSource {
    public static func optimModule(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        let grid = gridLoop

        let sqrtf = d == .float32 ? "sqrtf" : "sqrt"
        return prelude + "\n" + """
        // One Adam/AdamW step per element, in CPUBackend.adamLoop's order (flags: 1 weight
        // decay, 2 decoupled, 4 amsgrad); k0…k7 are FusedUpdate.AdamCoefficients.derived.
        extern "C" __global__ void \(name("adam", d.description))(long long n, int flags, double k0, double k1, double k2, double k3, double k4, double k5, double k6, double k7, \(st)* p, const \(st)* g, \(st)* m, \(st)* v, \(st)* vmax) {
            const \(t) c1 = (\(t))k0, b2 = (\(t))k1, c2 = (\(t))k2, e = (\(t))k3, wd = (\(t))k4, decay = (\(t))k5, step = (\(t))k6, sbc2 = (\(t))k7;
            \(grid) {
                \(t) gi = g[i], pi = p[i];
                if (flags & 1) { if (flags & 2) pi *= decay; else gi += wd * pi; }
                \(t) mi = m[i] + c1 * (gi - m[i]);
                \(t) vi = b2 * v[i] + c2 * gi * gi;
                m[i] = mi; v[i] = vi;
                \(t) second = vi;
                if (flags & 4) { \(t) x = vmax[i]; second = vi >= x ? vi : x; vmax[i] = second; }
                p[i] = pi - step * mi / (\(sqrtf)(second) / sbc2 + e);
            }
        }
        // One SGD step per element, in CPUBackend.sgdStep's order (flags: 1 momentum buffer,
        // 2 Nesterov, 4 first step: the buffer starts as the gradient); damp = 1 - dampening.
        extern "C" __global__ void \(name("sgd", d.description))(long long n, int flags, double lr, double momentum, double damp, double wd, \(st)* p, const \(st)* g, \(st)* buf) {
            const \(t) l = (\(t))lr, mo = (\(t))momentum, dm = (\(t))damp, w = (\(t))wd;
            \(grid) {
                \(t) pi = p[i], gi = g[i] + w * pi;
                if (flags & 1) {
                    \(t) b = (flags & 4) ? gi : mo * buf[i] + dm * gi;
                    buf[i] = b;
                    gi = (flags & 2) ? gi + mo * b : b;
                }
                p[i] = pi - l * gi;
            }
        }

        """
    }
}

extension CUDABackend {
    func adamStep(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ vmax: Tensor?, _ k: FusedUpdate.AdamCoefficients) {
        let flags: Int32 = (k.weightDecay != 0 ? 1 : 0) | (k.decoupled ? 2 : 0) | (vmax != nil ? 4 : 0)
        let args = KernelArgs.forThisThread().add(Int64(p.count)).add(flags)
        for c in k.derived { args.add(c) }
        args.add(address(p)).add(address(g)).add(address(m)).add(address(v)).add(vmax.map { address($0) } ?? 0)
        dev.launch(kernel(.optim, p.dtype, KernelSource.name("adam", p.dtype.description)), items: p.count, args)
    }

    func sgdStep(_ p: Tensor, _ g: Tensor, _ buf: Tensor?, _ k: FusedUpdate.SGDCoefficients) {
        let flags: Int32 = (buf != nil ? 1 : 0) | (k.nesterov ? 2 : 0) | (k.firstStep ? 4 : 0)
        let args = KernelArgs.forThisThread().add(Int64(p.count)).add(flags).add(k.lr).add(k.momentum).add(1 - k.dampening)
            .add(k.weightDecay).add(address(p)).add(address(g)).add(buf.map { address($0) } ?? 0)
        dev.launch(kernel(.optim, p.dtype, KernelSource.name("sgd", p.dtype.description)), items: p.count, args)
    }
}
