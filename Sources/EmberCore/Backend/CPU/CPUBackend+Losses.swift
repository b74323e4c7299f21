import EmberCPU
import RealModule

/// Cross-entropy rows on the CPU: the targets are checked first (nothing is written when
/// one is out of range), then one pass per row.
extension CPUBackend {
    public func crossEntropyRows(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor,
                                 _ valid: Tensor) {
        let r = logits.shape[0], c = logits.shape[1]
        let t = target.ptr(Int64.self)
        for i in 0..<r where Int(t[i]) != ignoreIndex && (t[i] < 0 || Int(t[i]) >= c) {
            misuse(EmberError.invalidArgument("crossEntropy: target \(t[i]) is out of bounds for \(c) classes"))
        }
        func run<T: BinaryFloatingPoint & Real>(_: T.Type, _ rowLSE: (UnsafePointer<T>) -> T) {
            let x = logits.ptr(T.self), lo = loss.ptr(T.self), ls = lse.ptr(T.self), va = valid.ptr(T.self)
            parallelFor(r, grain: Swift.max(1, elementwiseGrain / Swift.max(c, 1))) { range in
                for i in range {
                    let row = x + i * c
                    let l = rowLSE(row)
                    ls[i] = l
                    let k = Int(t[i])
                    lo[i] = k == ignoreIndex ? 0 : l - row[k]
                    va[i] = k == ignoreIndex ? 0 : 1
                }
            }
        }
        floatSwitch(logits.dtype, "crossEntropy", {
            run(Float.self) { row in logSumExpRow(row, c) }
        }, {
            run(Double.self) { row in
                var m = -Double.infinity
                for j in 0..<c { m = Swift.max(m, row[j]) }
                if m == -.infinity { m = 0 }
                var s = 0.0
                for j in 0..<c { s += Double.exp(row[j] - m) }
                return m + Double.log(s)
            }
        })
    }

    public func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor,
                                         _ out: Tensor) {
        let r = logits.shape[0], c = logits.shape[1], gs = grad.strides[0]
        let t = target.ptr(Int64.self)
        func run<T: BinaryFloatingPoint & Real>(_: T.Type) {
            let x = logits.ptr(T.self), ls = lse.ptr(T.self), g = grad.ptr(T.self), o = out.ptr(T.self)
            parallelFor(r, grain: Swift.max(1, elementwiseGrain / Swift.max(c, 1))) { range in
                for i in range {
                    let k = Int(t[i]), row = x + i * c, orow = o + i * c
                    if k == ignoreIndex { orow.update(repeating: 0, count: c); continue }
                    let l = ls[i], gi = g[i * gs]
                    for j in 0..<c { orow[j] = (T.exp(row[j] - l) - (j == k ? 1 : 0)) * gi }
                }
            }
        }
        floatSwitch(logits.dtype, "crossEntropy backward", { run(Float.self) }, { run(Double.self) })
    }
}
