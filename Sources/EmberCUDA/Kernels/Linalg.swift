import EmberCore

// Matrix products on the GPU: cuBLAS for float32/float64 (strided-batched GEMM), else an
// elementwise product and a reduction (no kernels of their own).

extension CUDABackend {
    func matmul(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = out.shape[0], M = out.shape[1], N = out.shape[2], K = a.shape[2]
        if B == 0 || M == 0 || N == 0 { return }
        if K == 0 { fill(out, 0); return }
        if let cublas = dev.cublas, out.dtype == .float32 || out.dtype == .float64 {
            gemm(cublas, a, b, out, beta: 0)
            return
        }
        // Other dtypes: C = A·B elementwise over (b, i, j) with a K loop (the reduction kernel
        // over a broadcast product would need K× memory).
        let prod = Tensor.empty([B, M, K, N], dtype: out.dtype, device: out.device)
        binary(.mul, a.unsqueeze(3).expand([B, M, K, N]), b.unsqueeze(1).expand([B, M, K, N]), prod)
        reduce(.sum, prod, dims: [2], out.unsqueeze(2))
    }

    /// `out = A·B (+ beta·out)` through cuBLAS's strided-batched GEMM (row-major operands are
    /// handed over as the transposed column-major problem; other layouts are copied first).
    private func gemm(_ cublas: CUBLAS, _ a0: Tensor, _ b0: Tensor, _ out: Tensor, beta: Double) {
        let B = out.shape[0], M = out.shape[1], N = out.shape[2], K = a0.shape[2]
        func operand(_ t: Tensor) -> (Tensor, transposed: Bool, ld: Int, batchStride: Int) {
            let s = t.strides
            if s[2] == 1 && s[1] >= t.shape[2] { return (t, false, s[1], s[0]) }
            if s[1] == 1 && s[2] >= t.shape[1] { return (t, true, s[2], s[0]) }
            return (contiguous(t), false, t.shape[2], t.shape[1] * t.shape[2])
        }
        let (a, ta, lda, sa) = operand(a0)
        let (b, tb, ldb, sb) = operand(b0)
        if !out.isContiguous { fatalError("Ember CUDA matmul: output of shape \(out.shape) must be contiguous (please report this)") }
        dev.makeCurrent()
        _ = cublas.setStream(cublas.handle, dev.stream)
        // Row-major C[M,N] = A·B  ⇔  column-major Cᵀ[N,M] = Bᵀ·Aᵀ.
        let opB: Int32 = tb ? 1 : 0, opA: Int32 = ta ? 1 : 0
        let rc: Int32
        if out.dtype == .float32 {
            var alpha: Float = 1, betaF = Float(beta)
            rc = cublas.sgemmStridedBatched(cublas.handle, opB, opA, Int32(N), Int32(M), Int32(K), &alpha,
                                            address(b), Int32(max(ldb, 1)), Int64(sb), address(a), Int32(max(lda, 1)), Int64(sa),
                                            &betaF, address(out), Int32(N), Int64(M * N), Int32(B))
        } else {
            var alpha: Double = 1, betaD = beta
            rc = cublas.dgemmStridedBatched(cublas.handle, opB, opA, Int32(N), Int32(M), Int32(K), &alpha,
                                            address(b), Int32(max(ldb, 1)), Int64(sb), address(a), Int32(max(lda, 1)), Int64(sa),
                                            &betaD, address(out), Int32(N), Int64(M * N), Int32(B))
        }
        if rc != 0 { fatalError("Ember CUDA: cuBLAS GEMM [\(B), \(M), \(K)]·[\(B), \(K), \(N)] failed with status \(rc)") }
    }

    func matmulSumBatches(_ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let B = a.shape[0]
        guard let cublas = dev.cublas, out.dtype == .float32 || out.dtype == .float64 else {
            let full = Tensor.empty([B, out.shape[0], out.shape[1]], dtype: out.dtype, device: out.device)
            matmul(a, b, full)
            reduce(.sum, full, dims: [0], out.unsqueeze(0))
            return
        }
        // Σ_i A_i·B_i is one product with the batches laid side by side along K:
        // [A_0 … A_{B-1}] (M × B·K) · [B_0; …; B_{B-1}] (B·K × N). A is copied into that
        // layout; B already has it when its batches are stacked rows (else it is copied too).
        // One cuBLAS call instead of one per batch.
        let M = a.shape[1], K = a.shape[2], N = b.shape[2]
        let (a2, b2) = withNoGrad { () -> (Tensor, Tensor) in
            let aa = a.permute(1, 0, 2).contiguous().reshape([1, M, B * K])
            let bs = b.strides
            let stacked = (bs[2] == 1 && bs[1] == N && bs[0] == K * N) ? b : b.contiguous()
            return (aa, stacked.reshape([1, B * K, N]))
        }
        gemm(cublas, a2, b2, out.unsqueeze(0), beta: 0)
    }

    func linear(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, relu: Bool, _ out: Tensor) {
        let (m, n) = (x.shape[0], w.shape[0])
        matmul(x.unsqueeze(0), w.t().unsqueeze(0), out.unsqueeze(0))
        if let bias { binary(.add, out, bias.reshape([1, n]).expand([m, n]), out) }
        if relu { unary(.relu, out, out) }
    }
}
