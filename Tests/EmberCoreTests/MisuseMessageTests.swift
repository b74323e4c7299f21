import Foundation
import XCTest
import EmberTestSupport
@testable import EmberCore

/// Misuse of a math op stops the program with a message naming the op and the operands'
/// shapes or dtypes, like Swift's own precondition failures. Each scenario runs in a child
/// process (this test binary, re-entered with `EMBER_MISUSE_SCENARIO` set) and the test
/// reads the child's stderr.
final class MisuseMessageTests: XCTestCase {
    static let scenarios: [String: (String, () -> Void)] = [
        "add": ("add: shapes [2, 3] and [4] cannot be broadcast together", { _ = Tensor.zeros([2, 3]) + Tensor.zeros([4]) }),
        "matmul": ("matmul: mat1 and mat2 shapes cannot be multiplied ([2, 3] and [4, 5]", {
            _ = Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5]))
        }),
        "reshape": ("reshape: shape [5, -1] is invalid for input of size 6", { _ = Tensor.zeros([2, 3]).reshape([5, -1]) }),
        "dim": ("sum: dimension out of range (expected to be in range of [-2, 1], but got 2)", { _ = Tensor.zeros([2, 3]).sum(dim: 2) }),
        "cat": ("cat: sizes of tensors must match except in dimension 0", {
            _ = Tensor.cat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])])
        }),
        "gatherDtype": ("gather: expected index to be an integer tensor (int64), but got float32", {
            _ = Tensor.zeros([2, 3]).gather(1, Tensor.zeros([2, 1]))
        }),
        "indexBounds": ("indexSelect: index 5 is out of bounds for dimension with size 3", {
            _ = Tensor.zeros([3, 2]).indexSelect(0, Tensor([5]))
        }),
        "mean": ("mean: could not infer output dtype. Input dtype must be floating point, but got int64", {
            _ = Tensor([1, 2]).mean()
        }),
        "device": ("add: expected all tensors to be on the same device, but found cpu and cuda:7", {
            BackendRegistry.register(HostMemoryDevice(.cuda(7)), for: .cuda(7))
            _ = Tensor.zeros([2]) + Tensor.zeros([2], device: .cuda(7))
        }),
        "leafInPlace": ("add_: a leaf tensor that requires grad is being used in an in-place operation (shape [2])", {
            Tensor.zeros([2], requiresGrad: true).add_(1)
        }),
        "view": ("view: size [6] is not compatible with input tensor's size [3, 2] and stride [1, 3]", {
            _ = Tensor.zeros([2, 3]).t().view([6])
        }),
        "requiresGradInt": ("requiresGrad: only tensors of floating point dtype can require gradients (got int64)", {
            Tensor([1, 2]).requiresGrad = true
        }),
    ]

    /// The child side: runs the named scenario, which must not return.
    func testScenarioChild() throws {
        guard let name = ProcessInfo.processInfo.environment["EMBER_MISUSE_SCENARIO"] else {
            throw XCTSkip("runs only as a child of testMisuseMessagesNameOpAndShapes")
        }
        MisuseMessageTests.scenarios[name]!.1()
        print("EMBER-SCENARIO-RETURNED")
    }

    func testMisuseMessagesNameOpAndShapes() throws {
        #if os(Linux)
        for (name, (expected, _)) in MisuseMessageTests.scenarios.sorted(by: { $0.key < $1.key }) {
            guard let (status, text) = try runTestInChild("EmberCoreTests.MisuseMessageTests/testScenarioChild",
                                                          environment: ["EMBER_MISUSE_SCENARIO": name]) else {
                throw XCTSkip("not running from an .xctest binary")
            }
            XCTAssertNotEqual(status, 0, "\(name): the misuse did not stop the program")
            XCTAssertFalse(text.contains("EMBER-SCENARIO-RETURNED"), name)
            XCTAssertTrue(text.contains(expected), "\(name): expected «\(expected)» in:\n\(text.suffix(600))")
        }
        #else
        throw XCTSkip("child-process misuse checks run on Linux")
        #endif
    }
}
