import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// The GPU tests' guard: Ember's kernel cache goes to a temporary directory first (the
/// tests write nothing outside directories they create), then whether a GPU is usable.
var gpuAvailable: Bool {
    useTemporaryCaches()
    return Ember.CUDA.isAvailable
}

/// On a machine with a GPU: a few ops on cuda:0 against the CPU (the full check is the
/// `ember-gpu-check` executable). Without one: skipped, with the reason printed.
final class CUDADeviceTests: XCTestCase {
    func gpu() throws -> Device {
        guard gpuAvailable else {
            throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")")
        }
        return .cuda(0)
    }

    func testOpsMatchTheCPU() throws {
        let g = try gpu()
        Ember.manualSeed(1)
        let a = Tensor.randn([33, 17]), b = Tensor.randn([17, 9]), c = Tensor.randn([33, 9])
        let cpu = ((a.matmul(b) + c).relu().softmax(dim: 1) * 3).sum(dim: 0)
        let dev = ((a.to(g).matmul(b.to(g)) + c.to(g)).relu().softmax(dim: 1) * 3).sum(dim: 0)
        XCTAssertEqual(dev.device, g)
        XCTAssertLessThan((dev.to(.cpu) - cpu).abs().max().item(), 1e-5)
    }

    func testMemoryAccounting() throws {
        let g = try gpu()
        let before = Ember.CUDA.memoryAllocated()
        var t: Tensor? = Tensor.zeros([1 << 20], device: g)
        XCTAssertGreaterThanOrEqual(Ember.CUDA.memoryAllocated() - before, 4 << 20)
        t = nil
        _ = t
        XCTAssertEqual(Ember.CUDA.memoryAllocated(), before)
        XCTAssertGreaterThanOrEqual(Ember.CUDA.memoryReserved(), Ember.CUDA.memoryAllocated())
        // Peak tracking: the 4 MiB tensor counted until the reset, then only what is live.
        XCTAssertGreaterThanOrEqual(Ember.CUDA.maxMemoryAllocated() - before, 4 << 20)
        Ember.CUDA.resetPeakMemoryStats()
        XCTAssertEqual(Ember.CUDA.maxMemoryAllocated(), Ember.CUDA.memoryAllocated())
        let small = Tensor.zeros([1024], device: g)
        XCTAssertEqual(Ember.CUDA.maxMemoryAllocated(), Ember.CUDA.memoryAllocated())
        _ = small
    }

    /// A driver that cannot load NVRTC's output (older than the compiler) makes CUDA
    /// unavailable with the reason, found when CUDA starts (a child process on the emulator,
    /// which then refuses every module), not a crash at the first operation.
    func testADriverThatCannotLoadTheKernelsIsReportedAtStart() throws {
        if ProcessInfo.processInfo.environment["EMBER_EMULATOR_REFUSE_MODULES"] == "1" {
            print("EMBER-AVAILABLE \(Ember.CUDA.isAvailable) \(Ember.CUDA.deviceCount): \(Ember.CUDA.unavailableReason ?? "-")")
            return
        }
        guard gpuAvailable, Ember.CUDA.name(0).contains("emulator") else { throw XCTSkip("needs the CUDA emulator") }
        #if os(Linux)
        guard let (status, text) = try runTestInChild("EmberCUDATests.CUDADeviceTests/testADriverThatCannotLoadTheKernelsIsReportedAtStart",
                                                      environment: ["EMBER_EMULATOR_REFUSE_MODULES": "1"]) else {
            throw XCTSkip("not running from an .xctest binary")
        }
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("EMBER-AVAILABLE false 0: CUDA: cuda:0 (Ember CUDA emulator (host CPU)) cannot run Ember's kernels: "
                                    + "CUDA: loading module probe"), String(text.suffix(1500)))
        XCTAssertTrue(text.contains("unsupported toolchain"), String(text.suffix(1500)))
        #endif
    }

    func testUnavailableReasonNamesTheLibrary() throws {
        if gpuAvailable { throw XCTSkip("a GPU is present") }
        let r = Ember.CUDA.unavailableReason ?? ""
        XCTAssertTrue(r.contains("libcuda") || r.contains("NVRTC") || r.contains("cuInit") || r.contains("nvcuda"), r)
        XCTAssertEqual(Ember.CUDA.deviceCount, 0)
    }
}

/// Moving models and optimizer state to the GPU, as PyTorch users do it.
final class CUDAModuleTests: XCTestCase {
    func testModuleToKeepsParameterObjectsSoAnEarlierOptimizerTrains() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        Ember.manualSeed(3)
        let net = Sequential(Linear(4, 8), Activation("relu") { $0.relu() }, Linear(8, 3))
        let before = net.parameters()
        let opt = Adam(net.parameters(), lr: 0.1)   // made before the move, as in many scripts
        net.to(.cuda(0))
        XCTAssertTrue(zip(before, net.parameters()).allSatisfy { $0 === $1 }, "parameters must stay the same objects")
        XCTAssertTrue(net.parameters().allSatisfy { $0.device == .cuda(0) })
        let w0 = net.parameters()[0].to(.cpu).clone()
        let x = Tensor.randn([16, 4]).to(.cuda(0)), y = Tensor.randint(0, 3, [16]).to(.cuda(0))
        for _ in 0..<3 {
            opt.zeroGrad()
            try crossEntropy(net(x), y).backward()
            opt.step()
        }
        XCTAssertGreaterThan((net.parameters()[0].to(.cpu) - w0).abs().max().item(), 1e-3, "the optimizer did not update the moved parameters")
        // Optimizer state saved from the GPU and loaded into a fresh optimizer lands on the GPU.
        let saved = opt.stateDict()
        let opt2 = Adam(net.parameters(), lr: 0.1)
        try opt2.loadStateDict(saved)
        opt2.zeroGrad()
        try crossEntropy(net(x), y).backward()
        opt2.step()
        XCTAssertTrue(net.parameters().allSatisfy { $0.device == .cuda(0) })
    }

    /// A half-precision CNN (`model.to(.float16)`, PyTorch's `model.half()`) on the GPU gives
    /// what the same model gives on the CPU: both compute each op in float32 and round.
    func testHalfPrecisionModelsMatchTheCPU() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        for dtype in [DType.float16, .bfloat16] {
            Ember.manualSeed(8)
            let net = Sequential(Conv2d(1, 4, kernelSize: (3, 3), padding: .explicit(1, 1)), ReLU(), MaxPool2d(2), Flatten(), Linear(4 * 4 * 4, 3))
            let emb = Embedding(6, 2)
            let x = Tensor.randn([5, 1, 8, 8]), y = Tensor.randint(0, 3, [5]), ids = Tensor([0, 5, 5, 2] as [Int64])
            net.to(dtype)
            emb.to(dtype)
            func run(_ d: Device) throws -> [Tensor] {
                net.to(d)
                emb.to(d)
                for p in net.parameters() + emb.parameters() { p.grad = nil }
                let loss = crossEntropy(net(x.to(dtype).to(d)), y.to(d)) + emb(ids.to(d)).square().sum()
                try loss.backward()
                return [loss] + (net.parameters() + emb.parameters()).map { $0.grad! }
            }
            let cpu = try run(.cpu), gpu = try run(.cuda(0))
            for (i, (c, g)) in zip(cpu, gpu).enumerated() {
                XCTAssertEqual(g.dtype, dtype)
                let d = (g.to(.cpu).to(.float64) - c.to(.float64)).abs().max().item(), scale = c.to(.float64).abs().max().item()
                XCTAssertLessThanOrEqual(d, 0.02 * max(scale, 1e-3), "\(dtype) tensor \(i): GPU differs from the CPU by \(d) (scale \(scale))")
            }
        }
    }
}

/// Pinned memory and copies that do not wait (`pin_memory`, `non_blocking`).
final class CUDACopyTests: XCTestCase {
    func gpu() throws -> Device {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        return .cuda(0)
    }

    func testPageableCopiesAreSnapshotsAndStagingBuffersAreNotReusedEarly() throws {
        let g = try gpu()
        // Many queued copies through the staging pool; each source changes right after its
        // copy is queued. A staging block reused before its copy ran would mix the values.
        var onGPU: [Tensor] = []
        for i in 0..<40 {
            let h = Tensor.full([3000 + i], Double(i))
            onGPU.append(h.to(g))
            h.fill_(-1)
        }
        for (i, t) in onGPU.enumerated() {
            XCTAssertEqual(t.to(.cpu).min().item(), Double(i), "copy \(i)")
            XCTAssertEqual(t.to(.cpu).max().item(), Double(i), "copy \(i)")
        }
    }

    func testPinnedTensorsAndNonBlockingCopies() throws {
        let g = try gpu()
        Ember.manualSeed(5)
        let h = Tensor.randn([257, 3])
        let p = h.pinMemory()
        XCTAssertTrue(p.isPinned)
        XCTAssertFalse(h.isPinned)
        XCTAssertEqual(p.toArray(Float.self), h.toArray(Float.self))
        let d = p.to(g, nonBlocking: true)
        let back = (d * 2).to(.cpu, nonBlocking: true)
        XCTAssertTrue(back.isPinned)
        Ember.CUDA.synchronize()
        XCTAssertEqual(back.toArray(Float.self), (h * 2).toArray(Float.self))
        // A pinned tensor dropped while its copy may be in flight goes back to the pool and
        // is handed out again only after that copy: many rounds must all arrive intact.
        var results: [Tensor] = []
        for i in 0..<30 {
            let src = Tensor.full([1000], Double(i)).pinMemory()
            results.append(src.to(g, nonBlocking: true))
        }
        for (i, t) in results.enumerated() { XCTAssertEqual(t.to(.cpu).sum().item(), Double(1000 * i), "round \(i)") }
        XCTAssertGreaterThan(Ember.CUDA.pinnedMemoryReserved, 0)
    }

    /// With two GPUs, copies to each go through the same pinned pool: each copy and the
    /// event that guards its staging block must be queued in its own device's context
    /// (a GPU refuses a stream or event of another context). Run with 2 devices in CI
    /// (EMBER_EMULATOR_DEVICES=2), where the emulator refuses them as a GPU would.
    func testCopiesToTwoDevicesShareThePinnedPool() throws {
        _ = try gpu()
        guard Ember.CUDA.deviceCount >= 2 else { throw XCTSkip("needs 2 GPUs (EMBER_EMULATOR_DEVICES=2 on the emulator)") }
        let host = Tensor.randn([64, 33])
        for round in 0..<3 {
            for i in [1, 0, 1] {
                // Pageable sources are staged in pinned blocks, reused once their copies are done.
                let d = host.to(.cuda(i)) * Double(round + 1)
                XCTAssertEqual(d.device, .cuda(i))
                XCTAssertEqual(d.to(.cpu).toArray(Float.self), (host * Double(round + 1)).toArray(Float.self))
                let pinned = host.pinMemory()
                let e = pinned.to(.cuda(i), nonBlocking: true).sum()
                XCTAssertEqual(e.item(), host.sum().item(), accuracy: 1e-3)
            }
        }
        // A worker thread with no context of its own copies to the second device.
        nonisolated(unsafe) var result: [Float] = []
        let done = DispatchSemaphore(value: 0)
        Thread { result = host.to(.cuda(1)).to(.cpu).toArray(Float.self); done.signal() }.start()
        done.wait()
        XCTAssertEqual(result, host.toArray(Float.self))
    }

    func testDataLoaderPinsEveryBatchTensorInWorkers() throws {
        let g = try gpu()
        let x = Tensor.randn([50, 4]), y = Tensor.arange(50)
        for workers in [0, 2] {
            let loader = DataLoader(count: 50, batchSize: 8, numWorkers: workers, seed: 1, pinMemory: true) { idx in
                let i = Tensor(idx)
                return (x.indexSelect(0, i), y.indexSelect(0, i))
            }
            var seen = 0
            try loader.forEach { (bx, by) in
                XCTAssertTrue(bx.isPinned && by.isPinned, "workers \(workers): batch not pinned")
                let dx = bx.to(g, nonBlocking: true)
                XCTAssertEqual(dx.to(.cpu).toArray(Float.self), bx.toArray(Float.self))
                seen += by.count
            }
            XCTAssertEqual(seen, 50)
        }
        // Pinned blocks return to the pool once their copies are done, also when the
        // worker threads that pin the next batches ask (they need the device's context for
        // that): after the first epochs, later ones reserve no more pinned memory. (How many
        // batches the workers hold at once varies with timing: up to 2 more 1 MiB blocks are
        // allowed; without reuse it grows by 4 per epoch.)
        let loader = DataLoader(count: 400, batchSize: 100, numWorkers: 2, seed: 1, pinMemory: true) { idx in
            Tensor.ones([idx.count, 2048])
        }
        var reserved: [Int] = []
        for _ in 0..<6 {
            try loader.forEach { (b: Tensor) in _ = b.to(g, nonBlocking: true).sum().item() }
            reserved.append(Ember.CUDA.pinnedMemoryReserved)
        }
        XCTAssertLessThanOrEqual(reserved[5] - reserved[1], 2 << 20, "pinned memory reserved after each epoch: \(reserved)")
    }
}

/// Optimizer steps on the GPU run as one fused kernel per parameter and match the CPU.
final class CUDAOptimizerTests: XCTestCase {
    func testFusedStepsMatchTheCPU() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        typealias Make = ([Tensor]) -> Optimizer
        let configs: [(String, Make)] = [
            ("Adam", { Adam($0, lr: 1e-2) }),
            ("Adam wd amsgrad", { Adam($0, lr: 1e-2, weightDecay: 0.1, amsgrad: true) }),
            ("AdamW", { AdamW($0, lr: 1e-2, weightDecay: 0.05) }),
            ("SGD", { SGD($0, lr: 0.1) }),
            ("SGD momentum dampening wd", { SGD($0, lr: 0.1, momentum: 0.9, dampening: 0.2, weightDecay: 0.01) }),
            ("SGD nesterov", { SGD($0, lr: 0.1, momentum: 0.9, nesterov: true) }),
        ]
        for dtype in [DType.float32, .float64] {
            for (name, make) in configs {
                Ember.manualSeed(5)
                let p0 = Tensor.randn([1000], dtype: dtype), grads = (0..<4).map { _ in Tensor.randn([1000], dtype: dtype) }
                let pc = p0.clone(), pg = p0.to(g)
                let oc = make([pc]), og = make([pg])
                for s in 0..<4 {
                    pc.grad = grads[s]
                    pg.grad = grads[s].to(g)
                    oc.step()
                    og.step()
                }
                let diff = (pg.to(.cpu) - pc).abs().max().item()
                XCTAssertLessThan(diff, dtype == .float32 ? 2e-6 : 1e-12, "\(name) \(dtype): GPU and CPU differ by \(diff)")
                XCTAssertGreaterThan((pc - p0).abs().max().item(), 1e-3, "\(name) did not move the parameter")
            }
        }
        // Gradient clipping on the device (no per-gradient read back) matches the CPU.
        for normType in [2.0, 1.0, .infinity] {
            Ember.manualSeed(8)
            let grads = [Tensor.randn([30, 4]), Tensor.randn([7]) * 3, Tensor.randn([2, 2, 2])]
            let pc = grads.map { Tensor.zerosLike($0).requiringGrad() }, pg = grads.map { Tensor.zeros($0.shape, device: g).requiringGrad() }
            for k in 0..<3 { pc[k].grad = grads[k].clone(); pg[k].grad = grads[k].to(g) }
            let tc = clipGradNorm(pc, maxNorm: 1.5, normType: normType)
            let tg = clipGradNormTensor(pg, maxNorm: 1.5, normType: normType)!
            XCTAssertEqual(tg.device, g)
            XCTAssertEqual(tg.item(), tc, accuracy: 1e-4 * tc, "clipGradNorm p=\(normType) total")
            for k in 0..<3 {
                XCTAssertLessThan((pg[k].grad!.to(.cpu) - pc[k].grad!).abs().max().item(), 1e-5, "clipGradNorm p=\(normType) gradient \(k)")
            }
        }
        // The fused kernels are what ran (the composed ops would give the same numbers).
        let p = Tensor.randn([10], device: g), grad = Tensor.randn([10], device: g)
        let m = Tensor.zeros([10], device: g), v = Tensor.zeros([10], device: g)
        XCTAssertTrue(FusedUpdate.adam(param: p, grad: grad, expAvg: m, expAvgSq: v, maxExpAvgSq: nil, lr: 0.1, beta1: 0.9,
                                       beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, bc1: 0.1, bc2: 0.001))
        XCTAssertTrue(FusedUpdate.sgd(param: p, grad: grad, momentumBuffer: m, lr: 0.1, momentum: 0.9, dampening: 0,
                                      nesterov: false, weightDecay: 0, firstStep: true))
        XCTAssertEqual(m.to(.cpu).toArray(Float.self), grad.to(.cpu).toArray(Float.self), "the first SGD step sets the buffer to the gradient")
        // A non-contiguous gradient takes the composed ops.
        XCTAssertFalse(FusedUpdate.sgd(param: p, grad: Tensor.randn([10, 2], device: g)[0..., 0], momentumBuffer: nil, lr: 0.1,
                                       momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, firstStep: false))
    }
}

/// Cross-entropy on the GPU (one kernel per pass) and index values, checked on the device.
final class CUDALossAndIndexTests: XCTestCase {
    func testCrossEntropyMatchesTheCPUWithIgnoredRows() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        for dtype in [DType.float32, .float64] {
            Ember.manualSeed(9)
            let x = Tensor.randn([7, 5], dtype: dtype) * 3
            let y = Tensor([0, 4, -100, 2, 2, -100, 1])
            for reduction in [Reduction.mean, .sum, .none] {
                let xc = x.clone(), xg = x.to(g)
                xc.requiresGrad = true
                xg.requiresGrad = true
                let lc = crossEntropy(xc, y, reduction: reduction), lg = crossEntropy(xg, y.to(g), reduction: reduction)
                XCTAssertEqual(lg.device, g)
                let tol = dtype == .float32 ? 1e-5 : 1e-12
                XCTAssertLessThan((lg.to(.cpu) - lc).abs().max().item(), tol, "\(reduction) \(dtype) forward")
                // .none: an upstream gradient with a stride of 2 (a view).
                let up = Tensor.randn([14], dtype: dtype).slice(0, step: 2)
                if reduction == .none {
                    try lc.backward(gradient: up)
                    try lg.backward(gradient: up.to(g))
                } else {
                    try lc.backward()
                    try lg.backward()
                }
                XCTAssertLessThan((xg.grad!.to(.cpu) - xc.grad!).abs().max().item(), tol, "\(reduction) \(dtype) backward")
                XCTAssertEqual(xg.grad!.to(.cpu)[2].abs().max().item(), 0, "an ignored row has no gradient")
            }
        }
    }

    /// A class index or an index out of range stops the program at the next synchronisation
    /// with the op's message (child processes); the op itself does not wait for the GPU.
    func testBadIndicesAreReportedFromTheDevice() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        if let scenario = ProcessInfo.processInfo.environment["EMBER_CUDA_BAD_INDEX"] {
            let result: Tensor
            switch scenario {
            case "target": result = crossEntropy(Tensor.randn([3, 4], device: g), Tensor([1, 7, 0]).to(g))
            case "indexSelect": result = Tensor.randn([5, 3], device: g).indexSelect(0, Tensor([1, -2, 9]).to(g))
            default: result = Tensor.randn([2, 3], device: g).gather(1, Tensor([[0], [-4]]).to(g))
            }
            FileHandle.standardError.write(Data("EMBER-QUEUED\n".utf8))  // nothing waited yet
            FileHandle.standardError.write(Data("EMBER-RESULT \(result.to(.cpu).toArray(Float.self))\n".utf8))
            return
        }
        // Negative indices count from the end on the GPU too.
        let x = Tensor.randn([5, 3])
        XCTAssertEqual(x.to(g).indexSelect(0, Tensor([-1, 0, -5]).to(g)).to(.cpu).toArray(Float.self),
                       x.indexSelect(0, Tensor([-1, 0, -5])).toArray(Float.self))
        XCTAssertEqual(x.to(g).gather(1, Tensor([[-1], [0], [-3], [2], [1]]).to(g)).to(.cpu).toArray(Float.self),
                       x.gather(1, Tensor([[-1], [0], [-3], [2], [1]])).toArray(Float.self))
        #if os(Linux)
        let cases = [("target", "crossEntropy: target 7 is out of bounds for 4 classes (found on cuda:0"),
                     ("indexSelect", "indexSelect: index 9 is out of bounds for dimension with size 5 (found on cuda:0"),
                     ("gather", "gather: index -4 is out of bounds for dimension with size 3 (found on cuda:0")]
        for (scenario, expected) in cases {
            guard let (status, text) = try runTestInChild("EmberCUDATests.CUDALossAndIndexTests/testBadIndicesAreReportedFromTheDevice",
                                                          environment: ["EMBER_CUDA_BAD_INDEX": scenario]) else {
                throw XCTSkip("not running from an .xctest binary")
            }
            XCTAssertNotEqual(status, 0, text)
            XCTAssertTrue(text.contains("EMBER-QUEUED"), "\(scenario): " + text.suffix(1500))
            XCTAssertFalse(text.contains("EMBER-RESULT"), "\(scenario): " + text.suffix(1500))
            XCTAssertTrue(text.contains(expected), "\(scenario): " + text.suffix(1500))
        }
        #endif
    }
}

/// Accumulating index ops (index_add, scatter_add, max-pool backward with overlapping
/// windows) add many values into one element: on a GPU those adds run at once, so each
/// must be atomic in every dtype, and half-precision ones must add values, not bit patterns.
final class CUDAAccumulateTests: XCTestCase {
    func testAccumulatingOpsMatchTheCPUInEveryDType() throws {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        let g = Device.cuda(0)
        Ember.manualSeed(4)
        // 300 slices added into 3: every destination receives about 100 values.
        let index = Tensor((0..<300).map { Int64($0 % 3) })
        for dtype in DType.allCases {
            let base = dtype == .bool ? Tensor.zeros([3, 4], dtype: .bool) : (Tensor.rand([3, 4]) * 4).floor().to(dtype)
            let src = dtype == .bool ? Tensor.rand([300, 4]).gt(0.5) : (Tensor.rand([300, 4]) * 4).floor().to(dtype)
            let tol = dtype == .float16 || dtype == .bfloat16 ? 1.0 : 0  // exact small integers up to 2^8 in bf16
            let cpu = base.indexAdd(0, index, src), gpu = base.to(g).indexAdd(0, index.to(g), src.to(g)).to(.cpu)
            XCTAssertLessThanOrEqual((gpu.to(.float64) - cpu.to(.float64)).abs().max().item(), tol, "indexAdd \(dtype)")
            let sIndex = Tensor((0..<1200).map { Int64($0 % 3) }).reshape([300, 4])
            let sc = base.scatterAdd(0, sIndex, src), sg = base.to(g).scatterAdd(0, sIndex.to(g), src.to(g)).to(.cpu)
            XCTAssertLessThanOrEqual((sg.to(.float64) - sc.to(.float64)).abs().max().item(), tol, "scatterAdd \(dtype)")
        }
        // Max-pool backward, 3×3 windows with stride 1: up to 9 windows pick one input.
        for dtype in [DType.float16, .bfloat16, .float32, .float64] {
            // One peak per plane at (4, 4): the 9 windows around it all pick it.
            let x = Tensor((0..<384).map { $0 % 64 == 36 ? Float(1) : 0 }).reshape([2, 3, 8, 8]).to(dtype)
            let xc = x.clone(), xg = x.to(g)
            xc.requiresGrad = true
            xg.requiresGrad = true
            try xc.maxPool2d(kernel: (3, 3), stride: (1, 1)).sum().backward()
            try xg.maxPool2d(kernel: (3, 3), stride: (1, 1)).sum().backward()
            XCTAssertEqual(xg.grad!.to(.cpu).to(.float64).toArray(Double.self), xc.grad!.to(.float64).toArray(Double.self), "maxPool2d backward \(dtype)")
            XCTAssertEqual(xc.grad!.to(.float64).max().item(), 9)
        }
    }
}

/// Streams and events (`torch.cuda.Stream`, `torch.cuda.Event`) and the allocator's
/// per-stream pools.
final class CUDAStreamTests: XCTestCase {
    typealias Stream = Ember.CUDA.Stream
    typealias Event = Ember.CUDA.Event

    func gpu() throws -> Device {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        return .cuda(0)
    }

    func address(_ t: Tensor) -> UInt { UInt(bitPattern: t.storage.data) }

    func testWorkOnAUserStreamWithEvents() throws {
        let g = try gpu()
        let s = Stream(device: 0)
        XCTAssertEqual(Stream.current(), Stream.defaultStream())
        XCTAssertNotEqual(s, Stream.defaultStream())
        Ember.manualSeed(4)
        let x = Tensor.randn([48, 48]), xg = x.to(g)
        let start = Event(timing: true), end = Event(timing: true)
        s.wait(for: Stream.current())  // xg's copy is queued on the default stream
        let y: Tensor = Ember.CUDA.withStream(s) {
            XCTAssertEqual(Stream.current(), s)
            start.record()
            let y = (xg.matmul(xg) + 1).relu().sum(dim: 1)
            end.record()
            return y
        }
        XCTAssertEqual(Stream.current(), Stream.defaultStream(), "withStream restores the previous stream")
        Stream.current().wait(for: s)
        let want = (x.matmul(x) + 1).relu().sum(dim: 1)
        XCTAssertLessThan((y.to(.cpu) - want).abs().max().item(), 1e-3)
        XCTAssertGreaterThanOrEqual(start.elapsedMilliseconds(to: end), 0)
        XCTAssertTrue(end.isComplete)
        s.synchronize()
        XCTAssertTrue(s.isIdle)
        let e = s.recordEvent()
        e.synchronize()
        XCTAssertTrue(e.isComplete)
        // withNewStream: a stream of its own that first waits for the current one (the copy
        // of `fresh` is still queued there), waited for at the end.
        let fresh = (x + 3).to(g)
        let z = Ember.CUDA.withNewStream { fresh * 2 }
        XCTAssertEqual((z.to(.cpu) - (x + 3) * 2).abs().max().item(), 0, "withNewStream ran before the current stream's copy")
    }

    func testMemoryIsPooledPerStream() throws {
        let g = try gpu()
        let s = Stream(device: 0)
        // Sizes used by nothing else in the tests, so the cached blocks are these.
        let n = 123_457, m = 98_767, k = 87_653
        var onS: UInt = 0
        Ember.CUDA.withStream(s) { onS = address(Tensor.empty([n], device: g)) }  // freed into s's pool
        let other = Tensor.empty([n], device: g)
        XCTAssertNotEqual(address(other), onS, "a block freed on a user stream was handed to the default stream")
        Ember.CUDA.withStream(s) { XCTAssertEqual(address(Tensor.empty([n], device: g)), onS, "the stream reuses its own block") }
        // A default-stream tensor also used on s: reusable once s's work has completed.
        var used: UInt = 0
        do {
            let t = Tensor.empty([m], device: g)
            Ember.CUDA.withStream(s) { _ = t + 1 }
            t.recordStream(s)
            used = address(t)
        }
        s.synchronize()
        XCTAssertEqual(address(Tensor.empty([m], device: g)), used, "a recorded block came back after its stream's work")
        // The blocks of a stream that is gone return to the default stream's pool.
        let reserved = Ember.CUDA.memoryReserved()
        var gone: UInt = 0
        do {
            let s2 = Stream(device: 0)
            Ember.CUDA.withStream(s2) { gone = address(Tensor.empty([k], device: g)) }
        }
        XCTAssertEqual(address(Tensor.empty([k], device: g)), gone, "a destroyed stream's block was not reused")
        XCTAssertEqual(Ember.CUDA.memoryReserved(), reserved + CUDAStreamTests.rounded(k * 4))
    }

    static func rounded(_ bytes: Int) -> Int { bytes <= 1 << 20 ? (bytes + 511) / 512 * 512 : ((bytes + (1 << 20) - 1) >> 20) << 20 }
}
