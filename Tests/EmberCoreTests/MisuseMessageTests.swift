import Foundation
import XCTest
import EmberTestSupport
@testable import EmberCore

/// Misuse of a math op across devices stops the program with a message naming the op and
/// the devices, like Swift's own precondition failures. Each scenario runs in a child
/// process (this test binary, re-entered with `EMBER_MISUSE_SCENARIO` set) and the test
/// reads the child's stderr.
final class MisuseMessageTests: XCTestCase {
    /// The scenarios that need Ember's internals (a second device backed by host memory);
    /// every other misuse scenario is in `EmberMisuseScenarios`, run by
    /// `EmberTests.MisuseScenarioTests` in debug and release builds.
    static let scenarios: [String: (String, () -> Void)] = [
        "device": ("add: expected all tensors to be on the same device, but found cpu and cuda:7", {
            BackendRegistry.register(HostMemoryDevice(.cuda(7)), for: .cuda(7))
            _ = Tensor.zeros([2]) + Tensor.zeros([2], device: .cuda(7))
        }),
        "indexDevice": ("gather: expected index on the same device as self (cpu), but found it on cuda:7", {
            BackendRegistry.register(HostMemoryDevice(.cuda(7)), for: .cuda(7))
            _ = Tensor.zeros([2, 3]).gather(1, Tensor([[0]], device: .cuda(7)))
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
