import EmberTestSupport
import Foundation
import XCTest
@testable import Ember

final class OptimizerTests: XCTestCase {
    func makeOptimizer(_ name: String, _ ps: [Tensor]) -> Optimizer {
        switch name {
        case "SGD": return SGD(ps, lr: 0.1)
        case "SGD_momentum": return SGD(ps, lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01)
        case "SGD_nesterov": return SGD(ps, lr: 0.1, momentum: 0.9, nesterov: true)
        case "Adam": return Adam(ps, lr: 0.01)
        case "Adam_wd_amsgrad": return Adam(ps, lr: 0.01, betas: (0.8, 0.99), weightDecay: 0.1, amsgrad: true)
        case "AdamW": return AdamW(ps, lr: 0.01)
        case "AdamW_amsgrad": return AdamW(ps, lr: 0.01, weightDecay: 0.1, amsgrad: true)
        case "RMSprop": return RMSprop(ps, lr: 0.01)
        case "RMSprop_centered_momentum": return RMSprop(ps, lr: 0.01, weightDecay: 0.1, momentum: 0.5, centered: true)
        case "Adagrad": return Adagrad(ps, lr: 0.1, lrDecay: 0.01, weightDecay: 0.1, initialAccumulatorValue: 0.1)
        default: fatalError(name)
        }
    }

    /// Each optimizer, step by step, from the same parameters and gradients as PyTorch.
    func testEveryOptimizerStepByStep() {
        let p0 = (nnFixtures["p0"] as! [Any]).map(fixtureTensor)
        let grads = (nnFixtures["grads"] as! [[Any]]).map { $0.map(fixtureTensor) }
        for e in nnFixtures["optimizers"] as! [[String: Any]] {
            let name = e["name"] as! String
            let ps = p0.map { $0.clone().requiringGrad() }
            let opt = makeOptimizer(name, ps)
            for (step, want) in (e["history"] as! [[Any]]).enumerated() {
                for (p, g) in zip(ps, grads[step]) { p.grad = g.clone() }
                opt.step()
                for (p, w) in zip(ps, want) { assertClose(p, fixture: w, scale: 5, "\(name) step \(step + 1)") }
            }
        }
    }

    func testParamGroupsAndStateDictRoundTrip() throws {
        let p0 = (nnFixtures["p0"] as! [Any]).map(fixtureTensor)
        let grads = (nnFixtures["grads"] as! [[Any]]).map { $0.map(fixtureTensor) }
        let ps = p0.map { $0.clone().requiringGrad() }
        let opt = SGD(groups: [ParamGroup(params: [ps[0]]), ParamGroup(params: [ps[1]], options: ["lr": 0.5, "momentum": 0.5])], lr: 0.1)
        for g in grads.prefix(3) {
            for (p, gg) in zip(ps, g) { p.grad = gg.clone() }
            opt.step()
        }
        for (p, w) in zip(ps, nnFixtures["param_groups"] as! [Any]) { assertClose(p, fixture: w, "param groups") }

        // Adam: saving after 2 steps and restoring into a fresh optimizer continues identically.
        let a = p0.map { $0.clone().requiringGrad() }, b = p0.map { $0.clone().requiringGrad() }
        let oa = Adam(a, lr: 0.01), ob = Adam(b, lr: 0.01)
        for g in grads.prefix(2) { for (p, gg) in zip(a, g) { p.grad = gg.clone() }; oa.step() }
        withNoGrad { for (x, y) in zip(b, a) { x.copy_(y) } }
        try ob.loadStateDict(oa.stateDict())
        for g in grads.dropFirst(2) {
            for (p, gg) in zip(a, g) { p.grad = gg.clone() }
            for (p, gg) in zip(b, g) { p.grad = gg.clone() }
            oa.step()
            ob.step()
        }
        for (x, y) in zip(a, b) { XCTAssertEqual(x.scalars, y.scalars) }
        XCTAssertThrowsError(try SGD([a[0]]).loadStateDict(oa.stateDict()))
        opt.zeroGrad()
        XCTAssertNil(ps[0].grad)
    }

    func testSchedulersMatchPyTorch() {
        for e in nnFixtures["schedulers"] as! [[String: Any]] {
            let name = e["name"] as! String
            let opt = SGD([Tensor.zeros([1], requiresGrad: true)], lr: 0.1, momentum: 0.9)
            let s: LRScheduler
            switch name {
            case "StepLR": s = StepLR(opt, stepSize: 3, gamma: 0.5)
            case "MultiStepLR": s = MultiStepLR(opt, milestones: [2, 5, 9], gamma: 0.3)
            case "ExponentialLR": s = ExponentialLR(opt, gamma: 0.8)
            case "CosineAnnealingLR": s = CosineAnnealingLR(opt, tMax: 10, etaMin: 0.01)
            case "LinearLR": s = LinearLR(opt, startFactor: 0.25, endFactor: 1, totalIters: 4)
            case "LambdaLR": s = LambdaLR(opt) { 1 / Double(1 + $0) }
            case "OneCycleLR": s = OneCycleLR(opt, maxLR: 1, totalSteps: 13)
            default: XCTFail(name); continue
            }
            var lrs = [opt.paramGroups[0].lr], moms = [opt.paramGroups[0].options["momentum"]!]
            for _ in 0..<12 {
                opt.step()
                s.step()
                lrs.append(opt.paramGroups[0].lr)
                moms.append(opt.paramGroups[0].options["momentum"]!)
            }
            XCTAssertNil(mismatch(lrs, numbers(e["lrs"]), .float64, scale: 1e4), name)
            XCTAssertNil(mismatch(moms, numbers(e["momentum"]), .float64, scale: 1e4), "\(name) momentum")
        }
        let plateau = nnFixtures["plateau"] as! [String: Any]
        let opt = SGD([Tensor.zeros([1], requiresGrad: true)], lr: 1)
        let r = ReduceLROnPlateau(opt, factor: 0.5, patience: 2, cooldown: 1)
        var lrs: [Double] = []
        for m in numbers(plateau["metrics"]) {
            r.step(m)
            lrs.append(opt.paramGroups[0].lr)
        }
        XCTAssertEqual(lrs, numbers(plateau["lrs"]))
    }

    func testGradientClipping() {
        let c = nnFixtures["clip_norm"] as! [String: Any]
        let grads = (c["grads"] as! [Any]).map(fixtureTensor)
        let ps = grads.map { Tensor.zerosLike($0).requiringGrad() }
        for (p, g) in zip(ps, grads) { p.grad = g.clone() }
        let total = clipGradNorm(ps, maxNorm: 1.5)
        XCTAssertEqual(total, number(c["total"]!), accuracy: 1e-4)
        for (p, w) in zip(ps, c["after"] as! [Any]) { assertClose(p.grad!, fixture: w) }
        for (p, g) in zip(ps, grads) { p.grad = g.clone() }
        clipGradValue(ps, clipValue: 0.5)
        for (p, w) in zip(ps, nnFixtures["clip_value"] as! [Any]) { assertClose(p.grad!, fixture: w) }
    }
}
