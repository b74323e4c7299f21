import EmberCPU

/// Matrix products on the CPU (the packed GEMM of `EmberCPU`, or a system BLAS).
extension CPUBackend {
    public func matmul(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = out.shape[0], M = out.shape[1], N = out.shape[2], K = a.shape[2]
        let (sa, sb) = (a.strides, b.strides)
        let ldc = out.strides[1]
        // Many small products: one thread each; else each product uses every thread.
        let perBatchThreads = (B >= CPUThreads.count && M * N * K < 256 * 256 * 64) ? 1 : CPUThreads.count
        func each(_ body: (Int) -> Void) {
            if perBatchThreads == 1 && B > 1 { parallelTasks(B, body) } else { for i in 0..<B { body(i) } }
        }
        switch out.dtype {
        case .float32:
            let pa = a.ptr(Float.self), pb = b.ptr(Float.self), pc = out.ptr(Float.self)
            each { i in
                GEMM.sgemm(m: M, n: N, k: K, a: pa + i * sa[0], rowStrideA: sa[1], colStrideA: sa[2],
                           b: pb + i * sb[0], rowStrideB: sb[1], colStrideB: sb[2],
                           c: pc + i * out.strides[0], ldc: ldc, threads: perBatchThreads)
            }
        case .float64:
            let pa = a.ptr(Double.self), pb = b.ptr(Double.self), pc = out.ptr(Double.self)
            each { i in
                GEMM.dgemm(m: M, n: N, k: K, a: pa + i * sa[0], rowStrideA: sa[1], colStrideA: sa[2],
                           b: pb + i * sb[0], rowStrideB: sb[1], colStrideB: sb[2],
                           c: pc + i * out.strides[0], ldc: ldc, threads: perBatchThreads)
            }
        default:
            func run<T: CPUNumber>(_: T.Type) {
                let pa = a.ptr(T.self), pb = b.ptr(T.self), pc = out.ptr(T.self)
                each { bi in
                    for i in 0..<M {
                        for j in 0..<N {
                            var acc = T.zero
                            for k in 0..<K {
                                acc = T.add(acc, T.mul(pa[bi * sa[0] + i * sa[1] + k * sa[2]], pb[bi * sb[0] + k * sb[1] + j * sb[2]]))
                            }
                            pc[bi * out.strides[0] + i * ldc + j] = acc
                        }
                    }
                }
            }
            numericSwitch(out.dtype, "matmul", { run(Float.self) }, { run(Double.self) }, { run(Int64.self) },
                          { run(Int32.self) }, { run(UInt8.self) }, { run(Bool.self) })
        }
    }

    public func matmulSumBatches(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = a.shape[0], M = a.shape[1], K = a.shape[2], N = b.shape[2]
        let (sa, sb) = (a.strides, b.strides)
        // Each worker accumulates its share of the batch into its own partial sum.
        let workers = Swift.max(1, Swift.min(CPUThreads.count, B))
        func run<T: BinaryFloatingPoint>(_: T.Type, _ gemm: (Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>, Bool) -> Void) {
            let pa = a.ptr(T.self), pb = b.ptr(T.self), po = out.ptr(T.self)
            let partials = UnsafeMutablePointer<T>.allocate(capacity: workers * M * N)
            defer { partials.deallocate() }
            parallelTasks(workers) { w in
                let dst = w == 0 ? po : partials + w * M * N
                var first = true
                var i = w
                while i < B {
                    gemm(i, pa + i * sa[0], pb + i * sb[0], dst, !first)
                    first = false
                    i += workers
                }
                if first { dst.update(repeating: 0, count: M * N) }
            }
            for w in 1..<workers {
                let src = partials + w * M * N
                for j in 0..<(M * N) { po[j] += src[j] }
            }
        }
        let single = workers > 1 ? 1 : CPUThreads.count
        if out.dtype == .float32 {
            run(Float.self) { _, x, y, c, acc in
                GEMM.sgemm(m: M, n: N, k: K, a: x, rowStrideA: sa[1], colStrideA: sa[2], b: y, rowStrideB: sb[1], colStrideB: sb[2],
                           c: c, ldc: N, accumulate: acc, threads: single)
            }
        } else {
            run(Double.self) { _, x, y, c, acc in
                GEMM.dgemm(m: M, n: N, k: K, a: x, rowStrideA: sa[1], colStrideA: sa[2], b: y, rowStrideB: sb[1], colStrideB: sb[2],
                           c: c, ldc: N, accumulate: acc, threads: single)
            }
        }
    }
}

extension CPUBackend {
    /// The bias fills the output, the product accumulates onto it, and ReLU runs in place
    /// (`addmm` + `relu_` in one buffer).
    public func linear(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, relu: Bool, _ out: Tensor) {
        let (m, k, n) = (x.shape[0], x.shape[1], w.shape[0])
        func run<T: BinaryFloatingPoint>(_: T.Type, _ gemm: (UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>, Bool) -> Void) {
            let o = out.ptr(T.self)
            if let bias {
                let b = bias.ptr(T.self)
                for i in 0..<m { (o + i * n).update(from: b, count: n) }
            }
            gemm(x.ptr(T.self), w.ptr(T.self), o, bias != nil)
            if relu {
                parallelFor(m * n, grain: elementwiseGrain) { r in for i in r where !(o[i] > 0) && !o[i].isNaN { o[i] = 0 } }
            }
        }
        floatSwitch(out.dtype, "linear", {
            run(Float.self) { a, wt, c, acc in
                GEMM.sgemm(m: m, n: n, k: k, a: a, rowStrideA: k, colStrideA: 1, b: wt, rowStrideB: 1, colStrideB: k,
                           c: c, ldc: n, accumulate: acc)
            }
        }, {
            run(Double.self) { a, wt, c, acc in
                GEMM.dgemm(m: m, n: n, k: k, a: a, rowStrideA: k, colStrideA: 1, b: wt, rowStrideB: 1, colStrideB: k,
                           c: c, ldc: n, accumulate: acc)
            }
        })
    }
}
