import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// Cross-entropy on the GPU (one kernel per pass) and index values, checked on the device.
final class CUDALossAndIndexTests: XCTestCase {
    func testCrossEntropyMatchesTheCPUWithIgnoredRows() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        for dtype in [DType.float32, .float64] {
            Ember.manualSeed(9)
            let x = Tensor.randn([7, 5], dtype: dtype) * 3
            let y = Tensor([0, 4, -100, 2, 2, -100, 1])
            for reduction in [Reduction.mean, .sum, .none] {
                let xc = x.clone(), xg = x.to(g)
                xc.requiresGrad = true
                xg.requiresGrad = true
                let lc = crossEntropy(xc, y, reduction: reduction), lg = crossEntropy(xg, y.to(g), reduction: reduction)
                XCTAssertEqual(lg.device, g)
                let tol = dtype == .float32 ? 1e-5 : 1e-12
                XCTAssertLessThan((lg.to(.cpu) - lc).abs().max().item(), tol, "\(reduction) \(dtype) forward")
                // .none: an upstream gradient with a stride of 2 (a view).
                let up = Tensor.randn([14], dtype: dtype).slice(0, step: 2)
                if reduction == .none {
                    try lc.backward(gradient: up)
                    try lg.backward(gradient: up.to(g))
                } else {
                    try lc.backward()
                    try lg.backward()
                }
                XCTAssertLessThan((xg.grad!.to(.cpu) - xc.grad!).abs().max().item(), tol, "\(reduction) \(dtype) backward")
                XCTAssertEqual(xg.grad!.to(.cpu)[2].abs().max().item(), 0, "an ignored row has no gradient")
            }
        }
    }

    /// A class index or an index out of range stops the program at the next synchronisation
    /// with the op's message (child processes); the op itself does not wait for the GPU.
    func testBadIndicesAreReportedFromTheDevice() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        if let scenario = ProcessInfo.processInfo.environment["EMBER_CUDA_BAD_INDEX"] {
            let result: Tensor
            switch scenario {
            case "target": result = crossEntropy(Tensor.randn([3, 4], device: g), Tensor([1, 7, 0]).to(g))
            case "indexSelect": result = Tensor.randn([5, 3], device: g).indexSelect(0, Tensor([1, -2, 9]).to(g))
            default: result = Tensor.randn([2, 3], device: g).gather(1, Tensor([[0], [-4]]).to(g))
            }
            FileHandle.standardError.write(Data("EMBER-QUEUED\n".utf8))  // nothing waited yet
            FileHandle.standardError.write(Data("EMBER-RESULT \(result.to(.cpu).toArray(Float.self))\n".utf8))
            return
        }
        // Negative indices count from the end on the GPU too.
        let x = Tensor.randn([5, 3])
        XCTAssertEqual(x.to(g).indexSelect(0, Tensor([-1, 0, -5]).to(g)).to(.cpu).toArray(Float.self),
                       x.indexSelect(0, Tensor([-1, 0, -5])).toArray(Float.self))
        XCTAssertEqual(x.to(g).gather(1, Tensor([[-1], [0], [-3], [2], [1]]).to(g)).to(.cpu).toArray(Float.self),
                       x.gather(1, Tensor([[-1], [0], [-3], [2], [1]])).toArray(Float.self))
        #if os(Linux)
        let cases = [("target", "crossEntropy: target 7 is out of bounds for 4 classes (found on cuda:0"),
                     ("indexSelect", "indexSelect: index 9 is out of bounds for dimension with size 5 (found on cuda:0"),
                     ("gather", "gather: index -4 is out of bounds for dimension with size 3 (found on cuda:0")]
        for (scenario, expected) in cases {
            guard let (status, text) = try runTestInChild("EmberCUDATests.CUDALossAndIndexTests/testBadIndicesAreReportedFromTheDevice",
                                                          environment: ["EMBER_CUDA_BAD_INDEX": scenario]) else {
                throw XCTSkip("not running from an .xctest binary")
            }
            XCTAssertNotEqual(status, 0, text)
            XCTAssertTrue(text.contains("EMBER-QUEUED"), "\(scenario): " + text.suffix(1500))
            XCTAssertFalse(text.contains("EMBER-RESULT"), "\(scenario): " + text.suffix(1500))
            XCTAssertTrue(text.contains(expected), "\(scenario): " + text.suffix(1500))
        }
        #endif
    }
}
