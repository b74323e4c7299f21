import XCTest
@testable import EmberCore
import EmberTestSupport

/// Reductions over outer dimensions of rows that stay contiguous (the CPU's row-wise path,
/// taken from 16 columns up) against the same reduction written out in float64.
final class ReductionTests: XCTestCase {
    func testOuterDimensionsOfContiguousRows() {
        for dtype in [DType.float32, .float64] {
            let x = (Tensor.rand([4, 32], dtype: dtype) + 0.5)  // products stay away from 0 and overflow
            let v = x.toArray(Double.self)
            func column(_ j: Int) -> [Double] { (0..<4).map { v[$0 * 32 + j] } }
            let prod = (0..<32).map { column($0).reduce(1, *) }
            let sum = (0..<32).map { column($0).reduce(0, +) }
            let mx = (0..<32).map { column($0).max()! }, mn = (0..<32).map { column($0).min()! }
            XCTAssertNil(mismatch(x.prod(dim: 0).toArray(Double.self), prod, dtype), "prod \(dtype)")
            XCTAssertNil(mismatch(x.sum(dim: 0).toArray(Double.self), sum, dtype), "sum \(dtype)")
            XCTAssertNil(mismatch(x.max(dim: 0).values.toArray(Double.self), mx, dtype), "max \(dtype)")
            XCTAssertNil(mismatch(x.min(dim: 0).values.toArray(Double.self), mn, dtype), "min \(dtype)")
            XCTAssertEqual(x.argmax(dim: 0).toArray(Int.self), (0..<32).map { j in column(j).firstIndex(of: mx[j])! }, "argmax \(dtype)")
        }
    }
}
