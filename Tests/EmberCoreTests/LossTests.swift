import EmberTestSupport
import Foundation
import XCTest
@testable import EmberCore

final class LossTests: XCTestCase {
    func testEveryLossMatchesPyTorch() {
        let entries = nnFixtures["losses"] as! [[String: Any]]
        XCTAssertGreaterThan(entries.count, 50)
        for e in entries {
            let name = e["name"] as! String
            let args = e["args"] as! [String: Any]
            let reduction = Reduction(rawValue: args["reduction"] as? String ?? "mean")!
            var inputs = (e["inputs"] as! [Any]).map(fixtureTensor)
            inputs[0].requiresGrad = true
            let x = inputs[0], y = inputs[1], third = inputs.count > 2 ? inputs[2] : nil
            let ls = (args["ls"] as? NSNumber)?.doubleValue ?? 0
            let out: Tensor
            switch name.split(separator: "_").first! {
            case "ce":
                out = crossEntropy(x, y, weight: third, reduction: reduction, labelSmoothing: ls)
            case "nll": out = nllLoss(x, y, weight: third, reduction: reduction)
            case "mse": out = mseLoss(x, y, reduction: reduction)
            case "l1": out = l1Loss(x, y, reduction: reduction)
            case "smoothl1": out = smoothL1Loss(x, y, beta: number(args["beta"]!), reduction: reduction)
            case "huber": out = huberLoss(x, y, delta: number(args["delta"]!), reduction: reduction)
            case "bce": out = binaryCrossEntropy(x, y, weight: third, reduction: reduction)
            case "bcel": out = binaryCrossEntropyWithLogits(x, y, posWeight: third, reduction: reduction)
            case "kl": out = klDiv(x, y, reduction: reduction, logTarget: args["log"] != nil)
            default: XCTFail("unknown loss fixture \(name)"); continue
            }
            assertClose(out, fixture: e["output"], name)
            try! (out * fixtureTensor(e["upstream"])).sum().backward()
            assertClose(x.grad!, fixture: e["grad"], scale: 5, "\(name) gradient")
        }
    }
}
