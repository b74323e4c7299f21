import EmberCore
import Foundation

/// Learning-rate schedulers (`torch.optim.lr_scheduler`). Construction sets epoch 0's rate;
/// call `step()` after each epoch (or batch, for `OneCycleLR`).
open class LRScheduler {
    public let optimizer: Optimizer
    public let baseLRs: [Double]
    public private(set) var lastEpoch: Int

    public init(_ optimizer: Optimizer, lastEpoch: Int = -1) {
        self.optimizer = optimizer
        for i in optimizer.paramGroups.indices where optimizer.paramGroups[i].options["initial_lr"] == nil {
            optimizer.paramGroups[i].options["initial_lr"] = optimizer.paramGroups[i].lr
        }
        baseLRs = optimizer.paramGroups.map { $0.options["initial_lr"]! }
        self.lastEpoch = lastEpoch
        step()
    }

    /// The rate of group `i` at `epoch`.
    open func lr(group i: Int, epoch: Int) -> Double { baseLRs[i] }

    /// Advances one epoch and sets each group's rate.
    open func step() {
        lastEpoch += 1
        for i in optimizer.paramGroups.indices { optimizer.paramGroups[i].lr = lr(group: i, epoch: lastEpoch) }
    }

    /// The current rates.
    public var lastLRs: [Double] { optimizer.paramGroups.map(\.lr) }

    /// Restores the position of the schedule (for resumed training).
    public func setEpoch(_ epoch: Int) {
        lastEpoch = epoch - 1
        step()
    }
}

public final class StepLR: LRScheduler {
    let stepSize: Int, gamma: Double
    public init(_ optimizer: Optimizer, stepSize: Int, gamma: Double = 0.1) {
        self.stepSize = stepSize
        self.gamma = gamma
        super.init(optimizer)
    }
    public override func lr(group i: Int, epoch: Int) -> Double { baseLRs[i] * Foundation.pow(gamma, Double(epoch / stepSize)) }
}

public final class MultiStepLR: LRScheduler {
    let milestones: [Int], gamma: Double
    public init(_ optimizer: Optimizer, milestones: [Int], gamma: Double = 0.1) {
        self.milestones = milestones.sorted()
        self.gamma = gamma
        super.init(optimizer)
    }
    public override func lr(group i: Int, epoch: Int) -> Double {
        baseLRs[i] * Foundation.pow(gamma, Double(milestones.filter { $0 <= epoch }.count))
    }
}

public final class ExponentialLR: LRScheduler {
    let gamma: Double
    public init(_ optimizer: Optimizer, gamma: Double) {
        self.gamma = gamma
        super.init(optimizer)
    }
    public override func lr(group i: Int, epoch: Int) -> Double { baseLRs[i] * Foundation.pow(gamma, Double(epoch)) }
}

public final class CosineAnnealingLR: LRScheduler {
    let tMax: Int, etaMin: Double
    public init(_ optimizer: Optimizer, tMax: Int, etaMin: Double = 0) {
        self.tMax = tMax
        self.etaMin = etaMin
        super.init(optimizer)
    }
    public override func lr(group i: Int, epoch: Int) -> Double {
        etaMin + (baseLRs[i] - etaMin) * (1 + Foundation.cos(Double.pi * Double(epoch) / Double(tMax))) / 2
    }
}

/// Linear warm-up (or decay) of a multiplicative factor over `totalIters` epochs.
public final class LinearLR: LRScheduler {
    let start: Double, end: Double, total: Int
    public init(_ optimizer: Optimizer, startFactor: Double = 1.0 / 3, endFactor: Double = 1, totalIters: Int = 5) {
        start = startFactor
        end = endFactor
        total = totalIters
        super.init(optimizer)
    }
    public override func lr(group i: Int, epoch: Int) -> Double {
        baseLRs[i] * (start + (end - start) * Double(Swift.min(epoch, total)) / Double(total))
    }
}

public final class LambdaLR: LRScheduler {
    let lambda: (Int) -> Double
    public init(_ optimizer: Optimizer, lambda: @escaping (Int) -> Double) {
        self.lambda = lambda
        super.init(optimizer)
    }
    public override func lr(group i: Int, epoch: Int) -> Double { baseLRs[i] * lambda(epoch) }
}

/// The 1cycle policy (per batch): warm up to `maxLR`, anneal to `maxLR / divFactor / finalDivFactor`;
/// momentum (or Adam's beta1) cycles inversely between `baseMomentum` and `maxMomentum`.
public final class OneCycleLR: LRScheduler {
    let maxLR: Double, totalSteps: Int, pctStart: Double, divFactor: Double, finalDivFactor: Double
    let cosine: Bool, cycleMomentum: Bool, baseMomentum: Double, maxMomentum: Double

    public init(_ optimizer: Optimizer, maxLR: Double, totalSteps: Int, pctStart: Double = 0.3, annealCosine: Bool = true,
                divFactor: Double = 25, finalDivFactor: Double = 1e4, cycleMomentum: Bool = true,
                baseMomentum: Double = 0.85, maxMomentum: Double = 0.95) {
        self.maxLR = maxLR
        self.totalSteps = totalSteps
        self.pctStart = pctStart
        self.divFactor = divFactor
        self.finalDivFactor = finalDivFactor
        cosine = annealCosine
        self.cycleMomentum = cycleMomentum
        self.baseMomentum = baseMomentum
        self.maxMomentum = maxMomentum
        for i in optimizer.paramGroups.indices { optimizer.paramGroups[i].options["initial_lr"] = maxLR / divFactor }
        super.init(optimizer)
    }

    private func anneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
        cosine ? end + (start - end) / 2 * (1 + Foundation.cos(Double.pi * pct)) : (end - start) * pct + start
    }

    /// (learning rate, momentum) at `step`.
    func values(_ step: Int) -> (Double, Double) {
        let initial = maxLR / divFactor, minLR = initial / finalDivFactor
        let end1 = pctStart * Double(totalSteps) - 1, end2 = Double(totalSteps) - 1
        let s = Double(step)
        if s <= end1 {
            let pct = s / end1
            return (anneal(initial, maxLR, pct), anneal(maxMomentum, baseMomentum, pct))
        }
        let pct = (s - end1) / (end2 - end1)
        return (anneal(maxLR, minLR, pct), anneal(baseMomentum, maxMomentum, pct))
    }

    public override func lr(group i: Int, epoch: Int) -> Double { values(epoch).0 }

    public override func step() {
        super.step()
        guard cycleMomentum else { return }
        let m = values(lastEpoch).1
        for i in optimizer.paramGroups.indices {
            if optimizer.paramGroups[i].options["beta1"] != nil {
                optimizer.paramGroups[i].options["beta1"] = m
            } else if optimizer.paramGroups[i].options["momentum"] != nil {
                optimizer.paramGroups[i].options["momentum"] = m
            }
        }
    }
}

/// Reduces the rate by `factor` when a metric stops improving for `patience` epochs.
public final class ReduceLROnPlateau {
    public let optimizer: Optimizer
    let minimize: Bool, factor: Double, patience: Int, threshold: Double, relative: Bool, cooldown: Int, minLR: Double, eps: Double
    public private(set) var best: Double
    public private(set) var badEpochs = 0
    var cooldownLeft = 0

    public init(_ optimizer: Optimizer, mode: String = "min", factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4,
                thresholdMode: String = "rel", cooldown: Int = 0, minLR: Double = 0, eps: Double = 1e-8) {
        Ember.check(factor < 1, "ReduceLROnPlateau: factor should be < 1.0")
        self.optimizer = optimizer
        minimize = mode == "min"
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        relative = thresholdMode == "rel"
        self.cooldown = cooldown
        self.minLR = minLR
        self.eps = eps
        best = minimize ? .infinity : -.infinity
    }

    func isBetter(_ a: Double) -> Bool {
        switch (minimize, relative) {
        case (true, true): return a < best * (1 - threshold)
        case (true, false): return a < best - threshold
        case (false, true): return a > best * (1 + threshold)
        case (false, false): return a > best + threshold
        }
    }

    public func step(_ metric: Double) {
        if isBetter(metric) { best = metric; badEpochs = 0 } else { badEpochs += 1 }
        if cooldownLeft > 0 { cooldownLeft -= 1; badEpochs = 0 }
        if badEpochs > patience {
            for i in optimizer.paramGroups.indices {
                let old = optimizer.paramGroups[i].lr
                let new = Swift.max(old * factor, minLR)
                if old - new > eps { optimizer.paramGroups[i].lr = new }
            }
            cooldownLeft = cooldown
            badEpochs = 0
        }
    }
}
