// What `torch.linalg` builds on the factorizations: pseudo-inverses, ranks, norms, condition
// numbers, least squares, powers, exponentials, tensor inverses and solves, Householder
// products, and the older `torch.*` spellings (`inverse`, `cholesky_solve`, `lu_solve`, ...).
// All composed of differentiable ops, so their derivatives follow.

import RealModule

extension Linalg {
    /// The default tolerance of `pinv`/`matrix_rank`: `max(atol, rtol · σ_max)` with
    /// `rtol = eps · max(m, n)` when neither is given (PyTorch's rule).
    static func tolerance(_ A: Tensor, _ sMax: Tensor, atol: Tensor?, rtol: Tensor?) -> Tensor {
        let m = A.shape[A.rank - 2], n = A.shape[A.rank - 1]
        let eps = A.dtype == .float64 ? Double.ulpOfOne : Double(Float.ulpOfOne)
        let r = rtol ?? (atol == nil ? Tensor.number(eps * Double(Swift.max(m, n)), like: sMax) : Tensor.number(0.0, like: sMax))
        let t = sMax * r
        return atol.map { Tensor.maximum(t, $0) } ?? t
    }

    /// The Moore–Penrose pseudo-inverse (`torch.linalg.pinv`): singular values at or below
    /// `max(atol, rtol · σ_max)` count as zero; `hermitian` uses `eigh`.
    public static func pinv(_ A: Tensor, atol: Tensor? = nil, rtol: Tensor? = nil, hermitian: Bool = false) -> Tensor {
        let op = "linalg.pinv"
        _ = batch(A, op, square: hermitian)
        let m = A.shape[A.rank - 2], n = A.shape[A.rank - 1]
        if m == 0 || n == 0 { return Tensor.zeros(Array(A.shape.dropLast(2)) + [n, m], dtype: A.dtype, device: A.device) }
        let p = withNoGrad { () -> Tensor in
            if hermitian {
                let (w, v) = eigh(A)
                let absW = w.abs()
                let tol = tolerance(A, absW.amax(dim: -1, keepdim: true), atol: atol?.unsqueeze(-1), rtol: rtol?.unsqueeze(-1))
                let inv = Tensor.where(absW.gt(tol), w.reciprocal(), Tensor.zerosLike(w))
                return (v * inv.unsqueeze(-2)).matmul(v.mT)
            }
            let (u, s, vh) = svd(A, fullMatrices: false)
            let tol = tolerance(A, s.narrow(-1, start: 0, length: 1), atol: atol?.unsqueeze(-1), rtol: rtol?.unsqueeze(-1))
            let inv = Tensor.where(s.gt(tol), s.reciprocal(), Tensor.zerosLike(s))
            return (vh.mT * inv.unsqueeze(-2)).matmul(u.mT)
        }
        guard anyNeedsGrad(A) else { return p }
        record(p, "LinalgPinvBackward", [A]) { c in
            let P = c.createGraph ? pinv(A, atol: atol, rtol: rtol, hermitian: hermitian) : p
            return [pinvBackward(c.grad, P, A)]
        }
        return p
    }

    /// PyTorch's `pinv_backward`, which holds for rank-deficient matrices too.
    static func pinvBackward(_ g: Tensor, _ P: Tensor, _ A: Tensor) -> Tensor {
        let m = A.shape[A.rank - 2], n = A.shape[A.rank - 1]
        let Ph = P.mT, gh = g.mT
        if m <= n {
            let K = gh.matmul(P), KPh = K.matmul(Ph)
            return -(P.matmul(K)).mT + KPh - A.matmul(P).matmul(KPh) + Ph.matmul(P).matmul(gh - K.matmul(A))
        }
        let K = P.matmul(gh), PhK = Ph.matmul(K)
        return -(K.matmul(P)).mT + (gh - A.matmul(K)).matmul(P).matmul(Ph) + PhK - PhK.matmul(P).matmul(A)
    }

    /// The number of singular values (absolute eigenvalues with `hermitian`) above the
    /// tolerance of `pinv` (`torch.linalg.matrix_rank`), as int64.
    public static func matrixRank(_ A: Tensor, atol: Tensor? = nil, rtol: Tensor? = nil, hermitian: Bool = false) -> Tensor {
        let op = "linalg.matrix_rank"
        _ = batch(A, op, square: hermitian)
        let m = A.shape[A.rank - 2], n = A.shape[A.rank - 1]
        if m == 0 || n == 0 { return Tensor.zeros(Array(A.shape.dropLast(2)), dtype: .int64, device: A.device) }
        return withNoGrad {
            let s = hermitian ? eigvalsh(A).abs() : svdvals(A)
            let tol = tolerance(A, s.amax(dim: -1, keepdim: true), atol: atol?.unsqueeze(-1), rtol: rtol?.unsqueeze(-1))
            return s.gt(tol).to(.int64).sum(dim: -1)
        }
    }

    /// A matrix norm over `dim` (`torch.linalg.matrix_norm`): "fro", "nuc", or ±1, ±2, ±∞.
    public static func matrixNorm(_ A: Tensor, ord: MatrixNormOrder = .fro, dim: (Int, Int) = (-2, -1), keepdim: Bool = false) -> Tensor {
        let op = "linalg.matrix_norm"
        checked {
            try require(A.rank >= 2, "\(op): The input tensor A must have at least 2 dimensions (got \(fmt(A.shape)))")
            try require(A.dtype.isFloatingPoint, "\(op): Expected a floating point tensor as input. Got \(A.dtype)")
        }
        let r = A.rank
        let d0 = dim.0 < 0 ? dim.0 + r : dim.0, d1 = dim.1 < 0 ? dim.1 + r : dim.1
        checked { try require(d0 != d1 && (0..<r).contains(d0) && (0..<r).contains(d1), "\(op): dims must be different, got (\(dim.0), \(dim.1)) for a \(r)-D input") }
        func keep(_ t: Tensor) -> Tensor { keepdim ? t.unsqueeze(Swift.min(d0, d1)).unsqueeze(Swift.max(d0, d1)) : t }
        switch ord {
        case .fro: return Linalg.vectorNorm(A, ord: 2, dim: [d0, d1], keepdim: keepdim)
        case .nuc, .two, .minusTwo:
            let s = svdvals(A.movedim([d0, d1], [r - 2, r - 1]))
            let v = ord == .nuc ? s.sum(dim: -1) : (ord == .two ? s.amax(dim: -1) : s.amin(dim: -1))
            return keep(v)
        case .one, .minusOne, .inf, .minusInf:
            // 1: the largest column sum of |a|; ∞: the largest row sum.
            let sumDim = ord == .one || ord == .minusOne ? d0 : d1, other = sumDim == d0 ? d1 : d0
            let sums = A.abs().sum(dim: sumDim, keepdim: true)
            let e = ord == .one || ord == .inf ? sums.amax(dim: other, keepdim: true) : sums.amin(dim: other, keepdim: true)
            return keepdim ? e : e.squeeze(dims: [d0, d1])
        }
    }

    /// The orders of `matrixNorm`.
    public enum MatrixNormOrder: Equatable, Sendable {
        case fro, nuc, one, minusOne, two, minusTwo, inf, minusInf
        /// PyTorch's spelling: a string ("fro", "nuc") or a number (±1, ±2, ±inf).
        public init?(_ s: String) {
            switch s { case "fro": self = .fro; case "nuc": self = .nuc; default: return nil }
        }
        public init?(_ v: Double) {
            switch v {
            case 1: self = .one
            case -1: self = .minusOne
            case 2: self = .two
            case -2: self = .minusTwo
            case .infinity: self = .inf
            case -.infinity: self = .minusInf
            default: return nil
            }
        }
    }

    /// `torch.linalg.norm`: a vector norm (`ord` a number, over `dim` or all elements), or a
    /// matrix norm when `matrixOrd` is given or `dim` names two dimensions.
    public static func norm(_ x: Tensor, ord: Double? = nil, matrixOrd: MatrixNormOrder? = nil, dim: [Int]? = nil,
                            keepdim: Bool = false) -> Tensor {
        let op = "linalg.norm"
        if let dim, dim.count == 2 {
            if let o = matrixOrd ?? ord.map({ v in checked { () throws -> MatrixNormOrder in
                guard let o = MatrixNormOrder(v) else { throw EmberError.invalidArgument("\(op): Order \(v) not supported for a matrix norm") }
                return o
            } }) { return matrixNorm(x, ord: o, dim: (dim[0], dim[1]), keepdim: keepdim) }
            return matrixNorm(x, ord: .fro, dim: (dim[0], dim[1]), keepdim: keepdim)
        }
        if let matrixOrd {
            checked { try require(x.rank == 2 && dim == nil, "\(op): matrix norm '\(matrixOrd)' needs a 2-D input or two dims, got shape \(fmt(x.shape)) and dim \(dim.map { "\($0)" } ?? "None")") }
            return matrixNorm(x, ord: matrixOrd, keepdim: keepdim)
        }
        if let ord, dim == nil, x.rank == 2 {
            return matrixNorm(x, ord: checked { () throws -> MatrixNormOrder in
                guard let o = MatrixNormOrder(ord) else { throw EmberError.invalidArgument("\(op): Order \(ord) not supported for a matrix norm") }
                return o
            }, keepdim: keepdim)
        }
        checked { try require(ord == nil || dim != nil || x.rank <= 1, "\(op): If dim is not specified but ord is, the input must be 1D or 2D. Got \(x.rank)D.") }
        return Linalg.vectorNorm(x, ord: ord ?? 2, dim: dim, keepdim: keepdim)
    }

    /// The condition number (`torch.linalg.cond`): `σ_max / σ_min` for p = 2 (the default),
    /// `σ_min / σ_max` for −2, else `‖A‖_p ‖A⁻¹‖_p` for square A.
    public static func cond(_ A: Tensor, p: MatrixNormOrder? = nil) -> Tensor {
        let p = p ?? .two
        if p == .two || p == .minusTwo {
            let s = svdvals(A)
            let k = s.shape[s.rank - 1]
            let first = s.narrow(-1, start: 0, length: 1), last = s.narrow(-1, start: k - 1, length: 1)
            return (p == .two ? first / last : last / first).squeeze(-1)
        }
        return matrixNorm(A, ord: p) * matrixNorm(inv(A), ord: p)
    }

    /// `Aⁿ` for square matrices (`torch.linalg.matrix_power`): the identity for 0, the
    /// inverse's power for negative n (binary powering).
    public static func matrixPower(_ A: Tensor, _ n: Int) -> Tensor {
        let op = "linalg.matrix_power"
        checked {
            try require(A.rank >= 2 && A.shape[A.rank - 1] == A.shape[A.rank - 2],
                        "\(op): A must be batches of square matrices, but got shape \(fmt(A.shape))")
        }
        let size = A.shape[A.rank - 1]
        if n == 0 { return Tensor.eye(size, dtype: A.dtype, device: A.device).expand(A.shape).contiguous() }
        var base = n < 0 ? inv(A) : A
        var k = Swift.abs(n)
        var result: Tensor? = nil
        while k > 0 {
            if k & 1 == 1 { result = result.map { $0.matmul(base) } ?? base }
            k >>= 1
            if k > 0 { base = base.matmul(base) }
        }
        return result!
    }

    /// `exp(A) = Σ Aᵏ/k!` of square matrices (`torch.matrix_exp`): scaling and squaring with
    /// a degree-18 Taylor polynomial (float64-accurate for ‖A/2ˢ‖₁ ≤ 1/2).
    public static func matrixExp(_ A: Tensor) -> Tensor {
        let op = "matrix_exp"
        _ = batch(A, op, square: true)
        let n = A.shape[A.rank - 1]
        if A.count == 0 { return A.clone() }
        // float32 is computed in float64: the powers cancel, and PyTorch's float32 result is
        // closer to float64's than a float32 polynomial gets.
        if A.dtype == .float32 { return matrixExp(A.to(.float64)).to(.float32) }
        let norm = withNoGrad { A.abs().sum(dim: -2).amax().item() }
        let s = norm > 0.5 ? Int(Double.log2(norm / 0.5).rounded(.up)) : 0
        let X = s > 0 ? A / Double(1 << Swift.min(s, 62)) : A
        let eye = Tensor.eye(n, dtype: A.dtype, device: A.device)
        var T = eye + X / 18.0
        for k in stride(from: 17, through: 1, by: -1) { T = eye + X.matmul(T) / Double(k) }
        for _ in 0..<s { T = T.matmul(T) }
        return T
    }

    /// Least squares `min ‖A X − B‖` (`torch.linalg.lstsq`): the solution, the residuals'
    /// squared norms (for m > n with full rank, drivers other than "gelsy"; else empty), the
    /// rank ("gelsy", "gelsd", "gelss"; else empty) and the singular values ("gelsd",
    /// "gelss"; else empty). Full-rank A through QR, as LAPACK's "gels".
    public static func lstsq(_ A: Tensor, _ B: Tensor, rcond: Double? = nil, driver: String? = nil)
        -> (solution: Tensor, residuals: Tensor, rank: Tensor, singularValues: Tensor) {
        let op = "linalg.lstsq"
        let driver = driver ?? "gelsy"
        checked {
            try require(["gels", "gelsy", "gelsd", "gelss"].contains(driver),
                        "\(op): parameter `driver` should be one of (gels, gelsy, gelsd, gelss), got \(driver)")
            try require(A.rank >= 2 && B.rank >= 1, "\(op): input must have at least 2 dimensions (A \(fmt(A.shape)), B \(fmt(B.shape)))")
        }
        let vector = B.rank == A.rank - 1
        let b = vector ? B.unsqueeze(-1) : B
        let m = A.shape[A.rank - 2], n = A.shape[A.rank - 1]
        checked { try require(b.shape[b.rank - 2] == m, "\(op): input.size(-2) should match other.size(-2), got \(m) and \(b.shape[b.rank - 2])") }
        let (a2, b2) = broadcastBatch(A, b, op)
        var x: Tensor
        if m >= n {
            let (Q, R) = qr(a2)
            x = solveTriangular(R, Q.mT.matmul(b2), upper: true)
        } else {
            let (Q, R) = qr(a2.mT)
            x = Q.matmul(solveTriangular(R.mT, b2, upper: false))
        }
        var residuals = Tensor.empty([0], dtype: A.dtype, device: A.device)
        if m > n && driver != "gelsy" {
            residuals = (a2.matmul(x) - b2).square().sum(dim: -2)
            if vector { residuals = residuals.squeeze(-1) }
        }
        var rank = Tensor.empty([0], dtype: .int64, device: A.device)
        var sv = Tensor.empty([0], dtype: A.dtype, device: A.device)
        if driver != "gels" {
            let rtol = Tensor.number(rcond ?? (A.dtype == .float64 ? Double.ulpOfOne : Double(Float.ulpOfOne)) * Double(Swift.max(m, n)), like: A)
            rank = matrixRank(a2.detach(), rtol: rtol)
            if driver == "gelsd" || driver == "gelss" { sv = withNoGrad { svdvals(a2.detach()) } }
        }
        if vector { x = x.squeeze(-1) }
        return (x, residuals, rank, sv)
    }

    /// The inverse of a tensor as a linear map from its last dimensions to its first `ind`
    /// (`torch.linalg.tensorinv`): shape `shape[ind...] + shape[..<ind]`.
    public static func tensorinv(_ A: Tensor, ind: Int = 2) -> Tensor {
        let op = "linalg.tensorinv"
        let outer = Array(A.shape.prefix(ind)), inner = Array(A.shape.dropFirst(ind))
        checked {
            try require(ind > 0, "\(op): Expected a strictly positive integer for 'ind', but got \(ind)")
            try require(outer.reduce(1, *) == inner.reduce(1, *),
                        "\(op): Expected self to satisfy the requirement prod(self.shape[ind:]) == prod(self.shape[:ind]), but got \(inner.reduce(1, *)) != \(outer.reduce(1, *)) (shape \(fmt(A.shape)))")
        }
        let k = outer.reduce(1, *)
        return inv(A.reshape([k, k])).reshape(inner + outer)
    }

    /// Solves `tensordot(A, X, X.ndim) = B` for X (`torch.linalg.tensorsolve`); `dims` are
    /// moved to the end of A first.
    public static func tensorsolve(_ A: Tensor, _ B: Tensor, dims: [Int]? = nil) -> Tensor {
        let op = "linalg.tensorsolve"
        var a = A
        if let dims {
            let r = A.rank
            let ds = dims.map { $0 < 0 ? $0 + r : $0 }
            a = A.movedim(ds, Array((r - ds.count)..<r))
        }
        let xShape = Array(a.shape.dropFirst(B.rank))
        let k = B.count
        checked {
            try require(a.shape.prefix(B.rank).reduce(1, *) == k && xShape.reduce(1, *) == k,
                        "\(op): Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), but got shape \(fmt(a.shape)) and other \(fmt(B.shape))")
        }
        return solve(a.reshape([k, k]), B.reshape([k])).reshape(xShape)
    }

    /// The Vandermonde matrix `[..., n, N]` with columns `x⁰, x¹, …, x^{N−1}`
    /// (`torch.linalg.vander`; N defaults to n).
    public static func vander(_ x: Tensor, N: Int? = nil) -> Tensor {
        let op = "linalg.vander"
        let x1 = x.rank == 0 ? x.unsqueeze(0) : x
        let n = x1.shape[x1.rank - 1], cols = N ?? n
        checked { try require(cols > 1 || N == nil, "\(op): N must be greater than 1.") }
        var powers = [Tensor.onesLike(x1)]
        for _ in 1..<Swift.max(cols, 1) { powers.append(powers[powers.count - 1] * x1) }
        return Tensor.stack(Array(powers.prefix(cols)), dim: -1)
    }

    /// The first n columns of `H₁ H₂ … H_k`, `Hᵢ = I − τᵢ vᵢ vᵢᵀ` with the vectors below the
    /// diagonal of `A` `[..., m, n]` (unit first entries) (`torch.linalg.householder_product`).
    public static func householderProduct(_ A: Tensor, _ tau: Tensor) -> Tensor {
        let op = "linalg.householder_product"
        let m = A.shape[A.rank - 2], n = A.shape[A.rank - 1], k = tau.shape[tau.rank - 1]
        checked {
            try require(m >= n, "\(op): input.shape[-2] must be greater than or equal to input.shape[-1] (got \(fmt(A.shape)))")
            try require(n >= k, "\(op): input.shape[-1] must be greater than or equal to tau.shape[-1] (got \(fmt(A.shape)) and tau \(fmt(tau.shape)))")
        }
        if A.dtype == .float32 { return householderProduct(A.to(.float64), tau.to(.float64)).to(.float32) }  // as LAPACK accumulates
        let eye = Tensor.eye(m, n, dtype: A.dtype, device: A.device).expand(Array(A.shape.dropLast(2)) + [m, n])
        return applyReflectors(A, tau, to: eye, left: true, transpose: false)
    }

    /// `op(Q)·C` or `C·op(Q)` for Q of the reflectors of `A`/`tau` (`ormqr`), reflector by
    /// reflector.
    static func applyReflectors(_ A: Tensor, _ tau: Tensor, to C: Tensor, left: Bool, transpose: Bool) -> Tensor {
        let m = A.shape[A.rank - 2], k = tau.shape[tau.rank - 1]
        var out = C
        // Q = H₁…H_k. Q C applies H_k first; Qᵀ C applies H₁ first; C Q applies H₁ first.
        let order = (left != transpose) ? Array((0..<k).reversed()) : Array(0..<k)
        for j in order {
            let below = A.narrow(-1, start: j, length: 1).narrow(-2, start: j + 1, length: m - j - 1)
            let lead = Array(A.shape.dropLast(2))
            let head = Tensor.ones(lead + [1, 1], dtype: A.dtype, device: A.device)
            let zeros = Tensor.zeros(lead + [j, 1], dtype: A.dtype, device: A.device)
            let v = Tensor.cat([zeros, head, below], dim: -2)  // [..., m, 1]
            let t = tau.narrow(-1, start: j, length: 1).unsqueeze(-1)  // [..., 1, 1]
            if left {
                out = out - (v * t).matmul(v.mT.matmul(out))
            } else {
                out = out - out.matmul(v).matmul((v * t).mT)
            }
        }
        return out
    }

    /// Householder QR as LAPACK's `geqrf` returns it: R on and above the diagonal, the
    /// reflectors below, and their scales `tau` (`torch.geqrf`; not differentiable).
    public static func geqrf(_ A: Tensor) -> (a: Tensor, tau: Tensor) {
        let (a3, lead) = batch(A, "geqrf")
        let m = a3.shape[1], n = a3.shape[2]
        let outs = run(.geqrf, [a3], [(a3.shape, a3.dtype), ([a3.shape[0], Swift.min(m, n)], a3.dtype)])
        return (outs[0].reshape(lead + [m, n]), outs[1].reshape(lead + [Swift.min(m, n)]))
    }
}

extension Tensor {
    /// The determinant (`torch.det`).
    public func det() -> Tensor { Linalg.det(self) }
    /// log det; NaN for a negative determinant, −∞ for zero (`torch.logdet`).
    public func logdet() -> Tensor {
        let (sign, logabs) = Linalg.slogdet(self)
        return Tensor.where(sign.lt(0), Tensor.fullLike(logabs, .nan), logabs)
    }
    /// The inverse (`torch.inverse`).
    public func inverse() -> Tensor { Linalg.inv(self) }
    /// The pseudo-inverse with singular values at or below `rcond · σ_max` dropped
    /// (`torch.pinverse`).
    public func pinverse(rcond: Double = 1e-15) -> Tensor { Linalg.pinv(self, rtol: Tensor.number(rcond, like: self)) }
    /// The Cholesky factor (`torch.cholesky`; lower unless `upper`).
    public func cholesky(upper: Bool = false) -> Tensor { Linalg.cholesky(self, upper: upper) }
    /// The matrix exponential (`torch.matrix_exp`).
    public func matrixExp() -> Tensor { Linalg.matrixExp(self) }

    /// Solves `A X = B` given A's Cholesky factor (`torch.cholesky_solve(B, L, upper)`).
    /// The derivative (PyTorch's) treats L as a full matrix: `gL = −(gB Xᵀ + X gBᵀ) L`.
    public static func choleskySolve(_ B: Tensor, _ L: Tensor, upper: Bool = false) -> Tensor {
        let x = withNoGrad { () -> Tensor in
            let lower = upper ? L.mT : L
            return Linalg.solveTriangular(lower.mT, Linalg.solveTriangular(lower, B, upper: false), upper: true)
        }
        guard anyNeedsGrad(B, L) else { return x }
        record(x, "CholeskySolveBackward", [B, L]) { c in
            let X = c.createGraph ? choleskySolve(B, L, upper: upper) : x
            let gB = choleskySolve(c.grad, L, upper: upper)
            var gL: Tensor? = nil
            if c.needsGrad(1) {
                let t = gB.matmul(X.mT)
                let common = t + t.mT
                gL = sumToBatch(upper ? -(L.matmul(common)) : -(common.matmul(L)), L.shape)
            }
            return [c.needsGrad(0) ? sumToBatch(gB, B.shape) : nil, gL]
        }
        return x
    }
    /// The inverse of `A = L Lᵀ` from its Cholesky factor (`torch.cholesky_inverse`); the
    /// derivative (PyTorch's) treats L as a full matrix.
    public static func choleskyInverse(_ L: Tensor, upper: Bool = false) -> Tensor {
        let n = L.shape[L.rank - 1]
        let inv = withNoGrad { choleskySolve(Tensor.eye(n, dtype: L.dtype, device: L.device).expand(L.shape), L, upper: upper) }
        guard anyNeedsGrad(L) else { return inv }
        record(inv, "CholeskyInverseBackward", [L]) { c in
            let I = c.createGraph ? choleskyInverse(L, upper: upper) : inv
            let common = I.matmul((c.grad + c.grad.mT).matmul(I))
            return [upper ? -(L.matmul(common)) : -(common.matmul(L))]
        }
        return inv
    }
    /// `torch.triangular_solve(b, A, upper, transpose, unitriangular)`: the solution of
    /// `op(A) X = b` and a copy of A.
    public static func triangularSolve(_ b: Tensor, _ A: Tensor, upper: Bool = true, transpose: Bool = false,
                                       unitriangular: Bool = false) -> (solution: Tensor, clonedCoefficient: Tensor) {
        let x = Linalg.solveTriangular(transpose ? A.mT : A, b, upper: transpose ? !upper : upper, unitriangular: unitriangular)
        return (x, A.clone())
    }
    /// `torch.lu_solve(b, LU, pivots)`.
    public static func luSolve(_ b: Tensor, _ LU: Tensor, _ pivots: Tensor) -> Tensor { Linalg.luSolve(LU, pivots, b) }
    /// `torch.qr(A, some)`: reduced (`some`) or complete.
    public func qr(some: Bool = true) -> (Q: Tensor, R: Tensor) { Linalg.qr(self, mode: some ? "reduced" : "complete") }
    /// `torch.svd(A, some)`: U, S and V (not Vᵀ); reduced with `some`.
    public func svd(some: Bool = true) -> (U: Tensor, S: Tensor, V: Tensor) {
        let (u, s, vh) = Linalg.svd(self, fullMatrices: !some)
        return (u, s, vh.mT)
    }
    /// `torch.ormqr(A, tau, C, left, transpose)`: `op(Q)·C` or `C·op(Q)` for geqrf's Q.
    public static func ormqr(_ A: Tensor, _ tau: Tensor, _ C: Tensor, left: Bool = true, transpose: Bool = false) -> Tensor {
        Linalg.applyReflectors(A, tau, to: C, left: left, transpose: transpose)
    }
}
