import Foundation

/// A seedable random number generator (xoshiro256**, seeded through SplitMix64).
/// Safe to share across threads.
public final class Generator: @unchecked Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private let lock = Lock()
    public private(set) var initialSeed: UInt64

    public init(seed: UInt64 = 0x853c_49e6_748f_ea9b) {
        initialSeed = seed
        reseed(seed)
    }

    /// Restarts the stream from `seed`.
    public func manualSeed(_ seed: UInt64) { lock.withLock { reseed(seed) } }

    private func reseed(_ seed: UInt64) {
        initialSeed = seed
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9e37_79b9_7f4a_7c15
            var x = z
            x = (x ^ (x >> 30)) &* 0xbf58_476d_1ce4_e5b9
            x = (x ^ (x >> 27)) &* 0x94d0_49bb_1331_11eb
            return x ^ (x >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// Runs `body` with exclusive access to the stream (one lock for a whole fill).
    func generate<R>(_ body: (inout RandomStream) -> R) -> R {
        lock.withLock {
            var st = RandomStream(s: s)
            let r = body(&st)
            s = st.s
            return r
        }
    }

    /// A uniform 64-bit value.
    public func next() -> UInt64 { generate { $0.next() } }
}

/// The xoshiro256** state, advanced under the generator's lock.
struct RandomStream {
    var s: (UInt64, UInt64, UInt64, UInt64)

    @inline(__always) mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    @inline(__always) mutating func unit() -> Double { unitDouble(next()) }
}

@inline(__always) func unitDouble(_ x: UInt64) -> Double { Double(x >> 11) * 0x1.0p-53 }

extension Tensor {
    /// Values drawn on the host (so that a seed gives the same numbers on every device),
    /// written to a new tensor on `device`.
    private static func host(_ shape: [Int], _ dtype: DType, _ device: Device, _ gen: Generator?,
                             _ f: (inout RandomStream, Int) -> Double) -> Tensor {
        let n = shape.reduce(1, *)
        return fromHost(shape, dtype: dtype, device: device) { base in
            (gen ?? Ember.defaultGenerator).generate { st in
                for i in 0..<n { storeDouble(f(&st, i), base, i, dtype) }
            }
        }
    }

    /// Uniform samples in `[0, 1)` (`torch.rand`).
    public static func rand(_ shape: [Int], dtype: DType = .defaultFloat, device: Device = .cpu,
                            generator: Generator? = nil, requiresGrad: Bool = false) -> Tensor {
        uniform(shape, low: 0, high: 1, dtype: dtype, device: device, generator: generator, requiresGrad: requiresGrad)
    }

    /// Uniform samples in `[low, high)`.
    public static func uniform(_ shape: [Int], low: Double, high: Double, dtype: DType = .defaultFloat,
                               device: Device = .cpu, generator: Generator? = nil, requiresGrad: Bool = false) -> Tensor {
        let r = host(shape, dtype, device, generator) { st, _ in
            var v = low + (high - low) * st.unit()
            if v >= high { v = low }  // rounding into a lower precision never reaches `high`
            return v
        }
        if requiresGrad { r.requiresGrad = true }
        return r
    }

    /// Standard normal samples (`torch.randn`), by the Box–Muller transform.
    public static func randn(_ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .defaultFloat,
                             device: Device = .cpu, generator: Generator? = nil, requiresGrad: Bool = false) -> Tensor {
        var spare: Double? = nil
        let r = host(shape, dtype, device, generator) { st, _ in
            if let s = spare { spare = nil; return mean + std * s }
            var u1 = st.unit()
            while u1 <= 0 { u1 = st.unit() }
            let u2 = st.unit()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            spare = r * Foundation.sin(2 * .pi * u2)
            return mean + std * r * Foundation.cos(2 * .pi * u2)
        }
        if requiresGrad { r.requiresGrad = true }
        return r
    }

    /// Integers uniform in `[low, high)` (`torch.randint`), int64 by default.
    public static func randint(_ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64, device: Device = .cpu,
                               generator: Generator? = nil) -> Tensor {
        checked { try require(high > low, "randint: expected low < high, but got low=\(low), high=\(high)") }
        let span = UInt64(high - low)
        let n = shape.reduce(1, *)
        return fromHost(shape, dtype: dtype, device: device) { base in
            (generator ?? Ember.defaultGenerator).generate { st in
                for i in 0..<n {
                    // Rejection sampling: no modulo bias.
                    let limit = UInt64.max - UInt64.max % span
                    var x = st.next()
                    while x >= limit { x = st.next() }
                    storeInt64(Int64(low) + Int64(x % span), base, i, dtype)
                }
            }
        }
    }

    /// A random permutation of `0..<n` (`torch.randperm`), int64.
    public static func randperm(_ n: Int, device: Device = .cpu, generator: Generator? = nil) -> Tensor {
        var a = Array(0..<Int64(n))
        (generator ?? Ember.defaultGenerator).generate { st in
            var i = n - 1
            while i > 0 {
                let j = Int(st.next() % UInt64(i + 1))
                a.swapAt(i, j)
                i -= 1
            }
        }
        return Tensor(a, shape: [n], device: device)
    }

    /// Samples 1 with probability `self[i]`, else 0 (`torch.bernoulli`); same dtype as `self`.
    public func bernoulli(generator: Generator? = nil) -> Tensor {
        let p = toArray(Double.self)
        var i = -1
        return Tensor.host(shape, dtype.isFloatingPoint ? dtype : .defaultFloat, device, generator) { st, _ in
            i += 1
            return st.unit() < p[i] ? 1 : 0
        }
    }

    /// Samples 1 with probability `p` for every element of a tensor of `shape`.
    public static func bernoulli(_ shape: [Int], p: Double, dtype: DType = .defaultFloat, device: Device = .cpu,
                                 generator: Generator? = nil) -> Tensor {
        host(shape, dtype, device, generator) { st, _ in st.unit() < p ? 1 : 0 }
    }
}
