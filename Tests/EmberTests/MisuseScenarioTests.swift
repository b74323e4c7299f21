import EmberTestSupport
import Foundation
import XCTest

/// Every misuse scenario of `EmberMisuseScenarios` (ops, layers, losses, optimizers, data)
/// stops its program with a message naming what was misused and the shapes or values. The
/// scenarios run from the build next to this test binary (debug under `swift test`), or
/// from `EMBER_MISUSE_SCENARIOS` (CI points it at a release build, where a bare
/// `precondition` would print no message).
final class MisuseScenarioTests: XCTestCase {
    func testEveryScenarioStopsWithItsMessage() throws {
        #if os(Linux)
        let exe = ProcessInfo.processInfo.environment["EMBER_MISUSE_SCENARIOS"]
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("EmberMisuseScenarios").path
        guard FileManager.default.isExecutableFile(atPath: exe) else {
            throw XCTSkip("\(exe) is not built (swift build --product EmberMisuseScenarios)")
        }
        let (listStatus, list) = try run(exe, ["--list"])
        XCTAssertEqual(listStatus, 0, list)
        let scenarios = list.split(separator: "\n").map { $0.split(separator: "\t", maxSplits: 1).map(String.init) }
        XCTAssertGreaterThan(scenarios.count, 30, list)
        for s in scenarios {
            let (status, text) = try run(exe, [s[0]])
            XCTAssertNotEqual(status, 0, "\(s[0]): the misuse did not stop the program")
            XCTAssertFalse(text.contains("EMBER-SCENARIO-RETURNED"), s[0])
            XCTAssertTrue(text.contains(s[1]), "\(s[0]): expected «\(s[1])» in:\n\(text.suffix(800))")
        }
        #else
        throw XCTSkip("child-process misuse checks run on Linux")
        #endif
    }

    private func run(_ exe: String, _ arguments: [String]) throws -> (Int32, String) {
        try runChild(URL(fileURLWithPath: exe), arguments)
    }
}
