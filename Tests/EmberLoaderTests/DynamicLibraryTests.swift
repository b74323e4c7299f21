@testable import EmberLoader
import Foundation
import XCTest

/// A required symbol: the first of several names the library exports, else the caller's
/// error with a message naming the library and what it lacks.
final class DynamicLibraryTests: XCTestCase {
    struct Missing: Error { let message: String }

    func testRequireFindsTheFirstExportedNameOrSaysWhatIsMissing() throws {
        #if os(Linux)
        let lib = try DynamicLibrary.open("libm", candidates: ["libm.so.6"])
        let cosine: @convention(c) (Double) -> Double = try lib.require(["ember_no_such_cos", "cos"]) { Missing(message: $0) }
        XCTAssertEqual(cosine(0), 1)
        XCTAssertThrowsError(try lib.require(["ember_no_such_symbol"], as: (@convention(c) () -> Void).self) { Missing(message: $0) }) {
            XCTAssertEqual(($0 as? Missing)?.message, "libm.so.6 has no ember_no_such_symbol")
        }
        XCTAssertThrowsError(try lib.require(["ember_a", "ember_b"], as: (@convention(c) () -> Void).self) { Missing(message: $0) }) {
            XCTAssertEqual(($0 as? Missing)?.message, "libm.so.6 has none of ember_a, ember_b")
        }
        #else
        throw XCTSkip("uses libm.so.6")
        #endif
    }
}
