import EmberCore

// Cross-entropy rows on the GPU: one block per row forward (log-sum-exp, the target's
// logit, the row's count), checking the targets in the kernel; one thread per logit
// backward.

extension KernelSource {
    public static func lossesModule(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        let grid = gridLoop
        return prelude + "\n" + checkHelpers(d) + rowStats(d) + """
        // Per row: loss, log-sum-exp and 1/0 for a counted/ignored target. A target out of
        // range writes [1, target, classes] to `check` (read by the host) and a NaN loss.
        extern "C" __global__ void \(name("crossEntropyRows", d.description))(long long rows, long long c, long long ignoreIndex, \(st)* loss, \(st)* lse, \(st)* valid, const \(st)* x, const long long* target, long long* check) {
            __shared__ \(t) red[256];
            long long row = blockIdx.x; if (row >= rows) return;
            const \(st)* xr = x + row * c;
            \(t) m, sum;
            \(name("rowStats", d.description))(xr, c, red, &m, &sum);
            if (threadIdx.x == 0) {
                \(t) l = m + ember_log(sum);
                lse[row] = \(store(d, "l"));
                long long k = target[row];
                valid[row] = \(store(d, "k == ignoreIndex ? (\(t))0 : (\(t))1"));
                if (k != ignoreIndex && (k < 0 || k >= c)) {
                    \(name("reportBad", d.description))(check, \(DeviceCheck.crossEntropyTarget.rawValue), k, c);
                    loss[row] = \(store(d, "(\(t))EMBER_NAN"));
                } else {
                    loss[row] = \(store(d, "k == ignoreIndex ? (\(t))0 : l - \(load(d, "xr[k]"))"));
                }
            }
        }
        // d logits = (softmax − onehot(target)) · grad[row], 0 on ignored rows.
        extern "C" __global__ void \(name("crossEntropyRowsBackward", d.description))(long long n, long long c, long long ignoreIndex, long long gstride, \(st)* out, const \(st)* x, const \(st)* lse, const \(st)* g, const long long* target) {
            \(grid) {
                long long row = i / c, j = i % c, k = target[row];
                if (k == ignoreIndex) { out[i] = \(store(d, "(\(t))0")); continue; }
                \(t) p = ember_exp(\(load(d, "x[i]")) - \(load(d, "lse[row]")));
                out[i] = \(store(d, "(p - (j == k ? (\(t))1 : (\(t))0)) * \(load(d, "g[row * gstride]"))"));
            }
        }

        """
    }
}

extension CUDABackend {
    /// Targets are checked on the device: a bad one stops the program at the next
    /// synchronisation with the message (its row's loss is NaN meanwhile).
    func crossEntropyRows(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor, _ valid: Tensor) {
        let r = logits.shape[0], c = logits.shape[1]
        if r == 0 { return }
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().add(Int64(r)).add(Int64(c)).add(Int64(ignoreIndex)).add(address(loss)).add(address(lse))
            .add(address(valid)).add(address(logits)).add(address(target)).add(check)
        dev.launch(kernel(.losses, logits.dtype, KernelSource.name("crossEntropyRows", logits.dtype.description)), grid: r, block: 256, args)
    }

    func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor, _ out: Tensor) {
        let n = logits.count, c = logits.shape[1]
        if n == 0 { return }
        let args = KernelArgs.forThisThread().add(Int64(n)).add(Int64(c)).add(Int64(ignoreIndex)).add(Int64(grad.strides[0]))
            .add(address(out)).add(address(logits)).add(address(lse)).add(address(grad)).add(address(target))
        dev.launch(kernel(.losses, logits.dtype, KernelSource.name("crossEntropyRowsBackward", logits.dtype.description)), items: n, args)
    }
}
