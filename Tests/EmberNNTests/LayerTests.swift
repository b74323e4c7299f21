import EmberCPU
import EmberTestSupport
import Foundation
import XCTest
@testable import Ember

final class LayerTests: XCTestCase {
    /// Every layer with PyTorch's weights: output, input gradients, parameter gradients and
    /// the state after the call (running statistics), in train or eval mode.
    func testEveryLayerMatchesPyTorch() throws {
        let entries = nnFixtures["layers"] as! [[String: Any]]
        XCTAssertGreaterThan(entries.count, 35)
        for e in entries {
            let name = e["name"] as! String
            let (m, call) = makeLayer(name, e["args"] as? [String: Any] ?? [:], e)
            var sd = StateDict()
            for (k, v) in e["state"] as! [String: Any] { sd[k] = fixtureTensor(v) }
            try m.loadStateDict(sd)
            m.train(e["train"] as! Bool)
            let inputs = (e["inputs"] as! [Any]).map { v -> Tensor in
                let t = fixtureTensor(v)
                return t.dtype.isFloatingPoint ? t.requiringGrad() : t
            }
            let out = call(inputs)
            assertClose(out, fixture: e["output"], name + " output")
            try (out * fixtureTensor(e["upstream"])).sum().backward()
            for (i, g) in (e["input_grads"] as! [Any]).enumerated() where !(g is NSNull) {
                assertClose(inputs[i].grad ?? Tensor.zerosLike(inputs[i]), fixture: g, scale: 5, "\(name) grad of input \(i)")
            }
            let params = Dictionary(uniqueKeysWithValues: m.namedParameters())
            for (k, g) in e["param_grads"] as! [String: Any] {
                guard let p = params[k] else { XCTFail("\(name): no parameter \(k)"); continue }
                assertClose(p.grad ?? Tensor.zerosLike(p), fixture: g, scale: 5, "\(name) grad of \(k)")
            }
            let after = m.stateDict()
            for (k, v) in e["state_after"] as! [String: Any] {
                assertClose(after[k]!.to(.float64), fixture: v, "\(name) state \(k) after the call")
            }
            XCTAssertEqual(Set(after.keys), Set((e["state"] as! [String: Any]).keys), "\(name): state-dict names")
        }
    }

    /// 2×2 max-pool ties and NaN follow PyTorch's rule (a later element wins only when
    /// greater or NaN), in float32 (branch-free kernel, at every ISA level) and float64.
    func testMaxPoolTiesAndNaN() throws {
        let saved = CPUFeatures.active
        defer { CPUFeatures.active = saved }
        for (dtype, isa) in [(DType.float32, CPUISA.baseline), (.float32, .avx2), (.float32, .avx512), (.float64, .baseline)]
        where isa <= CPUFeatures.detected {
            CPUFeatures.active = isa
            let x = Tensor([1, 1, 1, .nan, 5, 2, 1, 1, 3, .nan, 2, 5] as [Double]).reshape([1, 1, 2, 6]).to(dtype).requiringGrad()
            let y = x.maxPool2d(kernel: (2, 2), stride: (2, 2))
            let out = y.toArray(Double.self)
            XCTAssertEqual(out[0], 1)
            XCTAssertTrue(out[1].isNaN)
            XCTAssertEqual(out[2], 5)
            try y.sum().backward()
            // Ties keep the first; among 1, NaN, 3, NaN the last NaN; 5, 2, 2, 5 keeps the first 5.
            XCTAssertEqual(x.grad!.toArray(Double.self), [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0], "\(dtype)")
        }
    }

    /// Convolutions with few columns rows (one input channel: the weight gradient is taken
    /// as dot products) and with many, float32 against float64, forward and every gradient,
    /// at every instruction-set level this CPU has.
    func testConvolutionFloat32MatchesFloat64() throws {
        let saved = CPUFeatures.active
        defer { CPUFeatures.active = saved }
        for isa in [CPUISA.baseline, .avx2, .avx512] where isa <= CPUFeatures.detected {
        CPUFeatures.active = isa
        for (c, k, stride, pad) in [(1, 3, 1, 1), (1, 2, 2, 0), (1, 3, 1, 0), (3, 3, 2, 1), (8, 3, 1, 1)] {
            let x = Tensor.randn([3, c, 9, 8]), w = Tensor.randn([5, c, k, k]), b = Tensor.randn([5])
            let up = conv2d(x.to(.float64), w.to(.float64), b.to(.float64), stride: (stride, stride), padding: .explicit(pad, pad))
            let upstream = Tensor.randn(up.shape)
            var results: [[[Double]]] = []
            for dtype in [DType.float32, .float64] {
                let xd = x.to(dtype).clone().requiringGrad(), wd = w.to(dtype).clone().requiringGrad(), bd = b.to(dtype).clone().requiringGrad()
                let y = conv2d(xd, wd, bd, stride: (stride, stride), padding: .explicit(pad, pad))
                try (y * upstream.to(dtype)).sum().backward()
                results.append([y, xd.grad!, wd.grad!, bd.grad!].map { $0.toArray(Double.self) })
            }
            for (name, pair) in zip(["output", "input grad", "weight grad", "bias grad"], zip(results[0], results[1])) {
                XCTAssertNil(mismatch(pair.0, pair.1, .float32, scale: 20), "\(isa) C=\(c) k=\(k) stride \(stride) pad \(pad): \(name)")
            }
        }
        }
    }

    func testModuleNamesModesAndStateDictErrors() throws {
        final class Net: Module {
            let features = Sequential(Conv2d(1, 4, kernelSize: 3), ReLU(), BatchNorm2d(4))
            let bn = BatchNorm1d(3)
            let head = Linear(4, 2)
            var blocks = [Linear(2, 2), Linear(2, 2)]
            let drop = Dropout(0.5)
        }
        let net = Net()
        let names = net.stateDict().keys
        XCTAssertEqual(names, ["features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias", "features.2.running_mean",
                               "features.2.running_var", "features.2.num_batches_tracked", "bn.weight", "bn.bias", "bn.running_mean",
                               "bn.running_var", "bn.num_batches_tracked", "head.weight", "head.bias", "blocks.0.weight", "blocks.0.bias",
                               "blocks.1.weight", "blocks.1.bias"])
        XCTAssertEqual(net.parameters().count, 12)
        XCTAssertEqual(net.namedBuffers().count, 6)
        net.eval()
        XCTAssertTrue(net.namedModules().allSatisfy { !$0.1.training })
        net.train()
        XCTAssertTrue(net.drop.training)

        var sd = net.stateDict()
        sd["head.weight"] = Tensor.zeros([3, 4])
        sd["extra"] = Tensor.zeros([1])
        sd["bn.bias"] = nil
        XCTAssertThrowsError(try net.loadStateDict(sd)) { e in
            guard case StateDictError.mismatch(let missing, let unexpected, let wrong) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(missing, ["bn.bias"])
            XCTAssertEqual(unexpected, ["extra"])
            XCTAssertEqual(wrong.count, 1)
            XCTAssertTrue("\(e)".contains("head.weight"), "\(e)")
        }
        sd["head.weight"] = Tensor.ones([2, 4])
        try net.loadStateDict(sd, strict: false)
        XCTAssertEqual(net.head.weight.sum().item(), 8)

        let x = Tensor.randn([2, 4], requiresGrad: false)
        try net.head(x).sum().backward()
        XCTAssertNotNil(net.head.weight.grad)
        net.zeroGrad()
        XCTAssertNil(net.head.weight.grad)
    }

    func testDropoutTrainAndEval() {
        let d = Dropout(0.3, generator: Generator(seed: 5))
        let x = Tensor.ones([200_000])
        let y = d(x)
        let kept = y.ne(0).to(.float32).mean().item()
        XCTAssertEqual(kept, 0.7, accuracy: 0.01)
        XCTAssertEqual(y.maskedSelect(y.ne(0)).mean().item(), 1 / 0.7, accuracy: 1e-5)  // survivors scaled by 1/(1-p)
        d.eval()
        XCTAssertTrue(d(x) === x)
    }

    /// Default initialisations have PyTorch's distributions (bounds and spreads).
    func testInitialisationDistributions() {
        let l = Linear(784, 256)
        let bound = 1 / 784.0.squareRoot()  // kaiming-uniform(a=√5) bound = 1/√fan_in
        XCTAssertLessThanOrEqual(l.weight.abs().max().item(), bound)
        XCTAssertEqual(l.weight.std().item(), bound / 3.0.squareRoot(), accuracy: bound * 0.02)
        XCTAssertLessThanOrEqual(l.bias!.abs().max().item(), bound)
        let c = Conv2d(16, 32, kernelSize: 3)
        let cb = 1 / (16.0 * 9).squareRoot()
        XCTAssertLessThanOrEqual(c.weight.abs().max().item(), cb)
        XCTAssertEqual(c.weight.std().item(), cb / 3.0.squareRoot(), accuracy: cb * 0.03)
        let w = Tensor.empty([300, 400])
        Init.xavierUniform(w)
        XCTAssertEqual(w.std().item(), (2.0 / 700).squareRoot(), accuracy: 0.002)
        Init.kaimingNormal(w, nonlinearity: "relu")
        XCTAssertEqual(w.std().item(), (2.0 / 400).squareRoot(), accuracy: 0.002)
        Init.xavierNormal(w, gain: 2)
        XCTAssertEqual(w.std().item(), 2 * (2.0 / 700).squareRoot(), accuracy: 0.003)
        let q = Tensor.empty([6, 10])
        Init.orthogonal(q)
        assertClose(q.matmul(q.t()), Tensor.eye(6).toArray(Double.self), scale: 10)
        Init.constant(q, 3)
        XCTAssertEqual(q.mean().item(), 3)
        XCTAssertEqual(Init.gain("tanh"), 5.0 / 3)
        let e = Embedding(10, 4, paddingIndex: 1)
        XCTAssertEqual(e.weight[1].abs().sum().item(), 0)
    }
}
