import RealModule

/// Dense factorizations of one row-major float64 matrix, with LAPACK's conventions (pivots,
/// Householder signs, `info` codes), so that results agree with PyTorch's LAPACK calls:
/// blocked LU with partial pivoting and blocked Cholesky (trailing updates through the
/// packed GEMM), triangular solves, Householder QR, symmetric eigendecomposition (cyclic
/// Jacobi) and the SVD (one-sided Jacobi: accurate to the last bit for small singular values).
public enum Dense {
    static let block = 64

    // MARK: LU

    /// LU with partial pivoting in place: `a` [m, n] becomes L (unit, below the diagonal) and
    /// U (on and above); `pivots[j]` (1-based) is the row swapped with row j, as LAPACK's
    /// `ipiv`. Returns 0, or j + 1 for the first exactly-zero pivot (the factorization goes on).
    public static func lu(_ a: UnsafeMutablePointer<Double>, m: Int, n: Int, pivots: UnsafeMutablePointer<Int32>) -> Int {
        let k = Swift.min(m, n)
        var info = 0
        var j0 = 0
        while j0 < k {
            let jb = Swift.min(block, k - j0)
            // Panel: columns j0..<j0+jb, rows j0..<m, unblocked; whole rows are swapped.
            for j in j0..<(j0 + jb) {
                var p = j, best = Swift.abs(a[j * n + j])
                for i in (j + 1)..<Swift.max(m, j + 1) where Swift.abs(a[i * n + j]) > best {
                    best = Swift.abs(a[i * n + j]); p = i
                }
                pivots[j] = Int32(p + 1)
                if a[p * n + j] != 0 {
                    if p != j { for c in 0..<n { let t = a[j * n + c]; a[j * n + c] = a[p * n + c]; a[p * n + c] = t } }
                    let d = a[j * n + j]
                    if Swift.abs(d) >= Double.leastNormalMagnitude {
                        let r = 1 / d
                        for i in (j + 1)..<Swift.max(m, j + 1) { a[i * n + j] *= r }
                    } else {
                        for i in (j + 1)..<Swift.max(m, j + 1) { a[i * n + j] /= d }
                    }
                } else if info == 0 {
                    info = j + 1
                }
                let end = j0 + jb
                if j + 1 < end {
                    for i in (j + 1)..<Swift.max(m, j + 1) {
                        let l = a[i * n + j]
                        if l == 0 { continue }
                        for c in (j + 1)..<end { a[i * n + c] -= l * a[j * n + c] }
                    }
                }
            }
            let e = j0 + jb
            if e < n {
                // U12 = L11⁻¹ A12 (unit lower), then A22 -= L21 · U12.
                triangularSolve(UnsafePointer(a + j0 * n + j0), rowStride: n, colStride: 1, n: jb, upper: false, unitDiagonal: true,
                                a + j0 * n + e, rowStride: n, colStride: 1, k: n - e)
                if e < m { subtractProduct(a, lda: n, rows: e..<m, cols: e..<n, inner: j0..<e) }
            }
            j0 = e
        }
        return info
    }

    /// `a[rows, cols] -= a[rows, inner] · a[inner, cols]` through the packed GEMM.
    static func subtractProduct(_ a: UnsafeMutablePointer<Double>, lda: Int, rows: Range<Int>, cols: Range<Int>, inner: Range<Int>,
                                transposedRight: Bool = false) {
        let mm = rows.count, nn = cols.count, kk = inner.count
        if mm == 0 || nn == 0 || kk == 0 { return }
        let neg = UnsafeMutablePointer<Double>.allocate(capacity: mm * kk)
        defer { neg.deallocate() }
        for (r, i) in rows.enumerated() { for (q, c) in inner.enumerated() { neg[r * kk + q] = -a[i * lda + c] } }
        let c = a + rows.lowerBound * lda + cols.lowerBound
        if transposedRight {
            // a[inner, cols] read as a[cols, inner]ᵀ.
            let b = a + cols.lowerBound * lda + inner.lowerBound
            GEMM.dgemm(m: mm, n: nn, k: kk, a: neg, rowStrideA: kk, colStrideA: 1, b: b, rowStrideB: 1, colStrideB: lda,
                       c: c, ldc: lda, accumulate: true)
        } else {
            let b = a + inner.lowerBound * lda + cols.lowerBound
            GEMM.dgemm(m: mm, n: nn, k: kk, a: neg, rowStrideA: kk, colStrideA: 1, b: b, rowStrideB: lda, colStrideB: 1,
                       c: c, ldc: lda, accumulate: true)
        }
    }

    // MARK: Cholesky

    /// The lower Cholesky factor in place from the lower triangle of `a` [n, n] (the upper
    /// triangle is zeroed). Returns 0, or i + 1 when the leading minor of order i + 1 is not
    /// positive definite (LAPACK's `info`; the factor is then incomplete).
    public static func cholesky(_ a: UnsafeMutablePointer<Double>, n: Int) -> Int {
        for i in 0..<n { for j in (i + 1)..<Swift.max(n, i + 1) { a[i * n + j] = 0 } }
        var j0 = 0
        while j0 < n {
            let jb = Swift.min(block, n - j0), e = j0 + jb
            // Diagonal block, unblocked (earlier blocks' updates are already applied).
            for j in j0..<e {
                var d = a[j * n + j]
                for c in j0..<j { d -= a[j * n + c] * a[j * n + c] }
                if !(d > 0) { return j + 1 }
                d = d.squareRoot()
                a[j * n + j] = d
                for i in (j + 1)..<e {
                    var s = a[i * n + j]
                    for c in j0..<j { s -= a[i * n + c] * a[j * n + c] }
                    a[i * n + j] = s / d
                }
            }
            if e < n {
                // L21 = A21 · L11⁻ᵀ: solve L11 · L21ᵀ = A21ᵀ on a transposed copy (rows of
                // length n − e, so the solve runs along contiguous rows).
                let r = n - e
                let t = UnsafeMutablePointer<Double>.allocate(capacity: jb * r)
                defer { t.deallocate() }
                for i in 0..<r { for j in 0..<jb { t[j * r + i] = a[(e + i) * n + j0 + j] } }
                triangularSolve(UnsafePointer(a + j0 * n + j0), rowStride: n, colStride: 1, n: jb, upper: false, unitDiagonal: false,
                                t, rowStride: r, colStride: 1, k: r)
                for i in 0..<r { for j in 0..<jb { a[(e + i) * n + j0 + j] = t[j * r + i] } }
                // A22 -= L21 · L21ᵀ, lower part only: one product per block of columns.
                var c0 = e
                while c0 < n {
                    let c1 = Swift.min(n, c0 + block)
                    subtractProduct(a, lda: n, rows: c0..<n, cols: c0..<c1, inner: j0..<e, transposedRight: true)
                    c0 = c1
                }
            }
            j0 = e
        }
        for i in 0..<n { for j in (i + 1)..<Swift.max(n, i + 1) { a[i * n + j] = 0 } }
        return 0
    }

    // MARK: triangular solves

    /// Solves `A X = B` in place of `b` for triangular `A` [n, n] and `B` [n, k], both read
    /// through (row, column) strides (a transposed operand costs nothing). A zero on the
    /// diagonal gives infinities and NaNs, as LAPACK's `trsm`. Blocks of rows are solved in
    /// turn; each block's effect on the rows after it is one GEMM.
    public static func triangularSolve(_ a: UnsafePointer<Double>, rowStride ars: Int, colStride acs: Int, n: Int,
                                       upper: Bool, unitDiagonal: Bool,
                                       _ b: UnsafeMutablePointer<Double>, rowStride brs: Int, colStride bcs: Int, k: Int) {
        if n == 0 || k == 0 { return }
        if bcs != 1 {
            // Rows of B made contiguous first.
            let t = UnsafeMutablePointer<Double>.allocate(capacity: n * k)
            defer { t.deallocate() }
            for i in 0..<n { for c in 0..<k { t[i * k + c] = b[i * brs + c * bcs] } }
            triangularSolve(a, rowStride: ars, colStride: acs, n: n, upper: upper, unitDiagonal: unitDiagonal, t, rowStride: k, colStride: 1, k: k)
            for i in 0..<n { for c in 0..<k { b[i * brs + c * bcs] = t[i * k + c] } }
            return
        }
        let blocks = stride(from: 0, to: n, by: block).map { $0..<Swift.min(n, $0 + block) }
        let negated = UnsafeMutablePointer<Double>.allocate(capacity: n * block)
        defer { negated.deallocate() }
        for rows in (upper ? blocks.reversed() : blocks) {
            // Within the block: substitution row by row, each row an axpy over k columns.
            let order: [Int] = upper ? Array(rows.reversed()) : Array(rows)
            for i in order {
                let bi = b + i * brs
                let others = upper ? (i + 1)..<rows.upperBound : rows.lowerBound..<i
                for r in others {
                    let l = a[i * ars + r * acs]
                    if l == 0 { continue }
                    let br = b + r * brs
                    for c in 0..<k { bi[c] -= l * br[c] }
                }
                if !unitDiagonal {
                    let d = 1 / a[i * ars + i * acs]
                    for c in 0..<k { bi[c] *= d }
                }
            }
            // The rows still to solve: B[rest] -= A[rest, rows] · X[rows].
            let rest = upper ? 0..<rows.lowerBound : rows.upperBound..<n
            if rest.isEmpty { continue }
            let w = rows.count
            for (q, i) in rest.enumerated() { for (j, r) in rows.enumerated() { negated[q * w + j] = -a[i * ars + r * acs] } }
            GEMM.dgemm(m: rest.count, n: k, k: w, a: negated, rowStrideA: w, colStrideA: 1,
                       b: b + rows.lowerBound * brs, rowStrideB: brs, colStrideB: 1,
                       c: b + rest.lowerBound * brs, ldc: brs, accumulate: true)
        }
    }

    // MARK: QR

    /// Householder QR in place (LAPACK's `geqrf`): R on and above the diagonal of `a` [m, n],
    /// the reflectors' vectors (unit first entry implied) below it, their scales in `tau`
    /// [min(m, n)]. `H = I − τ v vᵀ` with `β = −sign(α)‖x‖`, as `dlarfg`.
    public static func geqrf(_ a: UnsafeMutablePointer<Double>, m: Int, n: Int, tau: UnsafeMutablePointer<Double>) {
        for j in 0..<Swift.min(m, n) {
            let alpha = a[j * n + j]
            var xnorm = 0.0
            for i in (j + 1)..<Swift.max(m, j + 1) { xnorm = Double.hypot(xnorm, a[i * n + j]) }
            if xnorm == 0 { tau[j] = 0; continue }
            let beta = -Double(signOf: alpha, magnitudeOf: Double.hypot(alpha, xnorm))
            tau[j] = (beta - alpha) / beta
            let scale = 1 / (alpha - beta)
            for i in (j + 1)..<m { a[i * n + j] *= scale }
            a[j * n + j] = beta
            for c in (j + 1)..<Swift.max(n, j + 1) {
                var w = a[j * n + c]
                for i in (j + 1)..<m { w += a[i * n + j] * a[i * n + c] }
                w *= tau[j]
                a[j * n + c] -= w
                for i in (j + 1)..<m { a[i * n + c] -= w * a[i * n + j] }
            }
        }
    }

    /// The first `columns` columns of `Q = H₀ H₁ … H_{k−1}` (LAPACK's `orgqr`) from geqrf's
    /// output `a` [m, n] and `tau` [k], into `q` [m, columns].
    public static func orgqr(_ a: UnsafePointer<Double>, m: Int, n: Int, tau: UnsafePointer<Double>, k: Int,
                             _ q: UnsafeMutablePointer<Double>, columns: Int) {
        for i in 0..<m { for c in 0..<columns { q[i * columns + c] = i == c ? 1 : 0 } }
        for j in stride(from: k - 1, through: 0, by: -1) where tau[j] != 0 {
            for c in 0..<columns {
                var w = q[j * columns + c]
                for i in (j + 1)..<m { w += a[i * n + j] * q[i * columns + c] }
                w *= tau[j]
                q[j * columns + c] -= w
                for i in (j + 1)..<m { q[i * columns + c] -= w * a[i * n + j] }
            }
        }
    }

    // MARK: symmetric eigendecomposition

    /// Eigenvalues (ascending, into `w` [n]) and orthonormal eigenvectors (the columns of `v`
    /// [n, n]) of the symmetric matrix whose lower triangle is in `a` [n, n] (overwritten),
    /// by cyclic Jacobi rotations.
    public static func eigh(_ a: UnsafeMutablePointer<Double>, n: Int, _ w: UnsafeMutablePointer<Double>,
                            _ v: UnsafeMutablePointer<Double>) {
        for i in 0..<n { for j in (i + 1)..<Swift.max(n, i + 1) { a[i * n + j] = a[j * n + i] } }
        for i in 0..<n { for j in 0..<n { v[i * n + j] = i == j ? 1 : 0 } }
        var scale = 0.0
        for i in 0..<(n * n) { scale = Swift.max(scale, Swift.abs(a[i])) }
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<i { off += a[i * n + j] * a[i * n + j] } }
            if off.squareRoot() <= Double.ulpOfOne * 0.5 * scale || scale == 0 || !off.isFinite { break }
            for p in 0..<n {
                for q in (p + 1)..<Swift.max(n, p + 1) {
                    let apq = a[p * n + q]
                    if apq == 0 { continue }
                    let app = a[p * n + p], aqq = a[q * n + q]
                    let theta = (aqq - app) / (2 * apq)
                    let t = Double(signOf: theta, magnitudeOf: 1) / (Swift.abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for r in 0..<n {  // A ← A J (columns p, q)
                        let x = a[r * n + p], y = a[r * n + q]
                        a[r * n + p] = c * x - s * y
                        a[r * n + q] = s * x + c * y
                    }
                    for r in 0..<n {  // A ← Jᵀ A (rows p, q)
                        let x = a[p * n + r], y = a[q * n + r]
                        a[p * n + r] = c * x - s * y
                        a[q * n + r] = s * x + c * y
                    }
                    a[p * n + q] = 0; a[q * n + p] = 0
                    for r in 0..<n {
                        let x = v[r * n + p], y = v[r * n + q]
                        v[r * n + p] = c * x - s * y
                        v[r * n + q] = s * x + c * y
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] < a[$1 * n + $1] || (a[$0 * n + $0] == a[$1 * n + $1] && $0 < $1) }
        let vs = Array(UnsafeBufferPointer(start: v, count: n * n))
        for (k, i) in order.enumerated() {
            w[k] = a[i * n + i]
            for r in 0..<n { v[r * n + k] = vs[r * n + i] }
        }
    }

    // MARK: SVD

    /// `A = U · diag(S) · Vh` of `a` [m, n] (read only): `s` [k] descending (k = min(m, n)),
    /// `u` [m, full ? m : k], `vh` [full ? n : k, n], orthonormal; singular vectors of zero
    /// singular values and the columns beyond k are completed to an orthonormal basis.
    public static func svd(_ a: UnsafePointer<Double>, m: Int, n: Int, full: Bool,
                           _ u: UnsafeMutablePointer<Double>, _ s: UnsafeMutablePointer<Double>, _ vh: UnsafeMutablePointer<Double>) {
        let k = Swift.min(m, n)
        let ucols = full ? m : k, vrows = full ? n : k
        // One-sided Jacobi works on the columns of the taller side: W = the rows of Aᵀ (m ≥ n)
        // or of A (m < n), length L = max(m, n), count k.
        let tall = m >= n, L = Swift.max(m, n)
        var wRows = [Double](repeating: 0, count: k * L)
        for r in 0..<k { for i in 0..<L { wRows[r * L + i] = tall ? a[i * n + r] : a[r * n + i] } }
        var rot = [Double](repeating: 0, count: k * k)  // rows: the accumulated rotations (Vᵀ or Uᵀ)
        for i in 0..<k { rot[i * k + i] = 1 }
        wRows.withUnsafeMutableBufferPointer { W in
            rot.withUnsafeMutableBufferPointer { R in
                let w = W.baseAddress!, r = R.baseAddress!
                // Sweeps of rotations in round-robin order: each round pairs every row with
                // another once, so the pairs of a round are independent and run in parallel.
                let players = k + (k & 1)
                var order = Array(0..<players)
                let pairsPerRound = players / 2
                let chunks = Swift.max(1, Swift.min(CPUThreads.count, pairsPerRound / 4))
                for _ in 0..<(k < 2 ? 0 : 80) {
                    var rotatedAny = false
                    for _ in 0..<Swift.max(1, players - 1) {
                        let snapshot = order
                        var flags = [Bool](repeating: false, count: chunks)
                        flags.withUnsafeMutableBufferPointer { fl in
                            let f = fl.baseAddress!
                            parallelTasks(chunks) { ch in
                                var any = false
                                var i = ch
                                while i < pairsPerRound {
                                    let p0 = snapshot[i], q0 = snapshot[players - 1 - i]
                                    i += chunks
                                    if p0 >= k || q0 >= k { continue }
                                    let (p, q) = p0 < q0 ? (p0, q0) : (q0, p0)
                                    if jacobiRotate(w + p * L, w + q * L, L, r + p * k, r + q * k, k) { any = true }
                                }
                                f[ch] = any
                            }
                        }
                        if flags.contains(true) { rotatedAny = true }
                        // Circle method: keep the first player, rotate the others by one.
                        if players > 2 { order.insert(order.removeLast(), at: 1) }
                    }
                    if !rotatedAny { break }
                }
            }
        }
        let norms = (0..<k).map { r in (0..<L).reduce(0.0) { $0 + wRows[r * L + $1] * wRows[r * L + $1] }.squareRoot() }
        let order = (0..<k).sorted { norms[$0] > norms[$1] || (norms[$0] == norms[$1] && $0 < $1) }
        let largest = norms.max() ?? 0
        // Left vectors of the long side (length L, up to L of them) and right ones (length k).
        var long = [Double](repeating: 0, count: L * L)
        var short = [Double](repeating: 0, count: k * k)
        var valid = [Bool](repeating: false, count: k)
        for (j, r) in order.enumerated() {
            s[j] = norms[r]
            for i in 0..<k { short[j * k + i] = rot[r * k + i] }
            if norms[r] > largest * Double(L) * Double.ulpOfOne && norms[r] > 0 {
                for i in 0..<L { long[j * L + i] = wRows[r * L + i] / norms[r] }
                valid[j] = true
            }
        }
        // Completion: replace vectors of zero singular values and add the columns beyond k.
        completeBasis(&long, length: L, count: tall ? ucols : vrows, valid: valid)
        if tall {
            for i in 0..<m { for c in 0..<ucols { u[i * ucols + c] = long[c * L + i] } }
            for r in 0..<vrows { for c in 0..<n { vh[r * n + c] = short[r * k + c] } }
        } else {
            for i in 0..<m { for c in 0..<ucols { u[i * ucols + c] = short[c * k + i] } }
            for r in 0..<vrows { for c in 0..<n { vh[r * n + c] = long[r * L + c] } }
        }
    }

    /// One Hestenes rotation of rows `x`, `y` (length `n`) that makes them orthogonal, applied
    /// to the accumulated rotations `u`, `v` (length `k`) too; false when they already are.
    @inline(__always)
    static func jacobiRotate(_ x: UnsafeMutablePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ n: Int,
                             _ u: UnsafeMutablePointer<Double>, _ v: UnsafeMutablePointer<Double>, _ k: Int) -> Bool {
        var a4 = SIMD4<Double>(), b4 = SIMD4<Double>(), g4 = SIMD4<Double>()
        var i = 0
        while i + 4 <= n {
            let p = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD4<Double>.self)
            let q = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD4<Double>.self)
            a4 += p * p; b4 += q * q; g4 += p * q
            i += 4
        }
        var alpha = a4.sum(), beta = b4.sum(), gamma = g4.sum()
        while i < n { alpha += x[i] * x[i]; beta += y[i] * y[i]; gamma += x[i] * y[i]; i += 1 }
        if gamma == 0 || Swift.abs(gamma) <= Double.ulpOfOne * (alpha * beta).squareRoot() { return false }
        let zeta = (beta - alpha) / (2 * gamma)
        let t = Double(signOf: zeta, magnitudeOf: 1) / (Swift.abs(zeta) + (1 + zeta * zeta).squareRoot())
        let c = 1 / (1 + t * t).squareRoot(), s = c * t
        func apply(_ x: UnsafeMutablePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ n: Int) {
            let c4 = SIMD4<Double>(repeating: c), s4 = SIMD4<Double>(repeating: s)
            var i = 0
            while i + 4 <= n {
                let p = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD4<Double>.self)
                let q = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD4<Double>.self)
                UnsafeMutableRawPointer(x + i).storeBytes(of: c4 * p - s4 * q, as: SIMD4<Double>.self)
                UnsafeMutableRawPointer(y + i).storeBytes(of: s4 * p + c4 * q, as: SIMD4<Double>.self)
                i += 4
            }
            while i < n {
                let p = x[i], q = y[i]
                x[i] = c * p - s * q
                y[i] = s * p + c * q
                i += 1
            }
        }
        apply(x, y, n)
        apply(u, v, k)
        return true
    }

    /// Makes the first `count` rows of `basis` [·, length] orthonormal: rows marked valid are
    /// kept, the others (and those beyond `valid`) are filled with unit vectors orthogonalised
    /// against the rest (twice, by modified Gram–Schmidt).
    static func completeBasis(_ basis: inout [Double], length L: Int, count: Int, valid: [Bool]) {
        var ok = (0..<count).map { $0 < valid.count && valid[$0] }
        for j in 0..<count where !ok[j] {
            var best = [Double](), bestNorm = -1.0
            for e in 0..<L {
                var x = [Double](repeating: 0, count: L)
                x[e] = 1
                for _ in 0..<2 {
                    for r in 0..<count where ok[r] {
                        var d = 0.0
                        for i in 0..<L { d += basis[r * L + i] * x[i] }
                        for i in 0..<L { x[i] -= d * basis[r * L + i] }
                    }
                }
                let nx = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if nx > bestNorm { bestNorm = nx; best = x }
                if nx > 0.7 { break }
            }
            for i in 0..<L { basis[j * L + i] = best[i] / bestNorm }
            ok[j] = true
        }
    }
}
