import CEmberKernels
import RealModule

/// A vectorized single-precision exponential (Cephes' expf: range reduction by ln 2, a
/// degree-5 polynomial, scaling by 2ⁿ through the exponent bits). Relative error below
/// 2·10⁻⁷ over the whole range; over/underflows to ∞/0 like `expf`. Plain multiply-adds,
/// so it is safe on the baseline instruction set.
@inlinable @inline(__always)
public func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let hi = SIMD8<Float>(repeating: 88.72283905206835), lo = SIMD8<Float>(repeating: -87.33654475055310)
    let nan = x .!= x
    let over = x .> hi, under = x .< lo
    var v = x
    v.replace(with: hi, where: over)
    v.replace(with: lo, where: under)
    let n = (v * 1.44269504088896341 + 0.5).rounded(.down)
    v = v - n * 0.693359375 + n * 2.12194440e-4
    let v2 = v * v
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * v + 1.3981999507e-3
    p = p * v + 8.3334519073e-3
    p = p * v + 4.1665795894e-2
    p = p * v + 1.6666665459e-1
    p = p * v + 5.0000001201e-1
    p = p * v2 + v + 1
    // 2^n: n + 127 in the exponent field (n in [-126, 128] after clamping; split to stay normal).
    // n is integral and |n| ≤ 128: adding 1.5·2²³ puts it in the low mantissa bits.
    let ni = unsafeBitCast(n + 12_582_912, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let half = ni &>> 1
    let s1 = unsafeBitCast((half &+ 127) &<< 23, to: SIMD8<Float>.self)
    let s2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: SIMD8<Float>.self)
    var r = p * s1 * s2
    r.replace(with: .infinity, where: over)
    r.replace(with: 0, where: under)
    r.replace(with: x, where: nan)
    return r
}

/// Scalar companion of `fastExp` (same polynomial, for tails).
@inlinable @inline(__always)
public func fastExp(_ x: Float) -> Float { fastExp(SIMD8<Float>(repeating: x))[0] }

/// `y = exp(x)` over `n` contiguous floats with the best kernel for this CPU.
@inlinable
public func expContiguous(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    switch CPUFeatures.active {
    case .avx512: ember_exp_avx512(x, y, n); return
    case .avx2: ember_exp_avx2(x, y, n); return
    case .baseline: break
    }
    var i = 0
    while i + 8 <= n {
        UnsafeMutableRawPointer(y + i).storeBytes(of: fastExp(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)), as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { y[i] = fastExp(x[i]); i += 1 }
}

/// log Σ exp of a contiguous row (AVX2 or AVX-512 kernel where available).
@inlinable
public func logSumExpRow(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    switch CPUFeatures.active {
    case .avx512: return ember_logsumexp_avx512(x, n)
    case .avx2: return ember_logsumexp_avx2(x, n)
    case .baseline: break
    }
    var m = -Float.infinity
    for j in 0..<n { m = Swift.max(m, x[j]) }
    if m == -.infinity { m = 0 }
    var sv = SIMD8<Float>(), tail: Float = 0, j = 0
    let mm = SIMD8<Float>(repeating: m)
    while j + 8 <= n { sv += fastExp(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) - mm); j += 8 }
    while j < n { tail += fastExp(x[j] - m); j += 1 }
    return m + Float.log(sv.sum() + tail)
}

/// Softmax (or log-softmax) of each contiguous row of `n` floats: `out = exp(x − max) / Σ`
/// (or `x − max − log Σ`), in three passes over the row with vectorized exp.
@inlinable
public func softmaxRows(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, n: Int, log: Bool) {
    parallelFor(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(n, 1))) { range in
        switch CPUFeatures.active {
        case .avx512:
            ember_softmax_rows_avx512(x + range.lowerBound * n, out + range.lowerBound * n, range.count, n, log ? 1 : 0)
            return
        case .avx2:
            ember_softmax_rows_avx2(x + range.lowerBound * n, out + range.lowerBound * n, range.count, n, log ? 1 : 0)
            return
        case .baseline: break
        }
        for r in range {
            let a = x + r * n, o = out + r * n
            var m = -Float.infinity
            var i = 0
            var mv = SIMD8<Float>(repeating: -.infinity)
            while i + 8 <= n {
                let v = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
                mv.replace(with: v, where: v .> mv)
                i += 8
            }
            m = mv.max()
            while i < n { m = Swift.max(m, a[i]); i += 1 }
            if m.isNaN || m == -.infinity { m = m.isNaN ? m : 0 }
            let mm = SIMD8<Float>(repeating: m)
            var sv = SIMD8<Float>()
            var tail: Float = 0
            i = 0
            while i + 8 <= n {
                let e = fastExp(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) - mm)
                if !log { UnsafeMutableRawPointer(o + i).storeBytes(of: e, as: SIMD8<Float>.self) }
                sv += e
                i += 8
            }
            while i < n {
                let e = fastExp(a[i] - m)
                if !log { o[i] = e }
                tail += e
                i += 1
            }
            let sum = sv.sum() + tail
            if log {
                let shift = m + Float.log(sum)
                for j in 0..<n { o[j] = a[j] - shift }
            } else {
                let inv = 1 / sum
                for j in 0..<n { o[j] *= inv }
            }
        }
    }
}
