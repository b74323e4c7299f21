import EmberTestSupport
import Foundation
import XCTest
@testable import Ember

/// Models in float16 and bfloat16 (`module.to(.float16)`, PyTorch's `model.half()`): every
/// layer and loss runs forward and backward in half precision, computing in float32 inside
/// each op and rounding its result, and agrees with the same model in float32 to within
/// the half type's precision.
final class HalfPrecisionTests: XCTestCase {
    /// The largest difference between `a` and `b`, relative to the largest magnitude in `b`.
    func relative(_ a: Tensor, _ b: Tensor) -> Double {
        let a = a.to(.float64), b = b.to(.float64)
        return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-6)
    }

    /// Runs `model` on `input` in float32, then converted to `dtype`; compares the outputs
    /// and every parameter's gradient. `loss` maps the output to a scalar.
    func check(_ name: String, _ model: Module, _ input: Tensor, loss: (Tensor) -> Tensor = { ($0 * $0).sum() },
               file: StaticString = #filePath, line: UInt = #line) throws {
        for dtype in [DType.float16, .bfloat16] {
            model.to(.float32)
            for p in model.parameters() { p.grad = nil }
            let y32 = model(input)
            try loss(y32).backward()
            let grads32 = model.parameters().map { $0.grad!.clone() }
            let params = model.parameters()
            model.to(dtype)
            XCTAssertTrue(model.parameters().elementsEqual(params, by: ===), "\(name): parameters are the same objects", file: file, line: line)
            for p in model.parameters() {
                XCTAssertEqual(p.dtype, dtype, file: file, line: line)
                p.grad = nil
            }
            let x = input.dtype.isFloatingPoint ? input.to(dtype) : input
            let y = model(x)
            XCTAssertEqual(y.dtype, dtype, "\(name) output", file: file, line: line)
            try loss(y).backward()
            let tol = dtype == .float16 ? 1e-2 : 6e-2
            XCTAssertLessThan(relative(y, y32), tol, "\(name) \(dtype) forward", file: file, line: line)
            for (i, (p, g32)) in zip(model.parameters(), grads32).enumerated() {
                guard let g = p.grad else { XCTFail("\(name) \(dtype): no gradient for parameter \(i)", file: file, line: line); continue }
                XCTAssertEqual(g.dtype, dtype, file: file, line: line)
                XCTAssertLessThan(relative(g, g32), tol * 2, "\(name) \(dtype) gradient of parameter \(i)", file: file, line: line)
            }
        }
        model.to(.float32)
    }

    func testLayersInHalfPrecision() throws {
        Ember.manualSeed(11)
        try check("Linear", Linear(8, 5), Tensor.randn([4, 8]))
        try check("Bilinear", BilinearBlock(), Tensor.randn([5, 3]))
    }

    func testConvolutionsPoolingAndNormalization() throws {
        Ember.manualSeed(12)
        let x = Tensor.randn([2, 3, 8, 8])
        // No bias before batch norm: its gradient is zero up to rounding (the norm removes the mean).
        try check("Conv2d + BatchNorm2d + ReLU + MaxPool2d",
                  Sequential(Conv2d(3, 4, kernelSize: (3, 3), padding: .explicit(1, 1), bias: false), BatchNorm2d(4), ReLU(), MaxPool2d(2)), x)
        try check("Conv2d stride 2, groups, AvgPool2d", Sequential(Conv2d(3, 6, kernelSize: (3, 3), stride: (2, 2), groups: 3), AvgPool2d(2)), x)
        try check("ConvTranspose2d + AdaptiveAvgPool2d", Sequential(ConvTranspose2d(3, 2, kernelSize: 3, stride: 2), AdaptiveAvgPool2d((3, 3))), x)
        try check("Conv1d", Conv1d(3, 4, kernelSize: 3), Tensor.randn([2, 3, 10]))
        try check("LayerNorm", LayerNorm([6]), Tensor.randn([4, 6]) * 3 + 1)
        try check("GroupNorm", GroupNorm(2, 4), Tensor.randn([2, 4, 3, 3]))
    }

    func testEmbeddingRecurrentAndAttention() throws {
        Ember.manualSeed(13)
        // Repeated indices: the gradient adds several rows into one.
        try check("Embedding", Embedding(10, 4), Tensor([1, 3, 3, 9, 1, 1] as [Int64]).reshape([2, 3]))
        try check("LSTM", LSTM(inputSize: 4, hiddenSize: 3), Tensor.randn([5, 2, 4]))
        try check("GRU", GRU(inputSize: 4, hiddenSize: 3, numLayers: 2), Tensor.randn([5, 2, 4]))
        try check("MultiheadAttention", SelfAttention(), Tensor.randn([4, 2, 8]))
    }

    func testLosses() throws {
        Ember.manualSeed(14)
        let logits = Tensor.randn([6, 5]) * 2, target = Tensor([0, 4, 2, 2, 1, 3] as [Int64])
        let lin = Linear(5, 5)
        try check("crossEntropy", lin, logits, loss: { crossEntropy($0, target, labelSmoothing: 0.1) })
        try check("nllLoss", lin, logits, loss: { nllLoss($0.logSoftmax(dim: 1), target) })
        let y = Tensor.rand([6, 5])
        try check("mseLoss", lin, logits, loss: { mseLoss($0, y.to($0.dtype)) })
        try check("smoothL1Loss", lin, logits, loss: { smoothL1Loss($0, y.to($0.dtype)) })
        try check("binaryCrossEntropyWithLogits", lin, logits, loss: { binaryCrossEntropyWithLogits($0, y.to($0.dtype)) })
    }

    /// A half model's state dict saves as float16 safetensors and loads into a half model
    /// unchanged, and into a float32 model converted (as PyTorch's `load_state_dict`).
    func testHalfStateDictsSaveAndLoad() throws {
        Ember.manualSeed(16)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-half-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("net.safetensors").path
        func make() -> Sequential { Sequential(Conv2d(1, 2, kernelSize: (3, 3)), BatchNorm2d(2), Flatten(), Linear(2 * 4 * 4, 3)) }
        let net = make().to(.float16)
        try SafeTensors.save(net.stateDict(), to: path)
        let (loaded, _) = try SafeTensors.load(path)
        XCTAssertEqual(loaded["0.weight"]?.dtype, .float16)
        XCTAssertEqual(loaded["1.num_batches_tracked"]?.dtype, .int64, "integer buffers are not converted")
        let half = make().to(.float16), full = make()
        try half.loadStateDict(loaded)
        try full.loadStateDict(loaded)
        let x = Tensor.randn([2, 1, 6, 6])
        half.eval(); full.eval(); net.eval()
        XCTAssertEqual(half(x.to(.float16)).to(.float32).toArray(Float.self), net(x.to(.float16)).to(.float32).toArray(Float.self))
        XCTAssertEqual(full.parameters()[0].dtype, .float32)
        XCTAssertEqual(full.parameters()[0].toArray(Float.self), net.parameters()[0].to(.float32).toArray(Float.self))
    }

    /// An optimizer made before the conversion steps the converted parameters.
    func testOptimizerMadeBeforeTheConversionTrains() throws {
        Ember.manualSeed(15)
        let net = Sequential(Linear(4, 8), ReLU(), Linear(8, 3))
        let opt = Adam(net.parameters(), lr: 1e-2)
        net.to(.bfloat16)
        let x = Tensor.randn([16, 4]).to(.bfloat16), t = Tensor.randint(0, 3, [16])
        var first = 0.0, last = 0.0
        for step in 0..<30 {
            let loss = crossEntropy(net(x), t)
            if step == 0 { first = loss.item() }
            last = loss.item()
            opt.zeroGrad()
            try loss.backward()
            opt.step()
        }
        XCTAssertTrue(net.parameters().allSatisfy { $0.dtype == .bfloat16 })
        XCTAssertLessThan(last, first * 0.8, "loss \(first) -> \(last)")
    }
}
