import EmberCore
import Foundation

/// The random stream of the sample being loaded. Inside a DataLoader it is derived from
/// (seed, epoch, sample index) alone, so augmentations are identical for any number of
/// workers; outside a loader it is the default generator.
public enum SampleRandom {
    final class Slot { var generator: Generator? }
    private static let local = ThreadLocal { Slot() }
    static var slot: Slot { local.value }

    /// The generator transforms draw from.
    public static var current: Generator { slot.generator ?? Ember.defaultGenerator }

    /// Runs `body` with `generator` as the current sample stream.
    static func with<R>(_ generator: Generator, _ body: () throws -> R) rethrows -> R {
        let s = slot
        let saved = s.generator
        s.generator = generator
        defer { s.generator = saved }
        return try body()
    }

    /// The stream for sample `index` of `epoch` under `seed` (SplitMix64 mixing).
    static func seed(_ seed: UInt64, epoch: Int, index: Int) -> UInt64 {
        var z = seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(truncatingIfNeeded: index) &* 0xBF58_476D_1CE4_E5B9)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Image transforms on `[C, H, W]` float tensors (`torchvision.transforms`).
public enum Transforms {
    /// `(x - mean[c]) / std[c]` per channel.
    public static func normalize(mean: [Double], std: [Double]) -> (Tensor) -> Tensor {
        let m = Tensor(mean, shape: [mean.count, 1, 1]), s = Tensor(std, shape: [std.count, 1, 1])
        return { x in (x - m.to(x.dtype)) / s.to(x.dtype) }
    }

    /// Pads by `padding` (zeros) and crops a random `size`×`size` window.
    public static func randomCrop(size: Int, padding: Int = 0) -> (Tensor) -> Tensor {
        { x in
            let p = padding > 0 ? x.pad([padding, padding, padding, padding]) : x
            let h = p.shape[p.rank - 2], w = p.shape[p.rank - 1]
            Ember.check(h >= size && w >= size, "randomCrop: input \(x.shape) (padded \(p.shape)) is smaller than \(size)")
            let g = SampleRandom.current
            let top = Int(g.next() % UInt64(h - size + 1)), left = Int(g.next() % UInt64(w - size + 1))
            return p.narrow(p.rank - 2, start: top, length: size).narrow(p.rank - 1, start: left, length: size).contiguous()
        }
    }

    /// Mirrors the image left–right with probability `p`.
    public static func randomHorizontalFlip(p: Double = 0.5) -> (Tensor) -> Tensor {
        { x in
            let u = Double(SampleRandom.current.next() >> 11) * 0x1.0p-53
            guard u < p else { return x }
            let w = x.shape[x.rank - 1]
            return x.indexSelect(x.rank - 1, Tensor.arange(Double(w - 1), -1, step: -1, dtype: .int64))
        }
    }

    /// Applies transforms in order.
    public static func compose(_ transforms: [(Tensor) -> Tensor]) -> (Tensor) -> Tensor {
        { x in transforms.reduce(x) { $1($0) } }
    }

    /// Any function of a tensor.
    public static func lambda(_ f: @escaping (Tensor) -> Tensor) -> (Tensor) -> Tensor { f }
}
