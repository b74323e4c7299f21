import EmberCore

/// Batch normalisation over the channel dimension 1 (`nn.BatchNorm1d` for `[N, C]` or
/// `[N, C, L]`, `nn.BatchNorm2d` for `[N, C, H, W]`): batch statistics in training (running
/// statistics updated with `momentum`, unbiased variance), running statistics in eval.
public final class BatchNorm: Module {
    @Parameter public var weight: Tensor?
    @Parameter public var bias: Tensor?
    @Buffer public var runningMean: Tensor?
    @Buffer public var runningVar: Tensor?
    @Buffer public var numBatchesTracked: Tensor?
    public let numFeatures: Int, eps: Double, momentum: Double?
    let expectedRanks: Set<Int>, name: String

    init(_ numFeatures: Int, eps: Double, momentum: Double?, affine: Bool, trackRunningStats: Bool, ranks: Set<Int>, name: String) {
        self.numFeatures = numFeatures
        self.eps = eps
        self.momentum = momentum
        expectedRanks = ranks
        self.name = name
        weight = affine ? Tensor.ones([numFeatures]) : nil
        bias = affine ? Tensor.zeros([numFeatures]) : nil
        runningMean = trackRunningStats ? Tensor.zeros([numFeatures]) : nil
        runningVar = trackRunningStats ? Tensor.ones([numFeatures]) : nil
        numBatchesTracked = trackRunningStats ? Tensor.zeros([], dtype: .int64) : nil
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        Ember.check(expectedRanks.contains(x.rank) && x.shape[1] == numFeatures,
                     "\(name): expected input of rank \(expectedRanks.sorted()) with \(numFeatures) channels, got shape \(x.shape)")
        let dims = [0] + Array(2..<x.rank)
        var bshape = [Int](repeating: 1, count: x.rank)
        bshape[1] = numFeatures
        let useBatch = training || runningMean == nil
        let y: Tensor
        if useBatch {
            let mean = x.mean(dims: dims, keepdim: true)
            let v = x.variance(dims: dims, correction: 0, keepdim: true)
            y = (x - mean) / (v + eps).sqrt()
            if training, let rm = runningMean, let rv = runningVar, let nbt = numBatchesTracked {
                let n = dims.reduce(1) { $0 * x.shape[$1] }
                withNoGrad {
                    nbt.add_(1)
                    let m = momentum ?? 1 / nbt.item()
                    rm.mul_(1 - m).add_(mean.reshape([numFeatures]) * m)
                    rv.mul_(1 - m).add_(v.reshape([numFeatures]) * (m * Double(n) / Double(Swift.max(n - 1, 1))))
                }
            }
        } else {
            y = (x - runningMean!.reshape(bshape)) / (runningVar!.reshape(bshape) + eps).sqrt()
        }
        if let w = weight, let b = bias { return y * w.reshape(bshape) + b.reshape(bshape) }
        return y
    }
}

public func BatchNorm1d(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
                        trackRunningStats: Bool = true) -> BatchNorm {
    BatchNorm(numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, ranks: [2, 3],
              name: "BatchNorm1d")
}

public func BatchNorm2d(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
                        trackRunningStats: Bool = true) -> BatchNorm {
    BatchNorm(numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats, ranks: [4],
              name: "BatchNorm2d")
}

/// Normalises over the last dimensions (`nn.LayerNorm`).
public final class LayerNorm: Module {
    @Parameter public var weight: Tensor?
    @Parameter public var bias: Tensor?
    public let normalizedShape: [Int], eps: Double

    public init(_ normalizedShape: [Int], eps: Double = 1e-5, elementwiseAffine: Bool = true, bias: Bool = true) {
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = elementwiseAffine ? Tensor.ones(normalizedShape) : nil
        self.bias = elementwiseAffine && bias ? Tensor.zeros(normalizedShape) : nil
        super.init()
    }
    public convenience init(_ size: Int, eps: Double = 1e-5) { self.init([size], eps: eps) }

    public override func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, normalizedShape, weight, bias, eps: eps) }
}

/// Functional layer norm over the trailing `normalizedShape`.
public func layerNorm(_ x: Tensor, _ normalizedShape: [Int], _ weight: Tensor? = nil, _ bias: Tensor? = nil, eps: Double = 1e-5) -> Tensor {
    Ember.check(Array(x.shape.suffix(normalizedShape.count)) == normalizedShape,
                 "layerNorm: input shape \(x.shape) does not end with the normalized shape \(normalizedShape)")
    let dims = Array((x.rank - normalizedShape.count)..<x.rank)
    let mean = x.mean(dims: dims, keepdim: true)
    var y = (x - mean) / (x.variance(dims: dims, correction: 0, keepdim: true) + eps).sqrt()
    if let weight { y = y * weight }
    if let bias { y = y + bias }
    return y
}

/// Normalises groups of channels (`nn.GroupNorm`).
public final class GroupNorm: Module {
    @Parameter public var weight: Tensor?
    @Parameter public var bias: Tensor?
    public let numGroups: Int, numChannels: Int, eps: Double

    public init(_ numGroups: Int, _ numChannels: Int, eps: Double = 1e-5, affine: Bool = true) {
        Ember.check(numChannels % numGroups == 0, "GroupNorm: num_channels (\(numChannels)) must be divisible by num_groups (\(numGroups))")
        self.numGroups = numGroups
        self.numChannels = numChannels
        self.eps = eps
        weight = affine ? Tensor.ones([numChannels]) : nil
        bias = affine ? Tensor.zeros([numChannels]) : nil
        super.init()
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        Ember.check(x.rank >= 2 && x.shape[1] == numChannels, "GroupNorm: expected \(numChannels) channels, got shape \(x.shape)")
        let g = x.reshape([x.shape[0], numGroups, -1])
        let y = ((g - g.mean(dim: 2, keepdim: true)) / (g.variance(dims: [2], correction: 0, keepdim: true) + eps).sqrt()).reshape(x.shape)
        var bshape = [Int](repeating: 1, count: x.rank)
        bshape[1] = numChannels
        if let w = weight, let b = bias { return y * w.reshape(bshape) + b.reshape(bshape) }
        return y
    }
}

// MARK: functional forms (`torch.nn.functional.*_norm`)

/// `torch.nn.functional.batch_norm` over `x [N, C, …]`: batch statistics with `training` (the
/// given running statistics updated in place: `(1 − momentum)·running + momentum·batch`, the
/// variance unbiased), else the running statistics.
public func batchNorm(_ x: Tensor, runningMean: Tensor?, runningVar: Tensor?, weight: Tensor? = nil, bias: Tensor? = nil,
                      training: Bool = false, momentum: Double = 0.1, eps: Double = 1e-5) -> Tensor {
    let c = x.rank >= 2 ? x.shape[1] : (x.rank == 1 ? x.shape[0] : 1)
    Ember.check(x.rank >= 1, "batch_norm: expected an input with a channel dimension, got shape \(x.shape)")
    for (name, t) in [("running_mean", runningMean), ("running_var", runningVar), ("weight", weight), ("bias", bias)] {
        if let t { Ember.check(t.count == c, "batch_norm: \(name) should contain \(c) elements not \(t.count) (input shape \(x.shape))") }
    }
    Ember.check(training || (runningMean != nil && runningVar != nil), "batch_norm: running_mean and running_var must be defined in evaluation mode")
    if x.count == 0 { return x.clone() }
    var bshape = [Int](repeating: 1, count: x.rank)
    if x.rank >= 2 { bshape[1] = c }
    let dims = x.rank >= 2 ? [0] + Array(2..<x.rank) : [0]
    var y: Tensor
    if training {
        let mean = x.mean(dims: dims, keepdim: true)
        let v = x.variance(dims: dims, correction: 0, keepdim: true)
        y = (x - mean) / (v + eps).sqrt()
        let n = dims.reduce(1) { $0 * x.shape[$1] }
        withNoGrad {
            if let rm = runningMean { rm.mul_(1 - momentum).add_(mean.reshape([c]).to(rm.dtype) * momentum) }
            if let rv = runningVar { rv.mul_(1 - momentum).add_(v.reshape([c]).to(rv.dtype) * (momentum * Double(n) / Double(Swift.max(n - 1, 1)))) }
        }
    } else {
        y = (x - runningMean!.reshape(bshape)) / (runningVar!.reshape(bshape) + eps).sqrt()
    }
    if let weight { y = y * weight.reshape(bshape) }
    if let bias { y = y + bias.reshape(bshape) }
    return y
}

/// `torch.nn.functional.instance_norm`: every (sample, channel) of `x [N, C, …]` normalised over
/// its own positions (`useInputStats`), the running statistics (when given) updated in place
/// with the batch mean of those statistics; without `useInputStats`, the running statistics.
public func instanceNorm(_ x: Tensor, runningMean: Tensor? = nil, runningVar: Tensor? = nil, weight: Tensor? = nil,
                         bias: Tensor? = nil, useInputStats: Bool = true, momentum: Double = 0.1, eps: Double = 1e-5) -> Tensor {
    Ember.check(x.rank >= 3, "instance_norm: expected an input [N, C, …] with at least one spatial dimension, got shape \(x.shape)")
    let c = x.shape[1]
    var bshape = [Int](repeating: 1, count: x.rank)
    bshape[1] = c
    var y: Tensor
    if useInputStats {
        let dims = Array(2..<x.rank)
        let mean = x.mean(dims: dims, keepdim: true)
        let v = x.variance(dims: dims, correction: 0, keepdim: true)
        y = (x - mean) / (v + eps).sqrt()
        let n = dims.reduce(1) { $0 * x.shape[$1] }
        withNoGrad {
            if let rm = runningMean { rm.mul_(1 - momentum).add_(mean.mean(dim: 0).reshape([c]).to(rm.dtype) * momentum) }
            if let rv = runningVar {
                rv.mul_(1 - momentum).add_(v.mean(dim: 0).reshape([c]).to(rv.dtype) * (momentum * Double(n) / Double(Swift.max(n - 1, 1))))
            }
        }
    } else {
        Ember.check(runningMean != nil && runningVar != nil, "instance_norm: Expected running_mean and running_var to be defined when use_input_stats is false")
        y = (x - runningMean!.reshape(bshape)) / (runningVar!.reshape(bshape) + eps).sqrt()
    }
    if let weight { y = y * weight.reshape(bshape) }
    if let bias { y = y + bias.reshape(bshape) }
    return y
}

/// `torch.nn.functional.group_norm`: the channels of `x [N, C, …]` in `numGroups` groups,
/// each normalised over its channels and positions, then a per-channel affine map.
public func groupNorm(_ x: Tensor, numGroups: Int, weight: Tensor? = nil, bias: Tensor? = nil, eps: Double = 1e-5) -> Tensor {
    Ember.check(x.rank >= 2 && numGroups > 0 && x.shape[1] % numGroups == 0,
                "group_norm: Expected number of channels in input to be divisible by num_groups, but got input of shape \(x.shape) and num_groups=\(numGroups)")
    let n = x.shape[0], c = x.shape[1]
    if x.count == 0 { return x.clone() }
    let g = x.reshape([n, numGroups, -1])
    let mean = g.mean(dim: 2, keepdim: true)
    let v = g.variance(dims: [2], correction: 0, keepdim: true)
    var y = ((g - mean) / (v + eps).sqrt()).reshape(x.shape)
    var bshape = [Int](repeating: 1, count: x.rank)
    bshape[1] = c
    if let weight { y = y * weight.reshape(bshape) }
    if let bias { y = y + bias.reshape(bshape) }
    return y
}
