// The factorizations of `torch.linalg` (LU, Cholesky, QR, eigh, SVD, triangular solves) and
// their derivatives, on the backend's `factorize` primitive. Each op factors a batch
// `[..., m, n]` in one call. A derivative that needs the outputs recomputes them
// differentiably when backward records a graph (double backward), so second derivatives
// come from the same formulas. Several differentiable outputs of one op are views of one
// packed tensor, so their gradients reach the derivative together.

extension Linalg {
    /// The contiguous `[B, m, n]` batch of `a` (detached; float32/float64), its batch shape.
    static func batch(_ a: Tensor, _ op: String, square: Bool = false) -> (Tensor, [Int]) {
        checked {
            try require(a.rank >= 2, "\(op): The input tensor A must have at least 2 dimensions (got shape \(fmt(a.shape)))")
            try require(a.dtype == .float32 || a.dtype == .float64,
                        "\(op): Low precision dtypes not supported. Got \(a.dtype) (shape \(fmt(a.shape))); use float32 or float64")
            if square {
                try require(a.shape[a.rank - 1] == a.shape[a.rank - 2],
                            "\(op): A must be batches of square matrices, but they are \(a.shape[a.rank - 2]) by \(a.shape[a.rank - 1]) matrices")
            }
        }
        let lead = Array(a.shape.dropLast(2))
        return (a.detach().contiguous().reshape([lead.reduce(1, *), a.shape[a.rank - 2], a.shape[a.rank - 1]]), lead)
    }

    /// Runs one factorization into fresh outputs of the given shapes and dtypes.
    static func run(_ f: Factorization, _ inputs: [Tensor], _ outputs: [([Int], DType)]) -> [Tensor] {
        let outs = outputs.map { Tensor(uninitialized: $0.0, dtype: $0.1, device: inputs[0].device) }
        inputs[0].device.backend.factorize(f, inputs, outs)
        return outs
    }

    /// Stops with PyTorch's message when a factorization reported a failure (`info` ≠ 0).
    static func check(_ info: Tensor, _ op: String, _ message: (Int) -> String) {
        let v = info.toArray(Int32.self)
        guard let i = v.firstIndex(where: { $0 != 0 }) else { return }
        let prefix = info.rank > 0 && info.count > 1 ? "(Batch element \(i)): " : ""
        checked { try require(false, "\(op): \(prefix)\(message(Int(v[i])))") }
    }

    /// Records one node for several differentiable outputs (views of one packed tensor).
    static func recordJoint(_ outs: [Tensor], _ name: String, _ inputs: [Tensor],
                            _ derivative: @escaping (BackwardContext, [Tensor]) -> [Tensor?]) -> [Tensor] {
        guard anyNeedsGrad(inputs) else { return outs }
        let shapes = outs.map(\.shape), counts = outs.map(\.count)
        let packed = withNoGrad { Tensor.cat(outs.map { $0.reshape([$0.count]) }, dim: 0) }
        func pieces(_ t: Tensor) -> [Tensor] {
            var off = 0
            return zip(shapes, counts).map { s, k in
                defer { off += k }
                return t.narrow(0, start: off, length: k).reshape(s)
            }
        }
        record(packed, name, inputs) { c in derivative(c, pieces(c.grad)) }
        return pieces(packed)
    }

    /// Makes `x` [..., r, c] batch-broadcast with `y`'s batch dimensions, and `y` with `x`'s.
    static func broadcastBatch(_ x: Tensor, _ y: Tensor, _ op: String) -> (Tensor, Tensor) {
        let batch = checked { try broadcastShapes(Array(x.shape.dropLast(2)), Array(y.shape.dropLast(2)), op: op) }
        return (x.expand(batch + Array(x.shape.suffix(2))), y.expand(batch + Array(y.shape.suffix(2))))
    }

    // MARK: triangular solves

    /// Solves `A X = B` (or `X A = B` with `left: false`) for triangular `A` (only the `upper`
    /// or lower triangle is read; a unit diagonal assumed with `unitriangular`), batched
    /// with broadcasting (`torch.linalg.solve_triangular`).
    public static func solveTriangular(_ A: Tensor, _ B: Tensor, upper: Bool, left: Bool = true,
                                       unitriangular: Bool = false) -> Tensor {
        let op = "linalg.solve_triangular"
        checked {
            try require(A.rank >= 2 && B.rank >= 2,
                        "\(op): The input tensor A must have at least 2 dimensions (got A \(fmt(A.shape)), B \(fmt(B.shape)))")
            try require(A.shape[A.rank - 1] == A.shape[A.rank - 2],
                        "\(op): A must be batches of square matrices, but they are \(A.shape[A.rank - 2]) by \(A.shape[A.rank - 1]) matrices")
            let n = A.shape[A.rank - 1]
            let k = left ? B.shape[B.rank - 2] : B.shape[B.rank - 1]
            try require(k == n, "\(op): Incompatible shapes of A and B for the equation \(left ? "AX = B" : "XA = B") (\(A.shape[A.rank - 2])x\(n) and \(B.shape[B.rank - 2])x\(B.shape[B.rank - 1]))")
            try require(A.dtype == B.dtype, "\(op): Expected A and B to have the same dtype, but found A of type \(A.dtype) and B of type \(B.dtype) instead")
            try require(A.device == B.device, "\(op): Expected A and B on one device, found \(A.device) and \(B.device)")
        }
        let (a, b) = broadcastBatch(A, B, op)
        let (a3, lead) = batch(a, op, square: true)
        let (b3, _) = batch(b, op)
        let x = run(.triangularSolve(upper: upper, left: left, unitDiagonal: unitriangular), [a3, b3], [(b3.shape, b3.dtype)])[0]
            .reshape(lead + Array(b3.shape.suffix(2)))
        guard anyNeedsGrad(A, B) else { return x }
        record(x, "LinalgSolveTriangularBackward", [A, B]) { c in
            let X = c.createGraph ? solveTriangular(A, B, upper: upper, left: left, unitriangular: unitriangular) : x
            // gB = A⁻ᵀ g (left) or g A⁻ᵀ; gA = −gB Xᵀ (left) or −Xᵀ gB, on A's triangle.
            let gB = solveTriangular(A.mT, c.grad, upper: !upper, left: left, unitriangular: unitriangular)
            var gA: Tensor? = nil
            if c.needsGrad(0) {
                let full = left ? -(gB.matmul(X.mT)) : -(X.mT.matmul(gB))
                gA = upper ? full.triu(diagonal: unitriangular ? 1 : 0) : full.tril(diagonal: unitriangular ? -1 : 0)
            }
            return [gA, c.needsGrad(1) ? gB : nil]
        }
        return x
    }

    // MARK: LU

    /// LU with partial pivoting of `[..., m, n]`: the packed factors and the 1-based int32
    /// pivots of LAPACK (`torch.linalg.lu_factor`). Only `pivot: true` is implemented (as
    /// on PyTorch's CPU).
    public static func luFactor(_ A: Tensor, pivot: Bool = true) -> (LU: Tensor, pivots: Tensor) {
        let r = luFactorEx(A, pivot: pivot)
        return (r.LU, r.pivots)
    }

    /// `luFactor` with LAPACK's `info` per matrix (0, or the 1-based column of the first zero
    /// pivot); with `checkErrors` a singular matrix stops instead.
    public static func luFactorEx(_ A: Tensor, pivot: Bool = true, checkErrors: Bool = false)
        -> (LU: Tensor, pivots: Tensor, info: Tensor) {
        let op = "linalg.lu_factor"
        checked { try require(pivot, "\(op): LU without pivoting is not implemented on the CPU (shape \(fmt(A.shape)))") }
        let (a3, lead) = batch(A, op)
        let B = a3.shape[0], m = a3.shape[1], n = a3.shape[2], k = Swift.min(m, n)
        let outs = run(.lu, [a3], [(a3.shape, a3.dtype), ([B, k], .int32), ([B], .int32)])
        let lu = outs[0].reshape(lead + [m, n]), pivots = outs[1].reshape(lead + [k]), info = outs[2].reshape(lead)
        if checkErrors { check(info, op, { "The factorization could not be completed because the input is singular (U[\($0), \($0)] is zero)" }) }
        guard anyNeedsGrad(A) else { return (lu, pivots, info) }
        let LU = recordJoint([lu], "LinalgLuFactorExBackward", [A]) { c, g in
            let packedLU = c.createGraph ? luFactor(A).LU : lu
            let (P, L, U) = Tensor.luUnpack(packedLU, pivots)
            return [luBackward(gL: g[0].narrow(-1, start: 0, length: k).tril(diagonal: -1),
                               gU: g[0].narrow(-2, start: 0, length: k).triu(), P: P, L: L, U: U)]
        }[0]
        return (LU, pivots, info)
    }

    /// The gradient of `A = P L U` from those of L `[m, k]` and U `[k, n]` (PyTorch's
    /// `linalg_lu_backward`: square, wide and tall cases).
    static func luBackward(gL: Tensor, gU: Tensor, P: Tensor, L: Tensor, U: Tensor) -> Tensor {
        let m = L.shape[L.rank - 2], n = U.shape[U.rank - 1], k = Swift.min(m, n)
        var gA: Tensor
        if m == n {
            gA = L.mT.matmul(gL).tril(diagonal: -1) + gU.matmul(U.mT).triu()
            gA = solveTriangular(U.mT, gA, upper: false, left: false)
            gA = solveTriangular(L.mT, gA, upper: true, left: true, unitriangular: true)
        } else if m < n {
            let U1 = U.narrow(-1, start: 0, length: k), gU1 = gU.narrow(-1, start: 0, length: k), gU2 = gU.narrow(-1, start: k, length: n - k)
            gA = L.mT.matmul(gL) - gU.triu().matmul(U.mT)
            gA = solveTriangular(U1.mT, gA.tril(diagonal: -1), upper: false, left: false)
            gA = Tensor.cat([gA + gU1.triu(), gU2], dim: -1)
            gA = solveTriangular(L.mT, gA, upper: true, left: true, unitriangular: true)
        } else {
            let L1 = L.narrow(-2, start: 0, length: k), gL1 = gL.narrow(-2, start: 0, length: k), gL2 = gL.narrow(-2, start: k, length: m - k)
            gA = gU.matmul(U.mT) - L.mT.matmul(gL.tril(diagonal: -1))
            gA = solveTriangular(L1.mT, gA.triu(), upper: true, left: true, unitriangular: true)
            gA = Tensor.cat([gA + gL1.tril(diagonal: -1), gL2], dim: -2)
            gA = solveTriangular(U.mT, gA, upper: false, left: false)
        }
        return P.matmul(gA)
    }

    /// `A = P L U` as three tensors (`torch.linalg.lu`).
    public static func lu(_ A: Tensor, pivot: Bool = true) -> (P: Tensor, L: Tensor, U: Tensor) {
        let f = luFactor(A, pivot: pivot)
        return Tensor.luUnpack(f.LU, f.pivots)
    }

    /// The row order LAPACK's pivots give, per matrix: row i of `L U` is row `perm[i]` of A.
    static func permutation(_ pivots: Tensor, rows m: Int) -> [[Int]] {
        let k = pivots.shape.last ?? 0
        let v = pivots.toArray(Int32.self), B = pivots.shape.dropLast().reduce(1, *)
        return (0..<B).map { b in
            var perm = Array(0..<m)
            for j in 0..<k {
                let p = Int(v[b * k + j]) - 1
                checked { try require(p >= j && p < m, "lu_unpack: pivots[\(j)] = \(p + 1) is out of range for \(m) rows (pivots must be LAPACK's 1-based row swaps)") }
                perm.swapAt(j, p)
            }
            return perm
        }
    }

    /// Solves `A X = B` (`left: false`: `X A = B`; `adjoint`: with Aᵀ) from A's `luFactor`
    /// (`torch.linalg.lu_solve`); differentiable in both LU and B.
    public static func luSolve(_ LU: Tensor, _ pivots: Tensor, _ B: Tensor, left: Bool = true, adjoint: Bool = false) -> Tensor {
        let op = "linalg.lu_solve"
        checked {
            try require(LU.rank >= 2 && LU.shape[LU.rank - 1] == LU.shape[LU.rank - 2],
                        "\(op): Expected LU to be square, got shape \(fmt(LU.shape))")
            try require(B.rank >= 2, "\(op): Expected B to have at least 2 dimensions, got shape \(fmt(B.shape))")
            let n = LU.shape[LU.rank - 1]
            try require((left ? B.shape[B.rank - 2] : B.shape[B.rank - 1]) == n,
                        "\(op): Incompatible shapes of A and B for the equation \(left ? "AX = B" : "XA = B") (\(n)x\(n) and \(B.shape[B.rank - 2])x\(B.shape[B.rank - 1]))")
            try require(pivots.shape == Array(LU.shape.dropLast()), "\(op): Expected pivots of shape \(fmt(Array(LU.shape.dropLast()))), got \(fmt(pivots.shape))")
        }
        let n = LU.shape[LU.rank - 1]
        let (lu, b) = broadcastBatch(LU, B, op)
        // The row swaps as gathers (no n × n permutation product): Pᵀ M takes row perm[i] of M
        // into row i, P M row inv[j] into row j; M Pᵀ and M P do the same with columns.
        let perms = permutation(pivots, rows: n)
        let lead = Array(pivots.shape.dropLast()), batchShape = Array(lu.shape.dropLast(2))
        func indices(_ inverse: Bool) -> Tensor {
            var v = [Int64](repeating: 0, count: perms.count * n)
            for (bi, perm) in perms.enumerated() {
                for i in 0..<n { if inverse { v[bi * n + perm[i]] = Int64(i) } else { v[bi * n + i] = Int64(perm[i]) } }
            }
            return Tensor(v, shape: lead + [n], dtype: .int64, device: LU.device)
        }
        func rows(_ m: Tensor, _ inverse: Bool) -> Tensor {
            let idx = indices(inverse).unsqueeze(-1).expand(batchShape + [n, m.shape[m.rank - 1]])
            return m.gather(m.rank - 2, idx)
        }
        func cols(_ m: Tensor, _ inverse: Bool) -> Tensor {
            let idx = indices(inverse).unsqueeze(-2).expand(batchShape + [m.shape[m.rank - 2], n])
            return m.gather(m.rank - 1, idx)
        }
        // A = P L U. Left: X = U⁻¹ L⁻¹ Pᵀ B; adjoint: X = P L⁻ᵀ U⁻ᵀ B. Right: X = B U⁻¹ L⁻¹ Pᵀ;
        // right adjoint: X = B P L⁻ᵀ U⁻ᵀ.
        switch (left, adjoint) {
        case (true, false):
            let y = solveTriangular(lu, rows(b, false), upper: false, unitriangular: true)
            return solveTriangular(lu, y, upper: true)
        case (true, true):
            let y = solveTriangular(lu.mT, b, upper: false)
            return rows(solveTriangular(lu.mT, y, upper: true, unitriangular: true), true)
        case (false, false):
            let y = solveTriangular(lu, b, upper: true, left: false)
            return cols(solveTriangular(lu, y, upper: false, left: false, unitriangular: true), true)
        case (false, true):
            let y = solveTriangular(lu.mT, cols(b, false), upper: true, left: false, unitriangular: true)
            return solveTriangular(lu.mT, y, upper: false, left: false)
        }
    }

    /// The permutation matrices P of `A = P L U` from pivots `[..., k]`, shape `[..., m, m]`.
    static func permutationMatrix(_ pivots: Tensor, rows m: Int, like: Tensor) -> Tensor {
        let lead = Array(pivots.shape.dropLast())
        let perms = permutation(pivots, rows: m)
        var p = [Double](repeating: 0, count: perms.count * m * m)
        for (b, perm) in perms.enumerated() { for i in 0..<m { p[b * m * m + perm[i] * m + i] = 1 } }
        return Tensor(p, shape: lead + [m, m], dtype: like.dtype, device: like.device)
    }

    // MARK: solve, inverse, determinants

    /// Solves `A X = B` (`left: false`: `X A = B`) for square A, batched with broadcasting; a
    /// `B` of A's shape without the last dimension (or 1-D) is a vector (`torch.linalg.solve`).
    /// A singular A stops with PyTorch's message.
    public static func solve(_ A: Tensor, _ B: Tensor, left: Bool = true) -> Tensor {
        let r = solveEx(A, B, left: left, checkErrors: true)
        return r.result
    }

    /// `solve` with LAPACK's `info` per matrix instead of stopping (unless `checkErrors`).
    public static func solveEx(_ A: Tensor, _ B: Tensor, left: Bool = true, checkErrors: Bool = false) -> (result: Tensor, info: Tensor) {
        let op = "linalg.solve"
        checked {
            try require(A.rank >= 2, "\(op): The input tensor A must have at least 2 dimensions (got \(fmt(A.shape)))")
            try require(A.dtype == B.dtype, "\(op): Expected A and B to have the same dtype, but found A of type \(A.dtype) and B of type \(B.dtype) instead")
        }
        let vector = B.rank == 1 || (B.rank == A.rank - 1 && B.shape == Array(A.shape.dropLast()))
        if vector {
            let r = solveEx(A, B.unsqueeze(left ? -1 : -2), left: left, checkErrors: checkErrors)
            return (r.result.squeeze(left ? -1 : -2), r.info)
        }
        if !left {
            let r = solveEx(A.mT, B.mT, left: true, checkErrors: checkErrors)
            return (r.result.mT, r.info)
        }
        _ = batch(A, op, square: true)
        checked {
            try require(B.rank >= 2 && B.shape[B.rank - 2] == A.shape[A.rank - 1],
                        "\(op): Incompatible shapes of A and B for the equation AX = B (\(A.shape[A.rank - 2])x\(A.shape[A.rank - 1]) and \(B.rank >= 2 ? "\(B.shape[B.rank - 2])x\(B.shape[B.rank - 1])" : fmt(B.shape)))")
        }
        let f = withNoGrad { luFactorEx(A.detach()) }
        if checkErrors { check(f.info, op, { _ in "The solver failed because the input matrix is singular." }) }
        let x = withNoGrad { luSolve(f.LU, f.pivots, B.detach()) }
        guard anyNeedsGrad(A, B) else { return (x, f.info) }
        record(x, "LinalgSolveExBackward", [A, B]) { c in
            let X = c.createGraph ? solve(A, B) : x
            let gB = solve(A.mT, c.grad)
            return [c.needsGrad(0) ? Tensor.sumToBatch(-(gB.matmul(X.mT)), A.shape) : nil,
                    c.needsGrad(1) ? Tensor.sumToBatch(gB, B.shape) : nil]
        }
        return (x, f.info)
    }

    /// The inverse of a square matrix (`torch.linalg.inv`); a singular one stops.
    public static func inv(_ A: Tensor) -> Tensor { invEx(A, checkErrors: true).inverse }

    /// `inv` with LAPACK's `info` per matrix instead of stopping (unless `checkErrors`).
    public static func invEx(_ A: Tensor, checkErrors: Bool = false) -> (inverse: Tensor, info: Tensor) {
        let op = "linalg.inv"
        _ = batch(A, op, square: true)
        let n = A.shape[A.rank - 1]
        let eye = Tensor.eye(n, dtype: A.dtype, device: A.device).expand(A.shape)
        let f = withNoGrad { luFactorEx(A.detach()) }
        if checkErrors {
            check(f.info, op, { "The diagonal element \($0) is zero, the inversion could not be completed because the input matrix is singular." })
        }
        return (solveEx(A, eye).result, f.info)
    }

    /// The determinant of square matrices (`torch.linalg.det`), through LU.
    public static func det(_ A: Tensor) -> Tensor {
        let op = "linalg.det"
        _ = batch(A, op, square: true)
        let f = withNoGrad { luFactorEx(A.detach()) }
        let d = withNoGrad { f.LU.diagonal(offset: 0, dim1: -2, dim2: -1).prod(dim: -1) * pivotSign(f.pivots, like: A) }
        guard anyNeedsGrad(A) else { return d }
        record(d, "LinalgDetBackward", [A]) { c in
            [c.grad.unsqueeze(-1).unsqueeze(-1) * cofactor(A, det: c.createGraph ? det(A) : d, info: f.info, createGraph: c.createGraph)]
        }
        return d
    }

    /// `det(A) · A⁻ᵀ` for invertible matrices, else PyTorch's SVD formula
    /// `U · diag(∏_{j≠i} σ_j) · Vh · det(U) det(Vh)` (singular matrices have cofactors too).
    static func cofactor(_ A: Tensor, det d: Tensor, info: Tensor, createGraph: Bool) -> Tensor {
        if info.toArray(Int32.self).allSatisfy({ $0 == 0 }) && d.abs().gt(0).toArray(Bool.self).allSatisfy({ $0 }) {
            return d.unsqueeze(-1).unsqueeze(-1) * inv(A).mT
        }
        let (U, S, Vh) = svd(A)
        let alpha = withNoGrad { det(U.detach()) * det(Vh.detach()) }
        return (U * (productOfOthers(S) * alpha.unsqueeze(-1)).unsqueeze(-2)).matmul(Vh)
    }

    /// `∏_{j≠i} x_j` along the last dimension without dividing (zeros are fine).
    static func productOfOthers(_ x: Tensor) -> Tensor {
        let k = x.shape[x.rank - 1]
        if k == 0 { return x }
        let ones = Tensor.onesLike(x.narrow(-1, start: 0, length: 1))
        let before = Tensor.cat([ones, x.narrow(-1, start: 0, length: k - 1)], dim: -1).cumprod(dim: -1)
        let r = x.flip([-1])
        let after = Tensor.cat([ones, r.narrow(-1, start: 0, length: k - 1)], dim: -1).cumprod(dim: -1).flip([-1])
        return before * after
    }

    /// ±1 per matrix: the parity of LAPACK's row swaps.
    static func pivotSign(_ pivots: Tensor, like: Tensor) -> Tensor {
        let k = pivots.shape[pivots.rank - 1]
        let v = pivots.toArray(Int32.self), B = pivots.shape.dropLast().reduce(1, *)
        let s = (0..<B).map { b in (0..<k).reduce(1.0) { acc, j in Int(v[b * k + j]) != j + 1 ? -acc : acc } }
        return Tensor(s, shape: Array(pivots.shape.dropLast()), dtype: like.dtype, device: like.device)
    }

    /// The sign and the log of the absolute value of the determinant (`torch.linalg.slogdet`).
    public static func slogdet(_ A: Tensor) -> (sign: Tensor, logabsdet: Tensor) {
        let op = "linalg.slogdet"
        _ = batch(A, op, square: true)
        let f = withNoGrad { luFactorEx(A.detach()) }
        let diag = withNoGrad { f.LU.diagonal(offset: 0, dim1: -2, dim2: -1) }
        let sign = withNoGrad { diag.sign().prod(dim: -1) * pivotSign(f.pivots, like: A) }
        let logabs = withNoGrad { diag.abs().log().sum(dim: -1) }
        guard anyNeedsGrad(A) else { return (sign, logabs) }
        record(logabs, "LinalgSlogdetBackward", [A]) { c in
            [c.grad.unsqueeze(-1).unsqueeze(-1) * inv(A).mT]
        }
        return (sign, logabs)
    }

    // MARK: Cholesky

    /// The Cholesky factor of symmetric positive-definite matrices: lower `L` with
    /// `A = L Lᵀ` (only the lower triangle read), or upper `U = Lᵀ` (only the upper read)
    /// (`torch.linalg.cholesky`). A matrix that is not positive definite stops.
    public static func cholesky(_ A: Tensor, upper: Bool = false) -> Tensor { choleskyEx(A, upper: upper, checkErrors: true).L }

    /// `cholesky` with LAPACK's `info` per matrix (0, or the order of the first leading minor
    /// that is not positive definite) instead of stopping.
    public static func choleskyEx(_ A: Tensor, upper: Bool = false, checkErrors: Bool = false) -> (L: Tensor, info: Tensor) {
        let op = "linalg.cholesky"
        let (a3, lead) = batch(upper ? A.mT : A, op, square: true)
        let outs = run(.cholesky, [a3], [(a3.shape, a3.dtype), ([a3.shape[0]], .int32)])
        let lower = outs[0].reshape(lead + Array(a3.shape.suffix(2))), info = outs[1].reshape(lead)
        if checkErrors {
            check(info, op, { "The factorization could not be completed because the input is not positive-definite (the leading minor of order \($0) is not positive-definite)." })
        }
        let L = upper ? lower.mT.contiguous() : lower
        guard anyNeedsGrad(A) else { return (L, info) }
        record(L, "LinalgCholeskyExBackward", [A]) { c in
            let lo = c.createGraph ? cholesky(A) : lower
            let gL = upper ? c.grad.mT : c.grad
            // PyTorch's cholesky_backward: gA = L⁻ᵀ Φ(Lᵀ gL) L⁻¹, symmetrised.
            var gA = lo.mT.matmul(gL).tril()
            gA = (gA + gA.tril(diagonal: -1).mT) * 0.5
            gA = solveTriangular(lo.mT, gA, upper: true, left: true)
            gA = solveTriangular(lo, gA, upper: false, left: false)
            return [gA]
        }
        return (L, info)
    }

    // MARK: QR

    /// `A = Q R` (`torch.linalg.qr`): mode "reduced" (Q `[m, k]`, R `[k, n]`), "complete"
    /// (Q `[m, m]`, R `[m, n]`) or "r" (R only; Q is empty). Householder reflections with
    /// LAPACK's signs, so Q and R equal PyTorch's.
    public static func qr(_ A: Tensor, mode: String = "reduced") -> (Q: Tensor, R: Tensor) {
        let op = "linalg.qr"
        checked { try require(["reduced", "complete", "r"].contains(mode), "\(op): qr received unrecognized mode '\(mode)' but expected one of 'reduced' (default), 'r', or 'complete'") }
        let (a3, lead) = batch(A, op)
        let B = a3.shape[0], m = a3.shape[1], n = a3.shape[2], k = Swift.min(m, n)
        let complete = mode == "complete"
        let qc = complete ? m : k
        let outs = run(.qr(complete: complete), [a3], [([B, m, qc], a3.dtype), ([B, qc, n], a3.dtype)])
        var q = outs[0].reshape(lead + [m, qc])
        let r = outs[1].reshape(lead + [qc, n])
        if mode == "r" { q = Tensor.empty([0], dtype: A.dtype, device: A.device) }
        guard anyNeedsGrad(A) else { return (q, r) }
        if mode == "r" {
            record(r, "LinalgQrBackward", [A]) { _ in
                checked { try require(false, "linalg.qr_backward: The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.") }
                return [nil]
            }
            return (q, r)
        }
        let out = recordJoint([q, r], "LinalgQrBackward", [A]) { c, g in
            checked {
                try require(!(complete && m > n), "linalg.qr_backward: The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
            }
            let (Q, R) = c.createGraph ? qr(A, mode: mode) : (q, r)
            return [qrBackward(A, Q, R, g[0], g[1])]
        }
        return (out[0], out[1])
    }

    /// The gradient of `A = Q R` (reduced, or complete with m ≤ n): the square-or-tall formula
    /// `Q (gR + tril(QᵀgQ − gQᵀQ + R gRᵀ − gR Rᵀ) R⁻ᵀ) + (gQ − Q QᵀgQ) R⁻ᵀ`, and for wide A
    /// that formula on its first m columns with `gQ + Y gVᵀ`, `A = [X | Y]`, `R = [U | V]`.
    static func qrBackward(_ A: Tensor, _ Q: Tensor, _ R: Tensor, _ gQ: Tensor, _ gR: Tensor) -> Tensor {
        let m = A.shape[A.rank - 2], n = A.shape[A.rank - 1]
        func squareOrTall(_ q: Tensor, _ r: Tensor, _ dq: Tensor, _ dr: Tensor) -> Tensor {
            let qdq = q.mT.matmul(dq), rdr = r.matmul(dr.mT)
            let tril = ((qdq - qdq.mT) + (rdr - rdr.mT)).tril()
            func rightSolve(_ x: Tensor) -> Tensor { solveTriangular(r.mT, x, upper: false, left: false) }  // x R⁻ᵀ
            return q.matmul(dr + rightSolve(tril)) + rightSolve(dq - q.matmul(qdq))
        }
        if m >= n { return squareOrTall(Q, R, gQ, gR) }
        let Y = A.narrow(-1, start: m, length: n - m), U = R.narrow(-1, start: 0, length: m)
        let dV = gR.narrow(-1, start: m, length: n - m), dU = gR.narrow(-1, start: 0, length: m)
        let dX = squareOrTall(Q, U, gQ + Y.matmul(dV.mT), dU)
        return Tensor.cat([dX, Q.matmul(dV)], dim: -1)
    }

    // MARK: eigh and SVD

    /// Eigenvalues (ascending) and orthonormal eigenvectors (columns) of symmetric matrices,
    /// reading the lower (`uplo: "L"`) or upper triangle (`torch.linalg.eigh`). Eigenvectors
    /// are unique up to sign.
    public static func eigh(_ A: Tensor, uplo: String = "L") -> (eigenvalues: Tensor, eigenvectors: Tensor) {
        let op = "linalg.eigh"
        checked { try require(uplo == "L" || uplo == "U", "\(op): Expected UPLO argument to be 'L' or 'U', but got \(uplo)") }
        let (a3, lead) = batch(uplo == "U" ? A.mT : A, op, square: true)
        let B = a3.shape[0], n = a3.shape[1]
        let outs = run(.eigh, [a3], [([B, n], a3.dtype), ([B, n, n], a3.dtype)])
        let w = outs[0].reshape(lead + [n]), v = outs[1].reshape(lead + [n, n])
        guard anyNeedsGrad(A) else { return (w, v) }
        let out = recordJoint([w, v], "LinalgEighBackward", [A]) { c, g in
            let (L, V) = c.createGraph ? eigh(A, uplo: uplo) : (w, v)
            // PyTorch's linalg_eig_backward (Hermitian): gA = V (skew(VᵀgV)/2 / E + diag(gL)) Vᵀ,
            // E_ij = λ_j − λ_i (1 on the diagonal).
            var inner = V.mT.matmul(g[1])
            inner = (inner - inner.mT) * 0.5
            let E = L.unsqueeze(-2) - L.unsqueeze(-1)
            let eye = Tensor.eye(n, dtype: A.dtype, device: A.device)
            inner = inner / (E + eye) + g[0].diagEmbed()
            return [V.matmul(inner).matmul(V.mT)]
        }
        return (out[0], out[1])
    }

    /// The eigenvalues of symmetric matrices, ascending (`torch.linalg.eigvalsh`).
    public static func eigvalsh(_ A: Tensor, uplo: String = "L") -> Tensor { eigh(A, uplo: uplo).eigenvalues }

    /// `A = U diag(S) Vh` (`torch.linalg.svd`): S descending; with `fullMatrices` U is
    /// `[m, m]` and Vh `[n, n]`, else `[m, k]` and `[k, n]`. Singular vectors are unique up to
    /// sign (and the columns beyond k are any orthonormal completion).
    public static func svd(_ A: Tensor, fullMatrices: Bool = true) -> (U: Tensor, S: Tensor, Vh: Tensor) {
        let op = "linalg.svd"
        let (a3, lead) = batch(A, op)
        let B = a3.shape[0], m = a3.shape[1], n = a3.shape[2], k = Swift.min(m, n)
        let uc = fullMatrices ? m : k, vr = fullMatrices ? n : k
        let outs = run(.svd(full: fullMatrices), [a3], [([B, m, uc], a3.dtype), ([B, k], a3.dtype), ([B, vr, n], a3.dtype)])
        let u = outs[0].reshape(lead + [m, uc]), s = outs[1].reshape(lead + [k]), vh = outs[2].reshape(lead + [vr, n])
        guard anyNeedsGrad(A) else { return (u, s, vh) }
        let out = recordJoint([u, s, vh], "LinalgSvdBackward", [A]) { c, g in
            let (U, S, Vh) = c.createGraph ? svd(A, fullMatrices: fullMatrices) : (u, s, vh)
            return [svdBackward(U.narrow(-1, start: 0, length: k), S, Vh.narrow(-2, start: 0, length: k),
                                g[0].narrow(-1, start: 0, length: k), g[1], g[2].narrow(-2, start: 0, length: k), m: m, n: n)]
        }
        return (out[0], out[1], out[2])
    }

    /// PyTorch's `svd_backward` (real): `gA = U [(skew(UᵀgU)/E) S + S (skew(VᵀgV)/E) + diag(gS)] Vh
    /// + (I − UUᵀ) gU S⁻¹ Vh + U S⁻¹ gVh (I − VhᵀVh)`, `E_jk = σ_k² − σ_j²` (1 on the diagonal).
    static func svdBackward(_ U: Tensor, _ S: Tensor, _ Vh: Tensor, _ gU: Tensor, _ gS: Tensor, _ gVh: Tensor, m: Int, n: Int) -> Tensor {
        let k = S.shape[S.rank - 1]
        if k == 0 { return Tensor.zeros(Array(U.shape.dropLast(2)) + [m, n], dtype: U.dtype, device: U.device) }
        let UhgU = U.mT.matmul(gU), VhgV = Vh.matmul(gVh.mT)
        let S2 = S * S
        let eye = Tensor.eye(k, dtype: S.dtype, device: S.device)
        let E = S2.unsqueeze(-2) - S2.unsqueeze(-1) + eye
        var inner = ((UhgU - UhgU.mT) / E) * S.unsqueeze(-2) + S.unsqueeze(-1) * ((VhgV - VhgV.mT) / E) + gS.diagEmbed()
        inner = U.matmul(inner).matmul(Vh)
        if m > k { inner = inner + ((gU - U.matmul(UhgU)) / S.unsqueeze(-2)).matmul(Vh) }
        if n > k { inner = inner + U.matmul((gVh - gVh.matmul(Vh.mT).matmul(Vh)) / S.unsqueeze(-1)) }
        return inner
    }

    /// The singular values, descending (`torch.linalg.svdvals`).
    public static func svdvals(_ A: Tensor) -> Tensor {
        let op = "linalg.svdvals"
        let (a3, lead) = batch(A, op)
        let B = a3.shape[0], m = a3.shape[1], n = a3.shape[2], k = Swift.min(m, n)
        let outs = run(.svd(full: false), [a3], [([B, m, k], a3.dtype), ([B, k], a3.dtype), ([B, k, n], a3.dtype)])
        let s = outs[1].reshape(lead + [k])
        guard anyNeedsGrad(A) else { return s }
        let u = outs[0].reshape(lead + [m, k]), vh = outs[2].reshape(lead + [k, n])
        record(s, "LinalgSvdvalsBackward", [A]) { c in
            if c.createGraph { let (U, _, Vh) = svd(A, fullMatrices: false); return [U.matmul(c.grad.diagEmbed()).matmul(Vh)] }
            return [u.matmul(c.grad.diagEmbed()).matmul(vh)]
        }
        return s
    }
}

extension Tensor {
    /// The sum of `t` over the batch dimensions it gained by broadcasting to reach `shape`.
    static func sumToBatch(_ t: Tensor, _ shape: [Int]) -> Tensor { t.shape == shape ? t : t.sumTo(shape) }

    /// P, L and U from `luFactor`'s packed factors and pivots (`torch.lu_unpack`): P `[m, m]`,
    /// L `[m, k]` (unit diagonal), U `[k, n]`; differentiable in LU.
    public static func luUnpack(_ LU: Tensor, _ pivots: Tensor, unpackData: Bool = true, unpackPivots: Bool = true)
        -> (P: Tensor, L: Tensor, U: Tensor) {
        checked {
            try require(LU.rank >= 2, "lu_unpack: LU must have at least 2 dimensions, got shape \(fmt(LU.shape))")
            let k = Swift.min(LU.shape[LU.rank - 2], LU.shape[LU.rank - 1])
            try require(pivots.shape == Array(LU.shape.dropLast(2)) + [k],
                        "lu_unpack: pivots of shape \(fmt(pivots.shape)) do not match LU of shape \(fmt(LU.shape)) (expected \(fmt(Array(LU.shape.dropLast(2)) + [k])))")
            try require(pivots.dtype == .int32 || pivots.dtype == .int64, "lu_unpack: pivots must be an integer tensor, got \(pivots.dtype)")
        }
        let m = LU.shape[LU.rank - 2], n = LU.shape[LU.rank - 1], k = Swift.min(m, n)
        let empty = Tensor.empty([0], dtype: LU.dtype, device: LU.device)
        var L = empty, U = empty, P = empty
        if unpackData {
            L = LU.narrow(-1, start: 0, length: k).tril(diagonal: -1) + Tensor.eye(m, k, dtype: LU.dtype, device: LU.device)
            U = LU.narrow(-2, start: 0, length: k).triu()
        }
        if unpackPivots { P = Linalg.permutationMatrix(pivots, rows: m, like: LU) }
        return (P, L, U)
    }
}
