import EmberCPU

/// The matrix factorizations on the CPU: each matrix of the batch is read into float64,
/// factored by `EmberCPU.Dense` (LAPACK's conventions) and written back in the output dtype;
/// the matrices of a batch run in parallel.
extension CPUBackend {
    public func factorize(_ f: Factorization, _ inputs: [Tensor], _ outputs: [Tensor]) {
        let a = inputs[0]
        let B = a.shape[0], m = a.shape[1], n = a.shape[2], k = Swift.min(m, n)
        if B == 0 { return }
        func read(_ t: Tensor, _ b: Int) -> [Double] {
            let per = t.count / Swift.max(1, t.shape[0])
            var v = [Double](repeating: 0, count: per)
            switch t.dtype {
            case .float32: let p = t.ptr(Float.self) + b * per; for i in 0..<per { v[i] = Double(p[i]) }
            case .float64: let p = t.ptr(Double.self) + b * per; for i in 0..<per { v[i] = p[i] }
            default: fatalError("Ember CPU factorize: \(t.dtype) operand (please report this)")
            }
            return v
        }
        func write(_ v: [Double], _ t: Tensor, _ b: Int) {
            let per = t.count / Swift.max(1, t.shape[0])
            switch t.dtype {
            case .float32: let p = t.ptr(Float.self) + b * per; for i in 0..<per { p[i] = Float(v[i]) }
            case .float64: let p = t.ptr(Double.self) + b * per; for i in 0..<per { p[i] = v[i] }
            case .int32: let p = t.ptr(Int32.self) + b * per; for i in 0..<per { p[i] = Int32(v[i]) }
            default: fatalError("Ember CPU factorize: \(t.dtype) output (please report this)")
            }
        }
        parallelTasks(B) { b in
            var x = read(a, b)
            switch f {
            case .lu:
                var piv = [Int32](repeating: 0, count: k)
                let info = x.withUnsafeMutableBufferPointer { p in piv.withUnsafeMutableBufferPointer { Dense.lu(p.baseAddress!, m: m, n: n, pivots: $0.baseAddress!) } }
                write(x, outputs[0], b)
                write(piv.map(Double.init), outputs[1], b)
                write([Double(info)], outputs[2], b)
            case .cholesky:
                let info = x.withUnsafeMutableBufferPointer { Dense.cholesky($0.baseAddress!, n: n) }
                write(x, outputs[0], b)
                write([Double(info)], outputs[1], b)
            case .geqrf:
                var tau = [Double](repeating: 0, count: k)
                x.withUnsafeMutableBufferPointer { p in tau.withUnsafeMutableBufferPointer { Dense.geqrf(p.baseAddress!, m: m, n: n, tau: $0.baseAddress!) } }
                write(x, outputs[0], b)
                write(tau, outputs[1], b)
            case .qr(let complete):
                var tau = [Double](repeating: 0, count: k)
                x.withUnsafeMutableBufferPointer { p in tau.withUnsafeMutableBufferPointer { Dense.geqrf(p.baseAddress!, m: m, n: n, tau: $0.baseAddress!) } }
                let qc = complete ? m : k, rr = complete ? m : k
                var q = [Double](repeating: 0, count: m * qc)
                x.withUnsafeBufferPointer { p in
                    tau.withUnsafeBufferPointer { t in
                        q.withUnsafeMutableBufferPointer { Dense.orgqr(p.baseAddress!, m: m, n: n, tau: t.baseAddress!, k: k, $0.baseAddress!, columns: qc) }
                    }
                }
                var r = [Double](repeating: 0, count: rr * n)
                for i in 0..<Swift.min(rr, m) { for j in i..<Swift.max(n, i) { r[i * n + j] = x[i * n + j] } }
                write(q, outputs[0], b)
                write(r, outputs[1], b)
            case .eigh:
                var w = [Double](repeating: 0, count: n), v = [Double](repeating: 0, count: n * n)
                x.withUnsafeMutableBufferPointer { p in
                    w.withUnsafeMutableBufferPointer { wp in v.withUnsafeMutableBufferPointer { Dense.eigh(p.baseAddress!, n: n, wp.baseAddress!, $0.baseAddress!) } }
                }
                write(w, outputs[0], b)
                write(v, outputs[1], b)
            case .svd(let full):
                var u = [Double](repeating: 0, count: m * (full ? m : k)), s = [Double](repeating: 0, count: k)
                var vh = [Double](repeating: 0, count: (full ? n : k) * n)
                x.withUnsafeBufferPointer { p in
                    u.withUnsafeMutableBufferPointer { up in
                        s.withUnsafeMutableBufferPointer { sp in
                            vh.withUnsafeMutableBufferPointer { Dense.svd(p.baseAddress!, m: m, n: n, full: full, up.baseAddress!, sp.baseAddress!, $0.baseAddress!) }
                        }
                    }
                }
                write(u, outputs[0], b)
                write(s, outputs[1], b)
                write(vh, outputs[2], b)
            case .triangularSolve(let upper, let left, let unit):
                var rhs = read(inputs[1], b)
                let r = left ? inputs[1].shape[2] : inputs[1].shape[1]
                x.withUnsafeBufferPointer { p in
                    rhs.withUnsafeMutableBufferPointer { q in
                        if left {
                            Dense.triangularSolve(p.baseAddress!, rowStride: n, colStride: 1, n: n, upper: upper, unitDiagonal: unit,
                                                  q.baseAddress!, rowStride: r, colStride: 1, k: r)
                        } else {
                            // X A = B  ⇔  Aᵀ Xᵀ = Bᵀ: the transposes are stride swaps.
                            Dense.triangularSolve(p.baseAddress!, rowStride: 1, colStride: n, n: n, upper: !upper, unitDiagonal: unit,
                                                  q.baseAddress!, rowStride: 1, colStride: n, k: r)
                        }
                    }
                }
                write(rhs, outputs[0], b)
            }
        }
    }
}
