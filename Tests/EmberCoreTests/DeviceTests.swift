import XCTest
@testable import EmberCore
import EmberTestSupport

final class DeviceTests: XCTestCase {
    override class func setUp() {
        BackendRegistry.register(HostMemoryDevice(.cuda(7)), for: .cuda(7))
    }

    func testOpsRunOnTheTensorsDevice() throws {
        let dev = Device.cuda(7)
        let x = Tensor([1, 2, 3] as [Float], device: dev, requiresGrad: true)
        XCTAssertEqual(x.device, dev)
        let y = (x * x + 1).exp().log().sum()
        XCTAssertEqual(y.device, dev)
        try y.backward()
        XCTAssertEqual(x.grad!.device, dev)
        assertClose(x.grad!, [2, 4, 6])
        let moved = Tensor.randn([4, 3], requiresGrad: true)
        let z = moved.to(dev).matmul(Tensor.ones([3, 2], device: dev)).sum()
        try z.backward()
        XCTAssertEqual(moved.grad!.device, .cpu)
        assertClose(moved.grad!, [Double](repeating: 2, count: 12))
        XCTAssertEqual(Tensor.zeros([2], device: dev).to(.cpu).scalars, [0, 0])
    }
}
