import XCTest
@testable import EmberCore
import EmberTestSupport

final class MoveDataTests: XCTestCase {
    override class func setUp() {
        BackendRegistry.register(HostMemoryDevice(.cuda(7)), for: .cuda(7))
    }

    func testMoveDataKeepsTheObjectAndMovesTheGradient() throws {
        let p = Tensor([1, 2, 3] as [Float], requiresGrad: true)
        try (p * p).sum().backward()
        let before = p
        p.moveData(to: .cuda(7))
        XCTAssertTrue(before === p)
        XCTAssertEqual(p.device, .cuda(7))
        XCTAssertEqual(p.grad?.device, .cuda(7))
        XCTAssertTrue(p.requiresGrad)
        assertClose(p.to(.cpu), [1, 2, 3])
        assertClose(p.grad!.to(.cpu), [2, 4, 6])
        // It trains where it now is.
        p.grad = nil
        try (p * 3).sum().backward()
        XCTAssertEqual(p.grad?.device, .cuda(7))
        assertClose(p.grad!.to(.cpu), [3, 3, 3])
    }
}
