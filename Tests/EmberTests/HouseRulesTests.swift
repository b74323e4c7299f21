import Foundation
import XCTest

/// The rules the code's layout follows (the design notes' "shape of the house"), checked on
/// the sources themselves so that they hold as the op table grows.
final class HouseRulesTests: XCTestCase {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Paths (relative to the repository) of the files under `folder` ending in one of `extensions`.
    func files(under folder: String, _ extensions: [String]) -> [String] {
        let base = root.appendingPathComponent(folder)
        guard let e = FileManager.default.enumerator(atPath: base.path) else { return [] }
        return e.compactMap { $0 as? String }.filter { f in extensions.contains { f.hasSuffix($0) } }.map { "\(folder)/\($0)" }.sorted()
    }

    func text(_ path: String) throws -> String { try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8) }

    func testSourcesAreThere() {
        XCTAssertGreaterThan(files(under: "Sources", [".swift"]).count, 80, "run from the repository (#filePath: \(#filePath))")
    }

    /// Ops go through the backend: nothing under Ops/ imports the CPU kernels or touches
    /// raw storage.
    func testOpsGoThroughTheBackend() throws {
        let ops = files(under: "Sources/EmberCore/Ops", [".swift"])
        XCTAssertGreaterThan(ops.count, 5)
        for f in ops {
            let t = try text(f)
            for banned in ["import EmberCPU", "import CEmberKernels", "import CEmberThreads", "storage.data", ".ptr("] {
                XCTAssertFalse(t.contains(banned), "\(f) contains \(banned)")
            }
        }
    }

    /// No source file over 700 lines in Sources/ or Tools/.
    func testNoRoomIsTooBig() throws {
        for f in files(under: "Sources", [".swift", ".c", ".h", ".inc"]) + files(under: "Tools", [".cpp", ".h"]) {
            let lines = try text(f).split(separator: "\n", omittingEmptySubsequences: false).count
            XCTAssertLessThanOrEqual(lines, 700, "\(f) has \(lines) lines")
        }
    }

    /// Misuse messages survive release builds: no `precondition`, `preconditionFailure` or
    /// `assert` (which drop their message under -O, or the check itself) in the sources.
    func testNoBarePreconditions() throws {
        for f in files(under: "Sources", [".swift"]) {
            for (i, line) in try text(f).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                for banned in ["precondition(", "preconditionFailure(", "assert(", "assertionFailure("] where code.contains(banned) {
                    XCTFail("\(f):\(i + 1) uses \(banned) (use Ember.check / Ember.misuse)")
                }
            }
        }
    }

    /// The op table is closed: no `default:` in a `switch` over an op (`op`, `op.kind`,
    /// `kind`, `self` in the op enums) in Backend.swift, the CPU backend or the CUDA kernels,
    /// so that a new op makes the compiler list every place that must handle it.
    func testNoDefaultInOpSwitches() throws {
        let backendFiles = ["Sources/EmberCore/Backend/Backend.swift"] + files(under: "Sources/EmberCore/Backend/CPU", [".swift"])
            + files(under: "Sources/EmberCUDA/Kernels", [".swift"])
        var switches = 0
        for f in backendFiles {
            let lines = try text(f).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (i, line) in lines.enumerated() {
                let t = line.trimmingCharacters(in: .whitespaces)
                guard t.hasPrefix("switch op") || t.hasPrefix("switch kind") || t.hasPrefix("switch self")
                        || t.contains("= switch op") else { continue }
                switches += 1
                // The switch's own cases: lines at its brace depth until it closes.
                var depth = 0
                for j in i..<lines.count {
                    let l = lines[j]
                    if depth == 1 && l.trimmingCharacters(in: .whitespaces).hasPrefix("default:") {
                        XCTFail("\(f):\(j + 1): default: in the switch of line \(i + 1)")
                    }
                    depth += l.filter { $0 == "{" }.count - l.filter { $0 == "}" }.count
                    if depth <= 0 && j > i { break }
                }
            }
        }
        XCTAssertGreaterThan(switches, 10, "the check found no switch over ops")
    }
}
