import EmberCore

/// An order of sample indices for each epoch (`torch.utils.data.Sampler`).
public protocol Sampler {
    /// The indices of `epoch` (a seeded sampler gives a different, reproducible order per epoch).
    func indices(epoch: Int) -> [Int]
}

/// `0, 1, 2, …`
public struct SequentialSampler: Sampler {
    public let count: Int
    public init(count: Int) { self.count = count }
    public func indices(epoch: Int) -> [Int] { Array(0..<count) }
}

/// A seeded permutation per epoch, or `numSamples` draws with replacement.
public struct RandomSampler: Sampler {
    public let count: Int, replacement: Bool, numSamples: Int, seed: UInt64
    public init(count: Int, replacement: Bool = false, numSamples: Int? = nil, seed: UInt64 = 0) {
        Ember.check(replacement || numSamples == nil || numSamples! <= count, "RandomSampler: numSamples > count needs replacement")
        self.count = count
        self.replacement = replacement
        self.numSamples = numSamples ?? count
        self.seed = seed
    }
    public func indices(epoch: Int) -> [Int] {
        let g = Generator(seed: SampleRandom.seed(seed, epoch: epoch, index: -1))
        if replacement { return Tensor.randint(0, count, [numSamples], generator: g).toArray(Int.self) }
        return Array(Tensor.randperm(count, generator: g).toArray(Int.self).prefix(numSamples))
    }
}

/// Draws indices with probability proportional to `weights` (`WeightedRandomSampler`).
public struct WeightedRandomSampler: Sampler {
    public let weights: [Double], numSamples: Int, replacement: Bool, seed: UInt64
    public init(weights: [Double], numSamples: Int, replacement: Bool = true, seed: UInt64 = 0) {
        Ember.check(weights.allSatisfy { $0 >= 0 } && weights.contains { $0 > 0 }, "WeightedRandomSampler: weights must be non-negative, not all zero")
        Ember.check(replacement || numSamples <= weights.filter { $0 > 0 }.count, "WeightedRandomSampler: not enough positive weights without replacement")
        self.weights = weights
        self.numSamples = numSamples
        self.replacement = replacement
        self.seed = seed
    }
    public func indices(epoch: Int) -> [Int] {
        let g = Generator(seed: SampleRandom.seed(seed, epoch: epoch, index: -2))
        var w = weights
        var out: [Int] = []
        for _ in 0..<numSamples {
            var cumulative: [Double] = []
            var acc = 0.0
            for v in w { acc += v; cumulative.append(acc) }
            let u = Double(g.next() >> 11) * 0x1.0p-53 * acc
            let i = cumulative.firstIndex { u < $0 } ?? (w.count - 1)
            out.append(i)
            if !replacement { w[i] = 0 }
        }
        return out
    }
}

/// Groups a sampler's indices into batches (`BatchSampler`).
public struct BatchSampler {
    public let sampler: Sampler, batchSize: Int, dropLast: Bool
    public init(_ sampler: Sampler, batchSize: Int, dropLast: Bool = false) {
        Ember.check(batchSize > 0, "BatchSampler: batchSize must be positive, got \(batchSize)")
        self.sampler = sampler
        self.batchSize = batchSize
        self.dropLast = dropLast
    }
    public func batches(epoch: Int) -> [[Int]] {
        let idx = sampler.indices(epoch: epoch)
        var out: [[Int]] = []
        var i = 0
        while i < idx.count {
            let end = Swift.min(i + batchSize, idx.count)
            if end - i == batchSize || !dropLast { out.append(Array(idx[i..<end])) }
            i = end
        }
        return out
    }
}

/// The share of rank `rank` among `numReplicas` processes (`DistributedSampler`): the same
/// seeded shuffle on every rank, padded by wrapping around (or truncated with `dropLast`) so
/// that every rank gets the same number of samples.
public struct DistributedSampler: Sampler {
    public let count: Int, numReplicas: Int, rank: Int, shuffle: Bool, seed: UInt64, dropLast: Bool
    public init(count: Int, numReplicas: Int, rank: Int, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false) {
        Ember.check(rank >= 0 && rank < numReplicas, "DistributedSampler: invalid rank \(rank) for \(numReplicas) replicas")
        self.count = count
        self.numReplicas = numReplicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
    }

    /// Samples per rank.
    public var numSamples: Int {
        dropLast && count % numReplicas != 0 ? count / numReplicas : (count + numReplicas - 1) / numReplicas
    }

    public func indices(epoch: Int) -> [Int] {
        var idx = shuffle ? RandomSampler(count: count, seed: seed).indices(epoch: epoch) : Array(0..<count)
        let total = numSamples * numReplicas
        if total > idx.count {
            var i = 0
            while idx.count < total { idx.append(idx[i % count]); i += 1 }
        } else {
            idx = Array(idx.prefix(total))
        }
        return stride(from: rank, to: total, by: numReplicas).map { idx[$0] }
    }
}
