import EmberCore

// The matrix factorizations on the GPU. cuSOLVER is not bound yet: each call copies its
// operands to the host, factors there with the CPU backend (the same LAPACK conventions),
// and copies the results back — one transfer each way, named in `ember info`.

extension CUDABackend {
    /// What `ember info` says about the factorizations on this backend.
    public static let factorizationPath = "linalg factorizations (lu, cholesky, qr, eigh, svd, triangular solve): on the host, one copy each way (cuSOLVER not bound yet)"

    func factorize(_ f: Factorization, _ inputs: [Tensor], _ outputs: [Tensor]) {
        let host = Device.cpu
        let hostIn = inputs.map { $0.to(host) }
        let hostOut = outputs.map { Tensor.empty($0.shape, dtype: $0.dtype, device: host) }
        CPUBackend.shared.factorize(f, hostIn, hostOut)
        for (h, o) in zip(hostOut, outputs) where o.count > 0 { copy(h.to(o.device), into: o) }
    }
}
