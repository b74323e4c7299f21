import Foundation
import XCTest
@testable import EmberCore
import EmberTestSupport
import EmberCPU

final class ViewTests: XCTestCase {
    /// `copy_(_:scaledBy:)` writes src · scale into a view in one pass, casting to the
    /// destination's dtype, and leaves the rest of the base alone.
    func testScaledCopyIntoAView() {
        let base = Tensor.zeros([10])
        let src = Tensor([1, 2, 3, 4] as [Double])  // float64 source into a float32 view
        base[3..<7].copy_(src, scaledBy: 0.5)
        XCTAssertEqual(base.toArray(Float.self), [0, 0, 0, 0.5, 1, 1.5, 2, 0, 0, 0])
        let big = Tensor.randn([100_003])
        let dst = Tensor.zeros([100_003])
        dst.copy_(big, scaledBy: 1.0 / 3)
        XCTAssertNil(mismatch(dst.toArray(Double.self), big.toArray(Double.self).map { $0 / 3 }, .float32))
        for half in [DType.float16, .bfloat16] {
            let h = Tensor.zeros([5], dtype: half)
            h.copy_(Tensor([2, 4, 6, 8, 10] as [Float]), scaledBy: 0.25)
            XCTAssertEqual(h.toArray(Double.self), [0.5, 1, 1.5, 2, 2.5], "\(half)")
        }
    }

    func testWritesThroughViewsReachTheBase() {
        let base = Tensor.zeros([3, 4])
        base[1].fill_(5)
        base.t()[2].add_(1)  // column 2
        base.narrow(1, start: 0, length: 2).mul_(2)
        base[2, 3] = Tensor(scalar: Float(9))
        XCTAssertEqual(base.scalars, [0, 0, 1, 0, 10, 10, 6, 5, 0, 0, 1, 9])
        let r = base.reshape([12])
        XCTAssertTrue(r.storage === base.storage)
        r[0..<2] = Tensor([7, 8] as [Float])
        XCTAssertEqual(base[0].scalars, [7, 8, 1, 0])
        base[.all, .range(nil, nil, step: 2)] = Tensor.full([3, 2], -1)
        XCTAssertEqual(base.scalars, [-1, 8, -1, 0, -1, 10, -1, 5, -1, 0, -1, 9])
    }

    func testViewsShareStorageAndCopiesDoNot() {
        let x = Tensor.arange(0, 24, dtype: .float32).reshape([2, 3, 4])
        for v in [x.permute(2, 0, 1), x.transpose(0, 1), x.select(1, 2), x.narrow(2, start: 1, length: 2),
                  x.unsqueeze(0), x.flatten(), x[1], x[.ellipsis, 0], x.split(2, dim: 2)[1], x.chunk(3, dim: 1)[2]] {
            XCTAssertTrue(v.storage === x.storage)
        }
        XCTAssertFalse(x.permute(2, 0, 1).contiguous().storage === x.storage)
        XCTAssertTrue(x.contiguous() === x)
        XCTAssertEqual(x[.ellipsis, 0].scalars, [0, 4, 8, 12, 16, 20])
        XCTAssertEqual(x[.newAxis].shape, [1, 2, 3, 4])
        XCTAssertEqual(x[1, 2].scalars, [20, 21, 22, 23])
        XCTAssertEqual(x[0, 1..<3, 2...].scalars, [6, 7, 10, 11])
        XCTAssertEqual(x[0, ..<1, ...1].scalars, [0, 1])
        XCTAssertEqual(x.permute(2, 0, 1).contiguous().reshape([4, 6])[1].scalars, [1, 5, 9, 13, 17, 21])
    }

    func testExpandIsStrideZeroAndReshapeOfNonContiguousCopies() {
        let a = Tensor([1, 2, 3] as [Float]).reshape([3, 1])
        let e = a.expand([3, 4])
        XCTAssertEqual(e.strides, [1, 0])
        XCTAssertEqual(e.sum(dim: 1).scalars, [4, 8, 12])
        let t = Tensor.arange(0, 6, dtype: .float32).reshape([2, 3]).t()
        let r = t.reshape([6])
        XCTAssertFalse(r.storage === t.storage)
        XCTAssertEqual(r.scalars, [0, 3, 1, 4, 2, 5])
    }

    func testJoinsAndSplits() {
        let a = Tensor([[1, 2], [3, 4]] as [[Float]]), b = Tensor([[5, 6]] as [[Float]])
        XCTAssertEqual(Tensor.cat([a, b]).scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor.cat([a, a], dim: 1).shape, [2, 4])
        XCTAssertEqual(Tensor.stack([a, a], dim: 2).shape, [2, 2, 2])
        let parts = Tensor.arange(0, 7, dtype: .float32).split(3)
        XCTAssertEqual(parts.map(\.shape), [[3], [3], [1]])
        XCTAssertEqual(Tensor.arange(0, 7, dtype: .float32).split(sizes: [2, 5]).map(\.count), [2, 5])
        XCTAssertEqual(Tensor.arange(0, 6, dtype: .float32).chunk(4).map(\.count), [2, 2, 2])
    }

    func testCreationFromSwiftValues() {
        let x = Tensor([[1, 2, 3], [4, 5, 6]] as [[Double]])
        XCTAssertEqual(x.dtype, .float32)  // like Python floats in torch.tensor
        XCTAssertEqual(Tensor([1, 2] as [Int]).dtype, .int64)
        XCTAssertEqual(Tensor([true, false]).dtype, .bool)
        XCTAssertEqual(Tensor([[[1, 2]], [[3, 4]]] as [[[Float]]]).shape, [2, 1, 2])
        XCTAssertEqual(Tensor(scalar: 3.5, dtype: .float64).item(), 3.5)
        XCTAssertEqual(Tensor.full([2], 7, dtype: .int32).toArray(Int32.self), [7, 7])
        XCTAssertEqual(Tensor.onesLike(x, dtype: .uint8).toArray(UInt8.self), [1, 1, 1, 1, 1, 1])
        XCTAssertEqual(Tensor.zerosLike(x).shape, [2, 3])
        XCTAssertEqual(Tensor.fullLike(x, 2).sum().item(), 12)
        XCTAssertEqual(Tensor.emptyLike(x).shape, [2, 3])
        XCTAssertEqual(Tensor([Int64.max, Int64.min + 1]).toArray(Int64.self), [Int64.max, Int64.min + 1])
        XCTAssertEqual("\(Tensor([[1, 2], [3, 4]] as [[Float]]))", "tensor([[1., 2.],\n        [3., 4.]])")
    }
}
