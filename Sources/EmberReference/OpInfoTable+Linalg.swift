import EmberCore

// PyTorch's OpInfo names of torch.linalg (and the older torch.* spellings) in Ember's API.

/// A matrix norm order as PyTorch passes it: 'fro', 'nuc', or a number.
func matrixOrder(_ a: OpArg?) -> Linalg.MatrixNormOrder? {
    switch a {
    case .string(let s)?: Linalg.MatrixNormOrder(s)
    case .int(let v)?: Linalg.MatrixNormOrder(Double(v))
    case .double(let v)?: Linalg.MatrixNormOrder(v)
    default: nil
    }
}
/// `atol`/`rtol`: a number or a tensor.
func toleranceArg(_ c: OpCall, _ name: String, like: Tensor) -> Tensor? {
    c.operand(nil, name, like: like)
}
/// The SVD samples' output functions (`uniformize` narrows to k columns/rows first).
func processSVD(_ c: OpCall, _ u: Tensor, _ s: Tensor, _ vh: Tensor) -> [Tensor] {
    let k = s.shape[s.rank - 1]
    let U = u.narrow(-1, start: 0, length: k), Vh = vh.narrow(-2, start: 0, length: k)
    switch c.process {
    case "fn_U": return [U.abs()]
    case "fn_S": return [s]
    case "fn_Vh": return [s, Vh.abs()]
    case "fn_UVh": return [U.matmul(Vh), s]
    default: fatalError("svd: unknown output function \(c.process ?? "none")")
    }
}

let opInfoLinalg: [String: (OpCall) -> [Tensor]] = [
    "linalg.det": unary { Linalg.det($0) },
    "linalg.slogdet": { c in let r = Linalg.slogdet(c.input); return [r.sign, r.logabsdet] },
    "logdet": unary { $0.logdet() },
    "linalg.inv": unary { Linalg.inv($0) },
    "linalg.inv_ex": { c in
        let r = Linalg.invEx(c.input, checkErrors: c.bool(nil, "check_errors") ?? false)
        return [r.inverse, r.info]
    },
    "linalg.solve": { c in [Linalg.solve(c.input, c.tensor(1, "B")!, left: c.bool(nil, "left") ?? true)] },
    "linalg.solve_ex": { c in
        let r = Linalg.solveEx(c.input, c.tensor(1, "B")!, left: c.bool(nil, "left") ?? true, checkErrors: c.bool(nil, "check_errors") ?? false)
        return [r.result, r.info]
    },
    "linalg.solve_triangular": { c in
        [Linalg.solveTriangular(c.input, c.tensor(1, "B")!, upper: c.bool(nil, "upper")!, left: c.bool(nil, "left") ?? true,
                                unitriangular: c.bool(nil, "unitriangular") ?? false)]
    },
    "triangular_solve": { c in
        let r = Tensor.triangularSolve(c.input, c.tensor(1, "A")!, upper: c.bool(2, "upper") ?? true, transpose: c.bool(3, "transpose") ?? false,
                                       unitriangular: c.bool(4, "unitriangular") ?? false)
        return [r.solution, r.clonedCoefficient]
    },
    "linalg.cholesky": { c in [Linalg.cholesky(c.input, upper: c.bool(nil, "upper") ?? false)] },
    "linalg.cholesky_ex": { c in
        let r = Linalg.choleskyEx(c.input, upper: c.bool(nil, "upper") ?? false, checkErrors: c.bool(nil, "check_errors") ?? false)
        return [r.L, r.info]
    },
    "cholesky_solve": { c in [Tensor.choleskySolve(c.input, c.tensor(1, "input2")!, upper: c.bool(2, "upper") ?? false)] },
    "cholesky_inverse": { c in [Tensor.choleskyInverse(c.input, upper: c.bool(1, "upper") ?? false)] },
    "linalg.lu_factor": { c in let r = Linalg.luFactor(c.input, pivot: c.bool(nil, "pivot") ?? true); return [r.LU, r.pivots] },
    "linalg.lu_factor_ex": { c in
        let r = Linalg.luFactorEx(c.input, pivot: c.bool(nil, "pivot") ?? true, checkErrors: c.bool(nil, "check_errors") ?? false)
        return [r.LU, r.pivots, r.info]
    },
    "linalg.lu": { c in
        let r = Linalg.lu(c.input, pivot: c.bool(nil, "pivot") ?? true)
        return c.process == "out_fn" ? [r.L, r.U] : [r.P, r.L, r.U]
    },
    "lu": { c in
        // torch.lu(A, pivot, get_infos): (LU, pivots) or (LU, pivots, infos).
        let r = Linalg.luFactorEx(c.input, pivot: c.bool(1, "pivot") ?? true)
        return (c.bool(2, "get_infos") ?? false) ? [r.LU, r.pivots, r.info] : [r.LU, r.pivots]
    },
    "lu_unpack": { c in
        let r = Tensor.luUnpack(c.input, c.tensor(1, "LU_pivots")!, unpackData: c.bool(2, "unpack_data") ?? true,
                                unpackPivots: c.bool(3, "unpack_pivots") ?? true)
        return c.process == "out_fn" ? [r.L, r.U] : [r.P, r.L, r.U]
    },
    "linalg.lu_solve": { c in
        [Linalg.luSolve(c.input, c.tensor(1, "pivots")!, c.tensor(2, "B")!, left: c.bool(nil, "left") ?? true, adjoint: c.bool(nil, "adjoint") ?? false)]
    },
    "lu_solve": { c in [Tensor.luSolve(c.input, c.tensor(1, "LU_data")!, c.tensor(2, "LU_pivots")!)] },
    "linalg.qr": { c in let r = Linalg.qr(c.input, mode: c.string(1, "mode") ?? "reduced"); return [r.Q, r.R] },
    "geqrf": { c in let r = Linalg.geqrf(c.input); return [r.a, r.tau] },
    "linalg.householder_product": { c in [Linalg.householderProduct(c.input, c.tensor(1, "tau")!)] },
    "ormqr": { c in
        [Tensor.ormqr(c.input, c.tensor(1, "input2")!, c.tensor(2, "input3")!, left: c.bool(3, "left") ?? true,
                      transpose: c.bool(4, "transpose") ?? false)]
    },
    "linalg.eigh": { c in
        let r = Linalg.eigh(c.input, uplo: c.string(1, "UPLO") ?? "L")
        return c.process == "out_fn" ? [r.eigenvalues, r.eigenvectors.abs()] : [r.eigenvalues, r.eigenvectors]
    },
    "linalg.eigvalsh": { c in [Linalg.eigvalsh(c.input, uplo: c.string(1, "UPLO") ?? "L")] },
    "linalg.svd": { c in
        let r = Linalg.svd(c.input, fullMatrices: c.bool(1, "full_matrices") ?? true)
        return processSVD(c, r.U, r.S, r.Vh)
    },
    "svd": { c in
        let r = c.input.svd(some: c.bool(1, "some") ?? true)
        return processSVD(c, r.U, r.S, r.V.mT)
    },
    "linalg.svdvals": unary { Linalg.svdvals($0) },
    "linalg.pinv": { c in
        if c.variant == "singular" {  // op = pinv(a @ b.mT)
            return [Linalg.pinv(c.input.matmul(c.tensor(1)!.mT))]
        }
        let x = c.input
        return [Linalg.pinv(x, atol: toleranceArg(c, "atol", like: x), rtol: toleranceArg(c, "rtol", like: x),
                            hermitian: c.bool(nil, "hermitian") ?? false)]
    },
    "pinverse": { c in [c.input.pinverse(rcond: c.double(1, "rcond") ?? 1e-15)] },
    "linalg.matrix_rank": { c in
        let x = c.input
        return [Linalg.matrixRank(x, atol: toleranceArg(c, "atol", like: x), rtol: toleranceArg(c, "rtol", like: x),
                                  hermitian: c.bool(nil, "hermitian") ?? false)]
    },
    "linalg.matrix_norm": { c in
        let d = c.ints(2, "dim") ?? [-2, -1]
        return [Linalg.matrixNorm(c.input, ord: matrixOrder(c.arg(1, "ord")) ?? .fro, dim: (d[0], d[1]), keepdim: c.bool(3, "keepdim") ?? false)]
    },
    "linalg.norm": { c in
        let a = c.arg(1, "ord")
        var ord: Double? = nil, mord: Linalg.MatrixNormOrder? = nil
        switch a {
        case .string?: mord = matrixOrder(a)
        case .int(let v)?: ord = Double(v)
        case .double(let v)?: ord = v
        default: break
        }
        return [Linalg.norm(c.input, ord: ord, matrixOrd: mord, dim: c.ints(2, "dim"), keepdim: c.bool(3, "keepdim") ?? false)]
    },
    "linalg.cond": { c in [Linalg.cond(c.input, p: matrixOrder(c.arg(1, "p")))] },
    "linalg.matrix_power": { c in [Linalg.matrixPower(c.input, c.int(1, "n")!)] },
    "matrix_exp": unary { $0.matrixExp() },
    "linalg.lstsq": { c in
        let r = Linalg.lstsq(c.input, c.tensor(1, "b")!, rcond: c.double(nil, "rcond"), driver: c.string(nil, "driver"))
        return c.variant == "grad_oriented" ? [r.solution, r.residuals] : [r.solution, r.residuals, r.rank, r.singularValues]
    },
    "linalg.tensorinv": { c in [Linalg.tensorinv(c.input, ind: c.int(1, "ind") ?? 2)] },
    "linalg.tensorsolve": { c in [Linalg.tensorsolve(c.input, c.tensor(1, "B")!, dims: c.ints(2, "dims"))] },
    "linalg.vander": { c in [Linalg.vander(c.input, N: c.int(nil, "N"))] },
]
