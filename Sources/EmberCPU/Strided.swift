/// An iteration plan over an N-d index space shared by several operands, each with its
/// own element strides (stride 0 = broadcast). Dimensions of size 1 are dropped and
/// neighbouring dimensions that are contiguous for every operand are merged, so the
/// common cases collapse to one flat loop. Strides are stored flat (operand-major) so
/// that building a plan costs two small arrays.
public struct StridedPlan {
    /// Coalesced shape; the last dimension is the inner loop.
    public let shape: [Int]
    /// Coalesced strides: operand `k`, dimension `d` at `k * shape.count + d`.
    @usableFromInline let flat: [Int]
    /// Total number of elements.
    public let count: Int
    /// Number of operands.
    public let operands: Int

    public init(shape: [Int], _ s0: [Int]) {
        self.init(shape: shape, operands: 1) { _, d in s0[d] }
    }
    public init(shape: [Int], _ s0: [Int], _ s1: [Int]) {
        self.init(shape: shape, operands: 2) { k, d in k == 0 ? s0[d] : s1[d] }
    }
    public init(shape: [Int], _ s0: [Int], _ s1: [Int], _ s2: [Int]) {
        self.init(shape: shape, operands: 3) { k, d in k == 0 ? s0[d] : (k == 1 ? s1[d] : s2[d]) }
    }
    public init(shape: [Int], _ s0: [Int], _ s1: [Int], _ s2: [Int], _ s3: [Int]) {
        self.init(shape: shape, operands: 4) { k, d in k == 0 ? s0[d] : (k == 1 ? s1[d] : (k == 2 ? s2[d] : s3[d])) }
    }

    /// Strides of all-ones for a flat plan of `k` operands (shared, never reallocated).
    private static let unitStrides: [[Int]] = (0...4).map { [Int](repeating: 1, count: $0) }

    @inline(__always)
    init(shape full: [Int], operands k: Int, stride: (Int, Int) -> Int) {
        operands = k
        var n = 1
        for s in full { n *= s }
        count = n
        // Fast path: every operand row-major contiguous (the common case) is one flat run.
        var allContiguous = true
        check: for j in 0..<k {
            var expected = 1
            var d = full.count - 1
            while d >= 0 {
                if full[d] != 1 {
                    if stride(j, d) != expected { allContiguous = false; break check }
                    expected *= full[d]
                }
                d -= 1
            }
        }
        if allContiguous {
            shape = [n]
            flat = StridedPlan.unitStrides[k]
            return
        }
        // Pass 1: the coalesced dimensions (kept[d] = index of the last source dim merged in).
        var sh: [Int] = []
        sh.reserveCapacity(full.count)
        var ends: [Int] = []
        ends.reserveCapacity(full.count)
        for d in 0..<full.count where full[d] != 1 {
            if let last = ends.last {
                var mergeable = true
                for j in 0..<k where stride(j, last) != stride(j, d) * full[d] { mergeable = false; break }
                if mergeable {
                    sh[sh.count - 1] *= full[d]
                    ends[ends.count - 1] = d
                    continue
                }
            }
            sh.append(full[d])
            ends.append(d)
        }
        if sh.isEmpty {
            shape = [1]
            flat = [Int](repeating: 1, count: k)
            return
        }
        let r = sh.count
        var st = [Int](repeating: 0, count: k * r)
        for j in 0..<k { for d in 0..<r { st[j * r + d] = stride(j, ends[d]) } }
        shape = sh
        flat = st
    }

    /// Length of the inner loop.
    @inlinable public var inner: Int { shape[shape.count - 1] }
    /// Number of inner rows.
    @inlinable public var rows: Int { inner == 0 ? 0 : count / inner }
    /// Stride of operand `k` along coalesced dimension `d`.
    @inlinable public func stride(_ k: Int, _ d: Int) -> Int { flat[k * shape.count + d] }
    /// Inner stride of operand `k`.
    @inlinable public func innerStride(_ k: Int) -> Int { flat[k * shape.count + shape.count - 1] }
    /// True when the space is one flat run with stride 1 for every operand.
    @inlinable public var isContiguous: Bool {
        shape.count == 1 && !flat.contains { $0 != 1 }
    }

    /// Calls `body` with each operand's starting offset for every row in `rows`.
    @inlinable
    public func forEachRow(_ rows: Range<Int>, _ body: (UnsafeMutablePointer<Int>) -> Void) {
        let k = operands
        let r = shape.count
        let outerDims = r - 1
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
                for j in 0..<k { off[j] += i * flat[j * r + d] }
                d -= 1
            }
            for _ in rows {
                body(off)
                var dd = outerDims - 1
                while dd >= 0 {
                    idx[dd] += 1
                    for j in 0..<k { off[j] += flat[j * r + dd] }
                    if idx[dd] < shape[dd] { break }
                    for j in 0..<k { off[j] -= flat[j * r + dd] * shape[dd] }
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
    let k = p.operands
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
        kept = StridedPlan(shape: keptShape, outStrides, inKeptStrides)
        reduced = StridedPlan(shape: reducedShape, inReducedStrides)
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
