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

/// `r[i] = f(a[i])` over a plan whose operands are (r, a).
@inlinable
public func map1<A, R>(_ p: StridedPlan, _ a: UnsafePointer<A>, _ r: UnsafeMutablePointer<R>, _ f: (A) -> R) {
    if p.isContiguous {
        parallelFor(p.count, grain: elementwiseGrain) { range in
            for i in range { r[i] = f(a[i]) }
        }
        return
    }
    let sr = p.innerStride(0), sa = p.innerStride(1), n = p.inner
    parallelFor(p.rows, grain: max(1, elementwiseGrain / max(n, 1))) { rows in
        p.forEachRow(rows) { off in
            var pr = r + off[0], pa = a + off[1]
            for _ in 0..<n { pr.pointee = f(pa.pointee); pr += sr; pa += sa }
        }
    }
}

/// `r[i] = f(a[i], b[i])` over a plan whose operands are (r, a, b).
@inlinable
public func map2<A, B, R>(
    _ p: StridedPlan, _ a: UnsafePointer<A>, _ b: UnsafePointer<B>, _ r: UnsafeMutablePointer<R>,
    _ f: (A, B) -> R
) {
    if p.isContiguous {
        parallelFor(p.count, grain: elementwiseGrain) { range in
            for i in range { r[i] = f(a[i], b[i]) }
        }
        return
    }
    let sr = p.innerStride(0), sa = p.innerStride(1), sb = p.innerStride(2), n = p.inner
    if sr == 1 && sa == 1 && sb == 0 {  // tensor ⊕ broadcast scalar row
        parallelFor(p.rows, grain: max(1, elementwiseGrain / max(n, 1))) { rows in
            p.forEachRow(rows) { off in
                let pr = r + off[0], pa = a + off[1], bv = b[off[2]]
                for i in 0..<n { pr[i] = f(pa[i], bv) }
            }
        }
        return
    }
    parallelFor(p.rows, grain: max(1, elementwiseGrain / max(n, 1))) { rows in
        p.forEachRow(rows) { off in
            var pr = r + off[0], pa = a + off[1], pb = b + off[2]
            for _ in 0..<n { pr.pointee = f(pa.pointee, pb.pointee); pr += sr; pa += sa; pb += sb }
        }
    }
}

/// `r[i] = f(a[i], b[i], c[i])` over a plan whose operands are (r, a, b, c).
@inlinable
public func map3<A, B, C, R>(
    _ p: StridedPlan, _ a: UnsafePointer<A>, _ b: UnsafePointer<B>, _ c: UnsafePointer<C>,
    _ r: UnsafeMutablePointer<R>, _ f: (A, B, C) -> R
) {
    let sr = p.innerStride(0), sa = p.innerStride(1), sb = p.innerStride(2), sc = p.innerStride(3)
    let n = p.inner
    parallelFor(p.rows, grain: max(1, elementwiseGrain / max(n, 1))) { rows in
        p.forEachRow(rows) { off in
            var pr = r + off[0], pa = a + off[1], pb = b + off[2], pc = c + off[3]
            for _ in 0..<n {
                pr.pointee = f(pa.pointee, pb.pointee, pc.pointee)
                pr += sr; pa += sa; pb += sb; pc += sc
            }
        }
    }
}

/// A reduction: for every output element (an index of the kept dimensions), folds the
/// input over the reduced dimensions. `combine` receives the element and its row-major
/// position inside the reduced space; `merge` (when given) joins partial results so that a
/// large reduction into few outputs can run on several threads.
@inlinable
public func reduceStrided<A, Acc, R>(
    keptShape: [Int], outStrides: [Int], inKeptStrides: [Int],
    reducedShape: [Int], inReducedStrides: [Int],
    _ a: UnsafePointer<A>, _ r: UnsafeMutablePointer<R>,
    initial: Acc, combine: (inout Acc, A, Int) -> Void, merge: ((inout Acc, Acc) -> Void)?,
    finish: (Acc) -> R
) {
    let kept = StridedPlan(shape: keptShape, strides: [outStrides, inKeptStrides])
    let red = StridedPlan(shape: reducedShape, strides: [inReducedStrides])
    let redCount = red.count
    let n = red.inner, s = red.innerStride(0)

    // Folds reduced rows `rows` starting at input offset `base`.
    @inline(__always) func fold(_ acc: inout Acc, base: Int, rows: Range<Int>) {
        var j = rows.lowerBound * n
        red.forEachRow(rows) { off in
            var pa = a + base + off[0]
            if s == 1 {
                for i in 0..<n { combine(&acc, pa[i], j + i) }
            } else {
                for i in 0..<n { combine(&acc, pa.pointee, j + i); pa += s }
            }
            j += n
        }
    }

    let outCount = kept.count
    if let merge, outCount < CPUThreads.count, redCount >= 2 * elementwiseGrain, red.rows >= CPUThreads.count {
        // Few outputs, large reduction: split the reduced rows across threads.
        let chunks = CPUThreads.count
        let per = (red.rows + chunks - 1) / chunks
        var partials = [Acc](repeating: initial, count: chunks * outCount)
        kept.forEachRow(0..<kept.rows) { koff in
            let ko = koff[0], ki = koff[1]
            let so = kept.innerStride(0), si = kept.innerStride(1)
            for e in 0..<kept.inner {
                let outOff = ko + e * so, base = ki + e * si
                let slot = outOff  // outputs are dense: offsets are slots
                partials.withUnsafeMutableBufferPointer { pbuf in
                    let pp = pbuf.baseAddress!
                    parallelTasks(chunks) { c in
                        let lo = c * per, hi = min(red.rows, lo + per)
                        if lo < hi { fold(&pp[c * outCount + slot], base: base, rows: lo..<hi) }
                    }
                }
                var acc = partials[slot]
                for c in 1..<chunks { merge(&acc, partials[c * outCount + slot]) }
                r[outOff] = finish(acc)
            }
        }
        return
    }
    let so = kept.innerStride(0), si = kept.innerStride(1), kn = kept.inner
    parallelFor(kept.rows, grain: max(1, elementwiseGrain / max(redCount * kn, 1))) { rows in
        kept.forEachRow(rows) { koff in
            for e in 0..<kn {
                var acc = initial
                fold(&acc, base: koff[1] + e * si, rows: 0..<red.rows)
                r[koff[0] + e * so] = finish(acc)
            }
        }
    }
}
