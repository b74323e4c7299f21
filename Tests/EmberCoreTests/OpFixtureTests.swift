import XCTest
@testable import EmberCore
import EmberTestSupport

/// Every op against PyTorch: forward values and dtypes, the gradient of every input under
/// a random upstream gradient, and (elementwise ops, matmul) second-order gradients.
/// One method per op (`OpFixtureTests+Ops.swift`, generated from the fixtures), so that one
/// op runs alone: `swift test --filter EmberCoreTests.OpFixtureTests/test_softmax`.
final class OpFixtureTests: XCTestCase {
    /// The cases of each op.
    static let casesByOp = Dictionary(grouping: TestFixtures.ops.cases, by: \.op)

    /// Runs every case of `op` against PyTorch's values.
    func check(_ op: String) {
        let cases = OpFixtureTests.casesByOp[op] ?? []
        XCTAssertFalse(cases.isEmpty, "no fixture cases for \(op)")
        for c in cases {
            let f = runOpCase(c)
            if !f.isEmpty { XCTFail("\(c.name): " + f.joined(separator: "; ")) }
        }
    }

    func testEveryFixtureOpHasAMethod() {
        XCTAssertGreaterThan(TestFixtures.ops.cases.count, 1000)
        XCTAssertEqual(Set(OpFixtureTests.casesByOp.keys), Set(OpFixtureTests.ops),
                       "ops.json and OpFixtureTests+Ops.swift disagree: run python3 Scripts/make_fixture_tests.py")
    }

    func testFixturesCoverEveryOpInTheTable() {
        let used = Set(TestFixtures.ops.cases.map(\.op))
        XCTAssertEqual(used, Set(opTable.keys), "op table and fixtures disagree")
    }

    func testSecondOrderGradientsAreChecked() {
        let withDouble = TestFixtures.ops.cases.filter { $0.doubleGrads != nil }.map(\.op)
        for op in ["exp", "tanh", "sigmoid", "mul", "div", "matmul", "linear", "gelu", "pow"] {
            XCTAssertTrue(withDouble.contains(op), "no second-order fixture for \(op)")
        }
    }

    func testTypePromotionMatchesPyTorch() {
        for p in TestFixtures.ops.promotion {
            let a = dtypeNamed(p["a"] as! String)
            let want = dtypeNamed(p["result"] as! String)
            let ta = Tensor.ones([2], dtype: a)
            let got: DType
            switch p["kind"] as! String {
            case "tensor": got = ResultType.of(ta, Tensor.ones([2], dtype: dtypeNamed(p["b"] as! String)))
            case "zerodim": got = ResultType.of(ta, Tensor.ones([], dtype: dtypeNamed(p["b"] as! String)))
            default:
                let s: Tensor
                switch p["b"] as! String {
                case "int": s = Tensor.wrapped(2, like: ta)
                case "float": s = Tensor.wrapped(2.5, like: ta)
                default:
                    s = Tensor(scalar: true)
                    s.isWrappedNumber = true
                }
                got = ResultType.of(ta, s)
            }
            XCTAssertEqual(got, want, "promote \(a) with \(p["b"]!) (\(p["kind"]!))")
        }
    }

    func testCreationMatchesPyTorch() {
        let c = TestFixtures.ops.creation
        assertClose(Tensor.arange(5), numbers(c["arange_5"]), shape: [5])
        XCTAssertEqual(Tensor.arange(5).dtype, .int64)
        assertClose(Tensor.arange(1, 4, step: 0.5), numbers(c["arange_1_4_05"]))
        XCTAssertEqual(Tensor.arange(1, 4, step: 0.5).dtype, .float32)
        assertClose(Tensor.arange(5, -3, step: -2), numbers(c["arange_neg"]))
        assertClose(Tensor.linspace(0, 1, steps: 5), numbers(c["linspace_0_1_5"]))
        assertClose(Tensor.linspace(-3, 7, steps: 11), numbers(c["linspace_m3_7_11"]))
        assertClose(Tensor.linspace(2, 5, steps: 1), numbers(c["linspace_1"]))
        assertClose(Tensor.eye(3), numbers(c["eye_3"]), shape: [3, 3])
        assertClose(Tensor.eye(2, 4), numbers(c["eye_2_4"]), shape: [2, 4])
    }

    func testHalfConversionsMatchPyTorch() {
        let h = TestFixtures.ops.halfs
        let values = numbers(h["values"])
        let src = Tensor(values, dtype: .float32)
        // Compared as Float bit patterns (every expected value is exactly representable).
        XCTAssertEqual(src.to(.float16).toArray(Float.self).map(\.bitPattern), numbers(h["float16"]).map { Float($0).bitPattern })
        XCTAssertEqual(src.to(.bfloat16).toArray(Float.self).map(\.bitPattern), numbers(h["bfloat16"]).map { Float($0).bitPattern })
        // Round trips are exact.
        let back = src.to(.float16).to(.float32).to(.float16).to(.float32)
        XCTAssertEqual(back.toArray(Float.self).map(\.bitPattern), numbers(h["float16"]).map { Float($0).bitPattern })
    }
}
