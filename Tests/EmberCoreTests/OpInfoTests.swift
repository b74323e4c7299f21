import XCTest
@testable import EmberCore
import EmberTestSupport

/// Every op of `opInfoTable` on PyTorch's own OpInfo sample inputs
/// (`Scripts/make_opinfo_fixtures.py`): forward values and dtypes, the gradient of every
/// input PyTorch differentiates under a random upstream gradient, and in float64 the
/// second-order gradient where OpInfo says the op has one. One method per OpInfo name
/// (`OpInfoTests+Ops.swift`): `swift test --filter EmberCoreTests.OpInfoTests/test_cumsum`.
final class OpInfoTests: XCTestCase {
    static let casesByOp = Dictionary(grouping: TestFixtures.opInfo.cases, by: \.op)

    func check(_ op: String) {
        let cases = OpInfoTests.casesByOp[op] ?? []
        XCTAssertFalse(cases.isEmpty, "no OpInfo cases for \(op)")
        var failed = 0
        for c in cases {
            let f = runOpCase(c)
            if !f.isEmpty {
                failed += 1
                if failed <= 8 { XCTFail("\(c.name): " + f.joined(separator: "; ")) }
            }
        }
        if failed > 8 { XCTFail("\(op): \(failed) of \(cases.count) cases failed") }
    }

    func testEveryOpInfoOpHasAMethodAndAnAdapter() {
        let ops = Set(OpInfoTests.casesByOp.keys)
        XCTAssertEqual(ops, Set(OpInfoTests.ops), "opinfo.json and OpInfoTests+Ops.swift disagree: run python3 Scripts/make_fixture_tests.py")
        XCTAssertEqual(ops, Set(opInfoTable.keys), "opInfoTable and the OpInfo fixtures disagree")
    }

    func testSecondOrderGradientsAreChecked() {
        let withDouble = Set(TestFixtures.opInfo.cases.filter { $0.doubleGrads != nil }.map(\.op))
        for op in ["tan", "atan2", "hypot", "cumprod", "logcumsumexp", "logaddexp", "nn.functional.mish", "special.entr"] {
            XCTAssertTrue(withDouble.contains(op), "no second-order OpInfo case for \(op)")
        }
    }
}
