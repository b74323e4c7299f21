// Sorting and selection: sort, argsort, msort, topk, kthvalue, median, nanmedian. One
// primitive (`Backend.sort`, stable, NaN greatest); values are gathered from the input by
// the indices, so their gradients flow through `gather` to the positions they came from.

extension Tensor {
    /// The sorted values along `dim` and where they were. Always stable (PyTorch's
    /// `stable: true`; with `stable: false` PyTorch may order ties differently).
    public func sort(dim: Int = -1, descending: Bool = false, stable: Bool = false) -> (values: Tensor, indices: Tensor) {
        let d = checked { try normalizeDim(dim, Swift.max(rank, 1), op: "sort") }
        if rank == 0 { return (self * 1, Tensor.zeros([], dtype: .int64, device: device)) }
        let x = cast(dtype.computeType)
        let values = Tensor(uninitialized: shape, dtype: x.dtype, device: device)
        let indices = Tensor(uninitialized: shape, dtype: .int64, device: device)
        if count > 0 { device.backend.sort(x, dim: d, descending: descending, values, indices) }
        if dtype.isFloatingPoint && anyNeedsGrad(self) { return (gather(d, indices), indices) }
        return (values.cast(dtype), indices)
    }
    /// The positions that sort `dim`.
    public func argsort(dim: Int = -1, descending: Bool = false, stable: Bool = false) -> Tensor {
        sort(dim: dim, descending: descending, stable: stable).indices
    }
    /// `sort(dim: 0).values`.
    public func msort() -> Tensor { sort(dim: 0).values }

    /// The `k` largest (or smallest) values along `dim`, sorted, and their positions.
    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) -> (values: Tensor, indices: Tensor) {
        let d = checked { try normalizeDim(dim, Swift.max(rank, 1), op: "topk") }
        let n = rank == 0 ? 1 : shape[d]
        checked { try require(k >= 0 && k <= n, "topk: selected index k (\(k)) out of range for dimension \(d) of size \(n) (shape \(fmt(shape)))") }
        let (_, order) = sort(dim: d, descending: largest)
        let indices = rank == 0 ? order : order.narrow(d, start: 0, length: k).contiguous()
        return (rank == 0 ? self * 1 : gather(d, indices), indices)
    }

    /// The `k`-th smallest value along `dim` (k from 1) and its position.
    public func kthvalue(_ k: Int, dim: Int = -1, keepdim: Bool = false) -> (values: Tensor, indices: Tensor) {
        let d = checked { try normalizeDim(dim, Swift.max(rank, 1), op: "kthvalue") }
        let n = rank == 0 ? 1 : shape[d]
        checked { try require(k >= 1 && k <= n, "kthvalue: selected number k (\(k)) out of range for dimension \(d) of size \(n)") }
        return pick(d, keepdim) { _, line in Tensor.full(line, Double(k - 1), dtype: .int64, device: device) }
    }

    /// The lower median of all elements (NaN if there is one).
    public func median() -> Tensor {
        checked { try require(count > 0, "median: cannot compute the median of an empty tensor") }
        return flatten().median(dim: 0).values
    }
    /// The lower median along `dim` and its position; NaN (the first one) where a line has NaN.
    public func median(dim: Int, keepdim: Bool = false) -> (values: Tensor, indices: Tensor) {
        let d = checked { try normalizeDim(dim, Swift.max(rank, 1), op: "median") }
        let n = rank == 0 ? 1 : shape[d]
        return pick(d, keepdim) { sorted, line in
            let middle = Tensor.full(line, Double((n - 1) / 2), dtype: .int64, device: device)
            guard dtype.isFloatingPoint else { return middle }
            // NaN sorts last, in order: a line's first NaN is at n − (its NaN count).
            let nans = sorted.isnan().sum(dim: d, keepdim: true)
            return Tensor.where(nans.gt(0), (nans * -1 + n).clamp(max: Double(n - 1)), middle)
        }
    }
    /// The lower median of the elements that are not NaN.
    public func nanmedian() -> Tensor {
        checked { try require(count > 0, "nanmedian: cannot compute the median of an empty tensor") }
        return flatten().nanmedian(dim: 0).values
    }
    /// The lower median along `dim` of the values that are not NaN (NaN where all are).
    public func nanmedian(dim: Int, keepdim: Bool = false) -> (values: Tensor, indices: Tensor) {
        let d = checked { try normalizeDim(dim, Swift.max(rank, 1), op: "nanmedian") }
        return pick(d, keepdim) { sorted, _ in
            let valid = sorted.isnan().logicalNot().sum(dim: d, keepdim: true)
            return (valid - 1).floorDivide(Tensor.number(2, like: valid)).clamp(min: 0)
        }
    }

    /// Per line along `d`: the position in the ascending sort that `at(sorted, lineShape)`
    /// gives (int64 of the kept-dim shape), its value and its index in the input.
    private func pick(_ d: Int, _ keepdim: Bool, _ at: (Tensor, [Int]) -> Tensor) -> (values: Tensor, indices: Tensor) {
        if rank == 0 { return (self * 1, Tensor.zeros([], dtype: .int64, device: device)) }
        checked { try require(shape[d] > 0, "cannot compute a median or k-th value over an empty dimension \(d) (shape \(fmt(shape)))") }
        let (sorted, order) = withNoGrad { sort(dim: d) }
        var line = shape
        line[d] = 1
        let position = order.gather(d, withNoGrad { at(sorted, line) }.contiguous())
        let values = gather(d, position)
        return keepdim ? (values, position) : (values.squeeze(d), position.squeeze(d))
    }
}

extension Tensor {
    // MARK: running extremes

    /// The running maximum along `dim` and where it was reached (the last position of a
    /// tie, as PyTorch).
    public func cummax(dim: Int) -> (values: Tensor, indices: Tensor) { runningExtreme(dim, .max, "cummax") }
    /// The running minimum along `dim` and where it was reached.
    public func cummin(dim: Int) -> (values: Tensor, indices: Tensor) { runningExtreme(dim, .min, "cummin") }

    private func runningExtreme(_ dim: Int, _ op: ScanOp, _ name: String) -> (values: Tensor, indices: Tensor) {
        let d = checked { try normalizeDim(dim, Swift.max(rank, 1), op: name) }
        if rank == 0 { return (self * 1, Tensor.zeros([], dtype: .int64, device: device)) }
        let running = scanKernel(op, dim: d, dtype: dtype)
        // The last position j ≤ i where x_j equals the running value is a running maximum
        // of "j where x_j == v_j, else −1" (a NaN counts where it first appears).
        var s = [Int](repeating: 1, count: rank)
        s[d] = shape[d]
        let positions = Tensor.arange(shape[d], device: device).reshape(s).expand(shape)
        let reached = eq(running).logicalOr(isnan().logicalAnd(running.isnan()))
        let candidates = Tensor.where(reached, positions, Tensor.full([], -1, dtype: .int64, device: device))
        let indices = candidates.scanKernel(.max, dim: d, dtype: .int64)
        return (dtype.isFloatingPoint && anyNeedsGrad(self) ? gather(d, indices) : running, indices)
    }

    // MARK: unique

    /// The distinct values (or slices along `dim`), sorted; with `returnInverse` where each
    /// input element went, with `returnCounts` how often each appears.
    public func unique(sorted: Bool = true, returnInverse: Bool = false, returnCounts: Bool = false,
                       dim: Int? = nil) -> (values: Tensor, inverse: Tensor?, counts: Tensor?) {
        let (rows, d) = uniqueRows(dim, "unique")
        // Lexicographic order of the rows: stable sorts by each column, last column first.
        var order = Tensor.arange(rows.shape[0], device: device)
        for j in (0..<rows.shape[1]).reversed() {
            order = order.gather(0, rows.select(1, j).gather(0, order).argsort(dim: 0, stable: true))
        }
        let sortedRows = rows.indexSelect(0, order)
        return groups(sortedRows, order: order, d, returnInverse, returnCounts)
    }

    /// Collapses runs of equal consecutive values (or slices along `dim`).
    public func uniqueConsecutive(returnInverse: Bool = false, returnCounts: Bool = false,
                                  dim: Int? = nil) -> (values: Tensor, inverse: Tensor?, counts: Tensor?) {
        let (rows, d) = uniqueRows(dim, "unique_consecutive")
        return groups(rows, order: Tensor.arange(rows.shape[0], device: device), d, returnInverse, returnCounts)
    }

    /// The elements (dim nil) or slices along `dim` as rows of a 2-D tensor.
    private func uniqueRows(_ dim: Int?, _ op: String) -> (Tensor, Int?) {
        guard let dim else { return (withNoGrad { reshape([count, 1]) }, nil) }
        let d = checked { try normalizeDim(dim, rank, op: op) }
        let moved = withNoGrad { movedim(d, 0).contiguous() }
        return (moved.reshape([shape[d], moved.count / Swift.max(shape[d], 1)]), d)
    }

    /// Groups of equal adjacent rows of `rows` (in `order` of the input's rows).
    private func groups(_ rows: Tensor, order: Tensor, _ d: Int?, _ inverse: Bool, _ counts: Bool)
        -> (values: Tensor, inverse: Tensor?, counts: Tensor?) {
        let n = rows.shape[0]
        if n == 0 {
            let empty = d.map { dd in withNoGrad { narrow(dd, start: 0, length: 0) } } ?? Tensor.zeros([0], dtype: dtype, device: device)
            return (empty, inverse ? Tensor.zeros(d == nil ? shape : [0], dtype: .int64, device: device) : nil,
                    counts ? Tensor.zeros([0], dtype: .int64, device: device) : nil)
        }
        // A row starts a group when it differs from the one before it.
        let starts = n == 1 ? Tensor.ones([1], dtype: .bool, device: device)
            : Tensor.cat([Tensor.ones([1], dtype: .bool, device: device),
                          rows.narrow(0, start: 1, length: n - 1).ne(rows.narrow(0, start: 0, length: n - 1)).any(dim: 1)], dim: 0)
        let group = starts.cumsum(dim: 0) - 1
        let first = Tensor.arange(n, device: device).maskedSelect(starts)
        let picked = rows.indexSelect(0, first)
        let values: Tensor
        if let d {
            var s = shape
            s.remove(at: d)
            values = withNoGrad { picked.reshape([first.count] + s).movedim(0, d) }
        } else {
            values = picked.reshape([first.count])
        }
        var inv: Tensor? = nil
        if inverse {
            let back = Tensor.zeros([n], dtype: .int64, device: device).scatter(0, order, group)
            inv = d == nil ? back.reshape(shape) : back
        }
        var cnt: Tensor? = nil
        if counts {
            let ends = Tensor.cat([first.narrow(0, start: 1, length: first.count - 1), Tensor.full([1], Double(n), dtype: .int64, device: device)], dim: 0)
            cnt = ends - first
        }
        return (values, inv, cnt)
    }
}
