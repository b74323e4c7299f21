// Comparisons and searches with PyTorch's names: isclose, allclose, isin, bucketize,
// searchsorted. Broadcast comparisons, so they run on every device.

extension Tensor {
    /// `|a − b| ≤ atol + rtol·|b|` elementwise (infinities equal when identical; NaN equal
    /// to NaN with `equalNan`).
    public func isclose(_ other: Tensor, rtol: Double = 1e-5, atol: Double = 1e-8, equalNan: Bool = false) -> Tensor {
        checked { try require(rtol >= 0 && atol >= 0, "isclose: rtol and atol must be non-negative, got rtol=\(rtol), atol=\(atol)") }
        let exact = eq(other)
        guard dtype.isFloatingPoint || other.dtype.isFloatingPoint else { return exact }
        let a = withNoGrad { self.to(ResultType.of2(self, other).floatResult) }, b = withNoGrad { other.to(a.dtype) }
        var close = withNoGrad { (a - b).abs().le(b.abs() * rtol + atol).logicalAnd(a.isfinite()).logicalAnd(b.isfinite()) }
        close = close.logicalOr(exact)
        return equalNan ? close.logicalOr(a.isnan().logicalAnd(b.isnan())) : close
    }
    /// True when every element `isclose` (a 0-dim bool tensor).
    public func allclose(_ other: Tensor, rtol: Double = 1e-5, atol: Double = 1e-8, equalNan: Bool = false) -> Tensor {
        isclose(other, rtol: rtol, atol: atol, equalNan: equalNan).all()
    }

    /// True where an element of `elements` is among `testElements` (`torch.isin`).
    public static func isin(_ elements: Tensor, _ testElements: Tensor, invert: Bool = false) -> Tensor {
        let hit = elements.unsqueeze(-1).eq(testElements.reshape([1, -1]).squeeze(0).reshape([-1])).any(dim: -1)
        let r = elements.rank == 0 ? hit.reshape([]) : hit
        return invert ? r.logicalNot() : r
    }

    /// The bucket of each value among sorted 1-D `boundaries`: the number of boundaries below
    /// it (at or below it with `right`), as int64 (int32 with `outInt32`).
    public static func bucketize(_ x: Tensor, _ boundaries: Tensor, right: Bool = false, outInt32: Bool = false) -> Tensor {
        checked { try require(boundaries.rank == 1, "bucketize: boundaries tensor must be 1 dimension, but got dim(\(boundaries.rank))") }
        return searchsorted(boundaries, x, right: right, outInt32: outInt32)
    }

    /// Where `values` would go in `sortedSequence` (sorted along its last dimension, in the
    /// order `sorter` gives when present) to keep it sorted: the count of elements below
    /// (`right`: at or below) each value along that dimension.
    public static func searchsorted(_ sortedSequence: Tensor, _ values: Tensor, right: Bool = false, side: String? = nil,
                                    outInt32: Bool = false, sorter: Tensor? = nil) -> Tensor {
        checked {
            if let side { try require(side == "left" || side == "right", "searchsorted: side can only be 'left' or 'right', got \(side)") }
            try require(!(side == "left" && right), "searchsorted: side and right can't be set to opposites, got side of left while right was True")
            if sortedSequence.rank > 1 {
                try require(values.rank == sortedSequence.rank && Array(values.shape.dropLast()) == Array(sortedSequence.shape.dropLast()),
                            "searchsorted: boundaries tensor should be 1 dimension or the first N-1 dimensions of boundaries tensor and input value tensor must match, but we got boundaries tensor \(fmt(sortedSequence.shape)) and input value tensor \(fmt(values.shape))")
            }
        }
        let upper = right || side == "right"
        var seq = sortedSequence
        if let sorter { seq = seq.gather(seq.rank - 1, sorter) }
        let common = ResultType.of2(seq, values)
        let s = seq.to(common), v = values.to(common)
        let below: Tensor
        if seq.rank <= 1 {
            let row = s.reshape([-1])
            below = (upper ? v.unsqueeze(-1).ge(row) : v.unsqueeze(-1).gt(row))
        } else {
            below = upper ? v.unsqueeze(-1).ge(s.unsqueeze(-2)) : v.unsqueeze(-1).gt(s.unsqueeze(-2))
        }
        let r = below.sum(dim: -1)
        return outInt32 ? r.to(.int32) : r
    }
}
