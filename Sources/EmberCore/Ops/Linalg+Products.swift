// The products of `torch` built on matmul: vector products (mv, dot, vdot, inner, outer)
// and the fused "add a scaled product" family (addmm, addmv, addr, baddbmm, addbmm).

extension Tensor {
    /// Matrix × vector.
    public func mv(_ v: Tensor) -> Tensor {
        checked {
            try require(rank == 2 && v.rank == 1 && shape[1] == v.shape[0],
                        "mv: size mismatch, got input (\(fmt(shape))), vec (\(fmt(v.shape)))")
        }
        return matmul(v)
    }
    /// The inner product of two 1-D tensors of one size.
    public func dot(_ other: Tensor) -> Tensor {
        checked {
            try require(rank == 1 && other.rank == 1,
                        "dot: 1D tensors expected, but got \(rank)D and \(other.rank)D tensors")
            try require(shape == other.shape,
                        "dot: inconsistent tensor size, expected tensor [\(shape[0])] and src [\(other.shape[0])] to have the same number of elements, but got \(shape[0]) and \(other.shape[0]) elements respectively")
            try require(dtype == other.dtype, "dot: expected both vectors to have same dtype, but found \(dtype) and \(other.dtype)")
        }
        return matmul(other)
    }
    /// `dot` of the conjugate of `self` (the same for real tensors).
    public func vdot(_ other: Tensor) -> Tensor { dot(other) }

    /// The sum of products over the last dimension of both (a scalar times a tensor when
    /// either is 0-dim): shape `a.shape[..<-1] + b.shape[..<-1]`.
    public static func inner(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.rank == 0 || b.rank == 0 { return a * b }
        let k = a.shape[a.rank - 1]
        checked {
            try require(b.shape[b.rank - 1] == k,
                        "inner: inner() the last dimension must match on both input tensors but got shapes \(fmt(a.shape)) and \(fmt(b.shape))")
        }
        let outShape = Array(a.shape.dropLast()) + Array(b.shape.dropLast())
        return a.reshape([a.shape.dropLast().reduce(1, *), k]).mm(b.reshape([b.shape.dropLast().reduce(1, *), k]).t()).reshape(outShape)
    }
    /// `u ⊗ v` of two 1-D tensors.
    public static func outer(_ u: Tensor, _ v: Tensor) -> Tensor {
        checked { try require(u.rank == 1 && v.rank == 1, "outer: expected 1-D tensors, got \(fmt(u.shape)) and \(fmt(v.shape))") }
        return u.unsqueeze(1) * v.unsqueeze(0)
    }

    /// `beta · input + alpha · product` (input ignored when beta is 0, NaN included).
    private static func scaledAdd(_ input: Tensor, _ product: Tensor, beta: Double, alpha: Double, _ op: String) -> Tensor {
        checked {
            try require(input.layout.broadcast(to: product.shape) != nil,
                        "\(op): the input of shape \(fmt(input.shape)) cannot be broadcast to the product's shape \(fmt(product.shape))")
        }
        let p = alpha == 1 ? product : product * alpha
        if beta == 0 { return p }
        return (beta == 1 ? input : input * beta) + p
    }
    /// `beta · input + alpha · (m1 @ m2)` for matrices.
    public static func addmm(_ input: Tensor, _ m1: Tensor, _ m2: Tensor, beta: Double = 1, alpha: Double = 1) -> Tensor {
        checked {
            try require(m1.rank == 2 && m2.rank == 2 && m1.shape[1] == m2.shape[0],
                        "addmm: mat1 and mat2 shapes cannot be multiplied (\(m1.shape.map(String.init).joined(separator: "x")) and \(m2.shape.map(String.init).joined(separator: "x")))")
        }
        return scaledAdd(input, m1.mm(m2), beta: beta, alpha: alpha, "addmm")
    }
    /// `beta · input + alpha · (mat @ vec)`.
    public static func addmv(_ input: Tensor, _ mat: Tensor, _ vec: Tensor, beta: Double = 1, alpha: Double = 1) -> Tensor {
        scaledAdd(input, mat.mv(vec), beta: beta, alpha: alpha, "addmv")
    }
    /// `beta · input + alpha · (u ⊗ v)`.
    public static func addr(_ input: Tensor, _ u: Tensor, _ v: Tensor, beta: Double = 1, alpha: Double = 1) -> Tensor {
        scaledAdd(input, outer(u, v), beta: beta, alpha: alpha, "addr")
    }
    /// `beta · input + alpha · bmm(b1, b2)`.
    public static func baddbmm(_ input: Tensor, _ b1: Tensor, _ b2: Tensor, beta: Double = 1, alpha: Double = 1) -> Tensor {
        scaledAdd(input, b1.bmm(b2), beta: beta, alpha: alpha, "baddbmm")
    }
    /// `beta · input + alpha · Σ_b b1[b] @ b2[b]`.
    public static func addbmm(_ input: Tensor, _ b1: Tensor, _ b2: Tensor, beta: Double = 1, alpha: Double = 1) -> Tensor {
        scaledAdd(input, b1.bmm(b2).sum(dim: 0), beta: beta, alpha: alpha, "addbmm")
    }
}

extension Tensor {
    /// The Kronecker product: block (i, j) of the result is `a[i, j] · b`, in every dimension.
    public static func kron(_ a: Tensor, _ b: Tensor) -> Tensor {
        let r = Swift.max(a.rank, b.rank)
        let sa = [Int](repeating: 1, count: r - a.rank) + a.shape, sb = [Int](repeating: 1, count: r - b.rank) + b.shape
        var ia: [Int] = [], ib: [Int] = []
        for k in 0..<r {
            ia += [sa[k], 1]
            ib += [1, sb[k]]
        }
        return (a.reshape(ia) * b.reshape(ib)).reshape((0..<r).map { sa[$0] * sb[$0] })
    }

    /// The cross product of 3-vectors along `dim` (nil: the first dimension of size 3, as
    /// `torch.cross`), broadcasting the other dimensions.
    public static func cross(_ a: Tensor, _ b: Tensor, dim: Int? = nil) -> Tensor {
        let shape = checked { try broadcastShapes(a.shape, b.shape, op: "cross") }
        let x = a.expand(shape), y = b.expand(shape)
        let d = checked { () throws -> Int in
            let d = try dim.map { try normalizeDim($0, shape.count, op: "cross") } ?? (shape.firstIndex(of: 3) ?? -1)
            try require(d >= 0 && shape[d] == 3,
                        "cross: inputs dimension \(dim ?? d) must have length 3. Got \(fmt(a.shape)) and \(fmt(b.shape))")
            return d
        }
        func c(_ t: Tensor, _ i: Int) -> Tensor { t.narrow(d, start: i, length: 1) }
        return cat([c(x, 1) * c(y, 2) - c(x, 2) * c(y, 1), c(x, 2) * c(y, 0) - c(x, 0) * c(y, 2),
                    c(x, 0) * c(y, 1) - c(x, 1) * c(y, 0)], dim: d)
    }

    /// Contracts the last `dims` dimensions of `a` with the first `dims` of `b`.
    public static func tensordot(_ a: Tensor, _ b: Tensor, dims: Int) -> Tensor {
        tensordot(a, b, dims: (Array((a.rank - dims)..<a.rank), Array(0..<dims)))
    }
    /// Contracts dimensions `dims.0` of `a` with `dims.1` of `b`, pairwise.
    public static func tensordot(_ a: Tensor, _ b: Tensor, dims: ([Int], [Int])) -> Tensor {
        let (ca, cb) = checked { () throws -> ([Int], [Int]) in
            try require(dims.0.count == dims.1.count, "tensordot: both dimension lists should have same length, got \(dims.0) and \(dims.1)")
            let ca = try dims.0.map { try normalizeDim($0, a.rank, op: "tensordot") }, cb = try dims.1.map { try normalizeDim($0, b.rank, op: "tensordot") }
            for (i, j) in zip(ca, cb) {
                try require(a.shape[i] == b.shape[j] || a.shape[i] == 1 || b.shape[j] == 1,
                            "tensordot: contracted dimensions need to match, but first has size \(a.shape[i]) in dim \(i) and second has size \(b.shape[j]) in dim \(j)")
            }
            return (ca, cb)
        }
        // A size-1 dimension against a longer one: the longer is summed first (as PyTorch does).
        var a = a, b = b
        for (i, j) in zip(ca, cb) where a.shape[i] != b.shape[j] {
            if a.shape[i] == 1 { b = b.sum(dim: j, keepdim: true) } else { a = a.sum(dim: i, keepdim: true) }
        }
        let fa = (0..<a.rank).filter { !ca.contains($0) }, fb = (0..<b.rank).filter { !cb.contains($0) }
        let k = ca.reduce(1) { $0 * a.shape[$1] }
        let m = fa.reduce(1) { $0 * a.shape[$1] }, n = fb.reduce(1) { $0 * b.shape[$1] }
        let am = a.permute(fa + ca).reshape([m, k]), bm = b.permute(cb + fb).reshape([k, n])
        return am.mm(bm).reshape(fa.map { a.shape[$0] } + fb.map { b.shape[$0] })
    }

    /// The p-norm of `a − b` over all elements.
    public static func dist(_ a: Tensor, _ b: Tensor, p: Double = 2) -> Tensor { Linalg.vectorNorm(a - b, ord: p) }

    /// The trapezoidal rule along `dim` with sample points `x` (1-D, or y's shape) or
    /// spacing `dx`.
    public static func trapezoid(_ y: Tensor, x: Tensor? = nil, dx: Double = 1, dim: Int = -1) -> Tensor {
        trapezoidTerms(y, x: x, dx: dx, dim: dim).sum(dim: checked { try normalizeDim(dim, y.rank, op: "trapezoid") })
    }
    /// The running trapezoidal rule along `dim`.
    public static func cumulativeTrapezoid(_ y: Tensor, x: Tensor? = nil, dx: Double = 1, dim: Int = -1) -> Tensor {
        trapezoidTerms(y, x: x, dx: dx, dim: dim).cumsum(dim: checked { try normalizeDim(dim, y.rank, op: "cumulative_trapezoid") })
    }
    private static func trapezoidTerms(_ y: Tensor, x: Tensor?, dx: Double, dim: Int) -> Tensor {
        let d = checked { try normalizeDim(dim, y.rank, op: "trapezoid") }
        let n = y.shape[d]
        if n == 0 { return y.narrow(d, start: 0, length: 0) }
        let mid = (y.narrow(d, start: 1, length: n - 1) + y.narrow(d, start: 0, length: n - 1)) / 2
        guard let x else { return mid * dx }
        var spacing = x.diff(dim: x.rank == 1 ? 0 : d)
        if x.rank == 1 && y.rank > 1 {
            var s = [Int](repeating: 1, count: y.rank)
            s[d] = n - 1
            spacing = spacing.reshape(s)
        }
        return mid * spacing
    }
}

/// `torch.linalg` functions built on Ember's ops.
public enum Linalg {
    /// The p-norm over `dim` (all elements when nil): `ord` ±∞, 0 (the count of non-zeros)
    /// or any other real.
    public static func vectorNorm(_ x: Tensor, ord: Double = 2, dim: [Int]? = nil, keepdim: Bool = false) -> Tensor {
        let x = x.dtype.isFloatingPoint ? x : x.to(x.dtype.floatResult)
        let dims = dim.map { $0.isEmpty ? nil : $0 } ?? nil
        switch ord {
        case .infinity: return x.abs().amax(dims: dims, keepdim: keepdim)
        case -.infinity: return x.abs().amin(dims: dims, keepdim: keepdim)
        case 0: return x.ne(0).to(x.dtype).sum(dims: dims, keepdim: keepdim)
        case 1, 2: return x.norm(p: ord, dims: dims, keepdim: keepdim)
        default: return x.abs().pow(ord).sum(dims: dims, keepdim: keepdim).pow(1 / ord)
        }
    }
    /// `Σ a · b` over `dim`.
    public static func vecdot(_ a: Tensor, _ b: Tensor, dim: Int = -1) -> Tensor { (a * b).sum(dim: dim) }
    /// `Tensor.cross` with `dim` −1 by default.
    public static func cross(_ a: Tensor, _ b: Tensor, dim: Int = -1) -> Tensor { Tensor.cross(a, b, dim: dim) }
    /// `diagonal` with the last two dimensions by default.
    public static func diagonal(_ x: Tensor, offset: Int = 0, dim1: Int = -2, dim2: Int = -1) -> Tensor {
        x.diagonal(offset: offset, dim1: dim1, dim2: dim2)
    }
    /// The product of a chain of matrices (the first and last may be vectors).
    public static func multiDot(_ tensors: [Tensor]) -> Tensor {
        checked { try require(tensors.count >= 2, "multi_dot(): expected at least 2 tensors but got \(tensors.count)") }
        return tensors.dropFirst().reduce(tensors[0]) { $0.matmul($1) }
    }
}
