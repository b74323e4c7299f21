/// An iteration plan over an N-d index space shared by several operands, each with its
/// own element strides (stride 0 = broadcast). Dimensions of size 1 are dropped and
/// neighbouring dimensions that are contiguous for every operand are merged, so the
/// common cases collapse to one flat loop.
public struct StridedPlan {
    /// Coalesced shape; the last dimension is the inner loop.
    public let shape: [Int]
    /// Coalesced strides, one array per operand.
    public let strides: [[Int]]
    /// Total number of elements.
    public let count: Int

    public init(shape: [Int], strides: [[Int]]) {
        var n = 1
        for s in shape { n *= s }
        count = n
        var sh: [Int] = []
        var st: [[Int]] = Array(repeating: [], count: strides.count)
        sh.reserveCapacity(shape.count)
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = sh.last {
                var mergeable = true
                for k in 0..<strides.count where st[k].last! != strides[k][d] * shape[d] {
                    mergeable = false
                    break
                }
                if mergeable {
                    sh[sh.count - 1] = last * shape[d]
                    for k in 0..<strides.count { st[k][st[k].count - 1] = strides[k][d] }
                    continue
                }
            }
            sh.append(shape[d])
            for k in 0..<strides.count { st[k].append(strides[k][d]) }
        }
        if sh.isEmpty {
            sh = [1]
            for k in 0..<strides.count { st[k] = [1] }
        }
        self.shape = sh
        self.strides = st
    }

    /// Length of the inner loop.
    @inlinable public var inner: Int { shape[shape.count - 1] }
    /// Number of inner rows.
    @inlinable public var rows: Int { inner == 0 ? 0 : count / inner }
    /// Inner stride of operand `k`.
    @inlinable public func innerStride(_ k: Int) -> Int { strides[k][shape.count - 1] }
    /// True when the space is one flat run with stride 1 for every operand.
    @inlinable public var isContiguous: Bool {
        shape.count == 1 && strides.allSatisfy { $0[0] == 1 }
    }

    /// Calls `body` with each operand's starting offset for every row in `rows`.
    @inlinable
    public func forEachRow(_ rows: Range<Int>, _ body: (UnsafeMutablePointer<Int>) -> Void) {
        let k = strides.count
        let outerDims = shape.count - 1
        withUnsafeTemporaryAllocation(of: Int.self, capacity: k + outerDims + 1) { buf in
            let off = buf.baseAddress!
            let idx = off + k
            for j in 0..<k { off[j] = 0 }
            var rem = rows.lowerBound
            var d = outerDims - 1
            while d >= 0 {
                let i = rem % shape[d]
                rem /= shape[d]
                idx[d] = i
                for j in 0..<k { off[j] += i * strides[j][d] }
                d -= 1
            }
            for _ in rows {
                body(off)
                var dd = outerDims - 1
                while dd >= 0 {
                    idx[dd] += 1
                    for j in 0..<k { off[j] += strides[j][dd] }
                    if idx[dd] < shape[dd] { break }
                    for j in 0..<k { off[j] -= strides[j][dd] * shape[dd] }
                    idx[dd] = 0
                    dd -= 1
                }
            }
        }
    }
}

/// Calls `body(offsets, n)` for every run of `n` consecutive inner elements, splitting the
/// work across threads. `offsets[k]` is operand `k`'s element offset at the start of the run;
/// within a run operand `k` advances by `plan.innerStride(k)`. A contiguous plan is cut into
/// flat chunks (every offset equal), so the body's unit-stride loop vectorizes.
///
/// Kernels write their element loop inside `body` (not as a closure passed in), so each
/// loop is compiled for its concrete op and element type.
@inlinable
public func forEachRun(_ p: StridedPlan, grain: Int = elementwiseGrain, _ body: (UnsafePointer<Int>, Int) -> Void) {
    let k = p.strides.count
    if p.isContiguous {
        parallelFor(p.count, grain: grain) { range in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: k) { off in
                for j in 0..<k { off[j] = range.lowerBound }
                body(UnsafePointer(off.baseAddress!), range.count)
            }
        }
        return
    }
    let n = p.inner
    parallelFor(p.rows, grain: Swift.max(1, grain / Swift.max(n, 1))) { rows in
        p.forEachRow(rows) { off in body(UnsafePointer(off), n) }
    }
}

/// The iteration space of a reduction: kept dimensions (operands: output, input) and the
/// reduced dimensions (operand: input).
public struct ReductionPlan {
    public let kept: StridedPlan
    public let reduced: StridedPlan

    public init(keptShape: [Int], outStrides: [Int], inKeptStrides: [Int], reducedShape: [Int], inReducedStrides: [Int]) {
        kept = StridedPlan(shape: keptShape, strides: [outStrides, inKeptStrides])
        reduced = StridedPlan(shape: reducedShape, strides: [inReducedStrides])
    }

    /// Calls `body(outOffset, inBase)` for every output element, in parallel.
    @inlinable
    public func forEachOutput(_ body: (Int, Int) -> Void) {
        let so = kept.innerStride(0), si = kept.innerStride(1), kn = kept.inner
        let work = Swift.max(reduced.count * kn, 1)
        parallelFor(kept.rows, grain: Swift.max(1, elementwiseGrain / work)) { rows in
            kept.forEachRow(rows) { off in
                for e in 0..<kn { body(off[0] + e * so, off[1] + e * si) }
            }
        }
    }

    /// Calls `row(offset, n, stride, firstIndex)` for each reduced row starting at input
    /// offset `base`; `firstIndex` is the row-major position of the row's first element in
    /// the reduced space.
    @inlinable
    public func forEachReducedRow(base: Int, _ row: (Int, Int, Int, Int) -> Void) {
        let n = reduced.inner, s = reduced.innerStride(0)
        var j = 0
        reduced.forEachRow(0..<reduced.rows) { off in
            row(base + off[0], n, s, j)
            j += n
        }
    }
}
