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
