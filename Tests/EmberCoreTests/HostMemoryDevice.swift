import XCTest
@testable import EmberCore
import EmberTestSupport

/// A second device whose memory is host memory: proves that dispatch goes through the
/// `Backend` protocol (storage tagged with the device, transfers, device checks).
final class HostMemoryDevice: Backend {
    let device: Device
    let cpu = CPUBackend.shared
    init(_ device: Device) { self.device = device }
    func allocate(bytes: Int, device: Device) -> Storage {
        Storage(device: device, data: .allocate(byteCount: max(bytes, 1), alignment: 64), byteCount: bytes, hostAccessible: true) { $0.deallocate() }
    }
    func fill(_ out: Tensor, _ value: Double) { cpu.fill(out, value) }
    func copy(_ src: Tensor, into dst: Tensor) { cpu.copy(src, into: dst) }
    func unary(_ op: UnaryOp, _ x: Tensor, _ out: Tensor) { cpu.unary(op, x, out) }
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) { cpu.binary(op, a, b, out) }
    func select(_ c: Tensor, _ a: Tensor, _ b: Tensor, _ out: Tensor) { cpu.select(c, a, b, out) }
    func reduce(_ op: ReduceOp, _ x: Tensor, dims: [Int], _ out: Tensor) { cpu.reduce(op, x, dims: dims, out) }
    func matmul(_ a: Tensor, _ b: Tensor, _ out: Tensor) { cpu.matmul(a, b, out) }
    func indexSelect(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) { cpu.indexSelect(x, dim: dim, index, out) }
    func indexAdd(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor) { cpu.indexAdd(out, dim: dim, index, src) }
    func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) { cpu.gather(x, dim: dim, index, out) }
    func scatter(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor, accumulate: Bool) {
        cpu.scatter(out, dim: dim, index, src, accumulate: accumulate)
    }
    func maskedSelect(_ x: Tensor, _ mask: Tensor) -> Tensor { cpu.maskedSelect(x, mask).to(device) }
    func im2col(_ x: Tensor, _ g: WindowGeometry, padValue: Double, _ out: Tensor) { cpu.im2col(x, g, padValue: padValue, out) }
    func col2im(_ cols: Tensor, _ g: WindowGeometry, _ out: Tensor) { cpu.col2im(cols, g, out) }
    func convolution2d(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ g: WindowGeometry, _ out: Tensor) { cpu.convolution2d(x, w, bias, g, out) }
    func convolution2dBackward(_ x: Tensor, _ w: Tensor, _ dy: Tensor, _ g: WindowGeometry, dx: Tensor?, dw: Tensor?) {
        cpu.convolution2dBackward(x, w, dy, g, dx: dx, dw: dw)
    }
    func matmulSumBatches(_ a: Tensor, _ b: Tensor, _ out: Tensor) { cpu.matmulSumBatches(a, b, out) }
    func linear(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, relu: Bool, _ out: Tensor) { cpu.linear(x, w, bias, relu: relu, out) }
    func factorize(_ f: Factorization, _ inputs: [Tensor], _ outputs: [Tensor]) { cpu.factorize(f, inputs, outputs) }
    func maxPool2d(_ x: Tensor, _ g: WindowGeometry, _ out: Tensor, _ indices: Tensor) { cpu.maxPool2d(x, g, out, indices) }
    func maxPool2dBackward(_ grad: Tensor, _ indices: Tensor, _ out: Tensor) { cpu.maxPool2dBackward(grad, indices, out) }
    func softmax(_ x: Tensor, _ out: Tensor, log: Bool) { cpu.softmax(x, out, log: log) }
    func scan(_ op: ScanOp, _ x: Tensor, dim: Int, _ out: Tensor) { cpu.scan(op, x, dim: dim, out) }
    func sort(_ x: Tensor, dim: Int, descending: Bool, _ values: Tensor, _ indices: Tensor) {
        cpu.sort(x, dim: dim, descending: descending, values, indices)
    }
    func crossEntropyRows(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ loss: Tensor, _ lse: Tensor, _ valid: Tensor) {
        cpu.crossEntropyRows(logits, target, ignoreIndex: ignoreIndex, loss, lse, valid)
    }
    func crossEntropyRowsBackward(_ logits: Tensor, _ target: Tensor, ignoreIndex: Int, _ lse: Tensor, _ grad: Tensor, _ out: Tensor) {
        cpu.crossEntropyRowsBackward(logits, target, ignoreIndex: ignoreIndex, lse, grad, out)
    }
    func adamStep(_ p: Tensor, _ g: Tensor, _ m: Tensor, _ v: Tensor, _ vmax: Tensor?, _ k: FusedUpdate.AdamCoefficients) {
        cpu.adamStep(p, g, m, v, vmax, k)
    }
    func sgdStep(_ p: Tensor, _ g: Tensor, _ buf: Tensor?, _ k: FusedUpdate.SGDCoefficients) { cpu.sgdStep(p, g, buf, k) }
    func readBytes(_ t: Tensor, into: UnsafeMutableRawPointer, nonBlocking: Bool) { cpu.readBytes(t, into: into, nonBlocking: false) }
    func writeBytes(_ t: Tensor, from: UnsafeRawPointer, nonBlocking: Bool) { cpu.writeBytes(t, from: from, nonBlocking: false) }
}
