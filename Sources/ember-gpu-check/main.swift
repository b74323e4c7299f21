// ember-gpu-check: everything that needs a GPU, in one self-contained program.
//
//   swift build -c release --static-swift-stdlib --product ember-gpu-check
//   .build/release/ember-gpu-check [--fixtures Tests/EmberTestSupport/Fixtures/ops.json] [--no-bench] [--python python3]
//                                   [--twin Scripts/gpu_check_twin.py] [--core-only]
//
// 1. the environment report (driver, NVRTC, cuBLAS, devices);
// 2. every PyTorch op fixture of the core (ops.json) and every OpInfo sample (opinfo.json;
//    not with --core-only) run on cuda:0 (forward, gradients, second order);
// 3. the nn layers on the GPU against the CPU (outputs and every gradient);
// 4. 20 training steps of the MLP and the CNN on the GPU against the CPU;
// 5. SGEMM through Ember against cuBLAS called directly, and one Fashion-MNIST-sized epoch
//    (synthetic data) of the MLP and the CNN against PyTorch CUDA on the same GPU.
// Exit status: 0 when every check passed, 1 when one failed, 2 when no GPU is usable.
import Ember
import EmberCUDA
import EmberReference
import Foundation

setvbuf(stdout, nil, _IOLBF, 0)
let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
let fixturesPath = option("--fixtures") ?? "Tests/EmberTestSupport/Fixtures/ops.json"
let python = option("--python") ?? "python3"
let twinScript = option("--twin") ?? "Scripts/gpu_check_twin.py"
let runBench = !args.contains("--no-bench")
var failed = 0

let isChild = option("--section") != nil
if !isChild {
    print("== environment")
    print(Ember.CUDA.report())
}
// `--device cpu` dry-runs the checker itself on the CPU (CPU against CPU) where no GPU is.
let dryRun = option("--device") == "cpu"
guard Ember.CUDA.isAvailable || dryRun else {
    print("no usable GPU (see above): nothing to check")
    exit(2)
}
let gpu: Device = dryRun ? .cpu : .cuda(0)

/// The numbers `Scripts/gpu_check_twin.py ARGUMENTS` (the PyTorch twins) prints on stdout
/// (nil when Python, PyTorch or the script is missing, or the script fails).
func pythonNumbers(_ arguments: [String]) -> [Double]? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [python, twinScript] + arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    let v = String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
    return v.isEmpty ? nil : v
}

// MARK: 2. op fixtures
/// The fixture cases of op `only` (all when nil) on the GPU; prints failures, returns their count.
/// Every fixture case: Ember's own (`ops.json`) and PyTorch's OpInfo samples (`opinfo.json`
/// beside it), each under its key (`softmax`, `opinfo:softmax`).
/// The cases of each fixture file, read once per process, when first needed.
nonisolated(unsafe) var coreCases: [(key: String, c: OpCase)]? = nil
nonisolated(unsafe) var opInfoCases: [(key: String, c: OpCase)]? = nil

/// With `only`, just that key's cases (a child reads only the file that has them).
func allCases(only: String? = nil) throws -> [(key: String, c: OpCase)] {
    let wantOpInfo = only.map { $0.hasPrefix("opinfo:") } ?? true, wantCore = only.map { !$0.hasPrefix("opinfo:") } ?? true
    if wantCore && coreCases == nil {
        coreCases = try Fixtures(url: URL(fileURLWithPath: fixturesPath)).cases.map { (key: $0.op, c: $0) }
    }
    if wantOpInfo && opInfoCases == nil {
        opInfoCases = try OpInfoFixtures(besides: fixturesPath).cases.map { (key: "opinfo:" + $0.op, c: $0) }
    }
    return (wantCore ? coreCases! : []) + (wantOpInfo ? opInfoCases! : [])
}

func fixtures(only: String?) -> Int {
    var failed = 0
    do {
        let cases = try allCases(only: only).filter { only == nil || $0.key == only }.map(\.c)
        var bad: [String] = []
        for c in cases {
            let f = runOpCase(c, device: gpu)
            if !f.isEmpty { bad.append("\(c.name): " + f.joined(separator: "; ")) }
        }
        print("FIXTURES \(only ?? "all") \(cases.count - bad.count)/\(cases.count)")
        for b in bad.prefix(10) { print("  FAIL \(b.prefix(400))") }
        if bad.count > 10 { print("  … \(bad.count - 10) more") }
        failed += bad.count
    } catch {
        print("FAIL: cannot read the fixtures: \(error)")
        failed += 1
    }
    return failed
}

// MARK: 3. layers, GPU against CPU
func maxDiff(_ a: Tensor, _ b: Tensor) -> Double { (a.to(.cpu).to(.float64) - b.to(.cpu).to(.float64)).abs().max().item() }
func relDiff(_ a: Tensor, _ b: Tensor) -> Double {
    maxDiff(a, b) / max(1e-6, b.to(.cpu).to(.float64).abs().max().item())
}

func layers() -> Int {
    var failed = 0
print("\n== layers: \(gpu) against cpu (forward and every gradient, relative max difference)")
    /// Self-attention with a causal mask, as one module.
    final class CausalSelfAttention: Module {
        let attention: MultiheadAttention
        init(_ e: Int, _ h: Int) { attention = MultiheadAttention(embedDim: e, numHeads: h); super.init() }
        override func callAsFunction(_ x: Tensor) -> Tensor { attention.forward(x, x, x, isCausal: true).output }
    }
    let layerCases: [(String, () -> Module, [Int])] = [
        ("Linear(20, 7)", { Linear(20, 7) }, [5, 20]),
        ("Conv2d(3, 8, 3, padding 1)", { Conv2d(3, 8, kernelSize: 3, padding: 1) }, [2, 3, 9, 9]),
        ("Conv2d(4, 6, 3, stride 2, groups 2)", { Conv2d(4, 6, kernelSize: 3, stride: 2, groups: 2) }, [2, 4, 11, 11]),
        ("ConvTranspose2d(4, 3, 3, stride 2)", { ConvTranspose2d(4, 3, kernelSize: 3, stride: 2) }, [2, 4, 5, 5]),
        ("MaxPool2d(2)", { MaxPool2d(2) }, [2, 3, 8, 8]),
        ("AvgPool2d(2)", { AvgPool2d(2) }, [2, 3, 8, 8]),
        ("BatchNorm2d(3)", { BatchNorm2d(3) }, [4, 3, 5, 5]),
        ("LayerNorm([10])", { LayerNorm([10]) }, [3, 4, 10]),
        ("GroupNorm(2, 4)", { GroupNorm(2, 4) }, [2, 4, 3, 3]),
        ("Conv1d(3, 5, 3, stride 2)", { Conv1d(3, 5, kernelSize: 3, stride: 2) }, [2, 3, 11]),
        ("AvgPool2d(3, padding 1, countIncludePad false)", { AvgPool2d(3, stride: 2, padding: 1, countIncludePad: false) }, [2, 3, 7, 7]),
        ("AdaptiveAvgPool2d((3, 2))", { AdaptiveAvgPool2d((3, 2)) }, [2, 3, 7, 5]),
        ("LSTM(6, 8, 2 layers)", { Recurrent(.lstm, inputSize: 6, hiddenSize: 8, numLayers: 2) }, [5, 3, 6]),
        ("GRU(6, 8, batchFirst)", { Recurrent(.gru, inputSize: 6, hiddenSize: 8, batchFirst: true) }, [3, 5, 6]),
        ("RNN(6, 8, relu)", { Recurrent(.rnnRelu, inputSize: 6, hiddenSize: 8) }, [4, 2, 6]),
        ("MultiheadAttention(8, 2), causal", { CausalSelfAttention(8, 2) }, [5, 3, 8]),
        ("FashionModels.mlp()", { FashionModels.mlp() }, [8, 784]),
        ("FashionModels.cnn()", { FashionModels.cnn() }, [4, 1, 28, 28]),
    ]
    for (name, make, shape) in layerCases {
        Ember.manualSeed(11)
        let cpuLayer = make()
        Ember.manualSeed(11)
        let gpuLayer = make().to(gpu)
        Ember.manualSeed(12)
        let x = Tensor.randn(shape)
        let xc = x.clone().requiringGrad(), xg = x.to(gpu).requiringGrad()
        let yc = cpuLayer(xc), yg = gpuLayer(xg)
        let up = Tensor.randn(yc.shape)
        var worst = relDiff(yg, yc)
        do {
            try (yc * up).sum().backward()
            try (yg * up.to(gpu)).sum().backward()
            worst = max(worst, relDiff(xg.grad!, xc.grad!))
            for ((pn, pc), (_, pg)) in zip(cpuLayer.namedParameters(), gpuLayer.namedParameters()) {
                guard let gc = pc.grad, let gg = pg.grad else {
                    print("  FAIL \(name): parameter \(pn) has no gradient on one device"); failed += 1; continue
                }
                worst = max(worst, relDiff(gg, gc))
            }
        } catch {
            print("  FAIL \(name): backward threw \(error)"); failed += 1; continue
        }
        let ok = worst < 1e-4
        if !ok { failed += 1 }
        print("  \(ok ? "ok  " : "FAIL") \(name): \(String(format: "%.2e", worst))")
    }
    // Embedding with a padding index: integer input, the padding row's gradient stays zero.
    do {
        Ember.manualSeed(13)
        let cpuLayer = Embedding(10, 4, paddingIndex: 2)
        Ember.manualSeed(13)
        let gpuLayer = Embedding(10, 4, paddingIndex: 2).to(gpu)
        let idx = Tensor([1, 2, 5, 2, 9, 0] as [Int], shape: [2, 3])
        let yc = cpuLayer(idx), yg = gpuLayer(idx.to(gpu))
        let up = Tensor.randn(yc.shape)
        var worst = relDiff(yg, yc)
        do {
            try (yc * up).sum().backward()
            try (yg * up.to(gpu)).sum().backward()
            worst = max(worst, relDiff(gpuLayer.weight.grad!, cpuLayer.weight.grad!))
            let padRow = gpuLayer.weight.grad![2].abs().sum().item()
            let ok = worst < 1e-4 && padRow == 0
            if !ok { failed += 1 }
            print("  \(ok ? "ok  " : "FAIL") Embedding(10, 4, paddingIndex 2): \(String(format: "%.2e", worst)), padding row gradient \(padRow)")
        } catch {
            print("  FAIL Embedding: backward threw \(error)"); failed += 1
        }
    }
    return failed
}

// MARK: 4. training, GPU against CPU
func training() -> Int {
    var failed = 0
print("\n== 20 training steps: \(gpu) against cpu")
    for model in ["mlp", "cnn"] {
        Ember.manualSeed(21)
        let netC = model == "mlp" ? FashionModels.mlp() : FashionModels.cnn()
        Ember.manualSeed(21)
        let netG = (model == "mlp" ? FashionModels.mlp() : FashionModels.cnn()).to(gpu)
        let optC = Adam(netC.parameters(), lr: 1e-3), optG = Adam(netG.parameters(), lr: 1e-3)
        Ember.manualSeed(22)
        var worstLoss = 0.0
        for _ in 0..<20 {
            let x = model == "mlp" ? Tensor.randn([64, 784]) : Tensor.randn([64, 1, 28, 28])
            let y = Tensor.randint(0, 10, [64])
            let lc = crossEntropy(netC(x), y), lg = crossEntropy(netG(x.to(gpu)), y.to(gpu))
            worstLoss = max(worstLoss, abs(lc.item() - lg.item()))
            optC.zeroGrad(); optG.zeroGrad()
            try! lc.backward(); try! lg.backward()
            optC.step(); optG.step()
        }
        var worstParam = 0.0
        for (pc, pg) in zip(netC.parameters(), netG.parameters()) { worstParam = max(worstParam, maxDiff(pg, pc)) }
        let ok = worstLoss < 1e-3 && worstParam < 1e-3
        if !ok { failed += 1 }
        print("  \(ok ? "ok  " : "FAIL") \(model): max |loss difference| \(String(format: "%.2e", worstLoss)), max |parameter difference| \(String(format: "%.2e", worstParam))")
    }
    return failed
}

// MARK: 4b. NCCL on one GPU (a group of one: communicator, collectives, DDP step)
func ncclGroupOfOne() -> Int {
    var failed = 0
print("\n== NCCL on \(gpu)")
    do {
        let g = try Distributed.initProcessGroup(backend: .nccl, timeout: 60)
        let t = Tensor.arange(0, 10, dtype: .float32).to(gpu)
        try g.allReduce(t)
        try g.broadcast(t, from: 0)
        let parts = try g.allGather(t)
        let ok = t.to(.cpu).toArray(Float.self) == (0..<10).map(Float.init) && parts.count == 1
        Ember.manualSeed(31)
        let net = FashionModels.mlp().to(gpu)
        let ddp = try DistributedDataParallel(net, group: g)
        try crossEntropy(ddp(Tensor.randn([8, 784]).to(gpu)), Tensor.randint(0, 10, [8]).to(gpu)).backward()
        let grads = net.parameters().allSatisfy { $0.grad != nil }
        if !(ok && grads) { failed += 1 }
        print("  \(ok && grads ? "ok  " : "FAIL") \(g.backendName): allReduce/broadcast/allGather and a DDP backward")
        try Distributed.destroyProcessGroup()
    } catch {
        print("  skipped or failed: \(error)")
        if !"\(error)".contains("not found") { failed += 1 }
    }
    return failed
}

// MARK: 5. speed
func speed() -> Int {
    print("\n== speed on \(Ember.CUDA.name(0))")
    // SGEMM through Ember (matmul) against the same cuBLAS call made directly.
    for n in [1024, 4096, 8192] {
        let a = Tensor.randn([n, n], device: gpu), b = Tensor.randn([n, n], device: gpu)
        _ = a.matmul(b); Ember.CUDA.synchronize()
        let reps = n >= 8192 ? 5 : 20
        let emberMs = Ember.CUDA.time { for _ in 0..<reps { _ = a.matmul(b) } } / Double(reps)
        let out = Tensor.empty([n, n], device: gpu)
        let directMs = Ember.CUDA.time { for _ in 0..<reps { CUDADirect.sgemm(a, b, out) } } / Double(reps)
        let tflops = { (ms: Double) in 2 * Double(n) * Double(n) * Double(n) / (ms / 1000) / 1e12 }
        print(String(format: "  sgemm %5d: Ember %.3f ms (%.1f TFLOPS), cuBLAS direct %.3f ms (%.1f TFLOPS): %.1f %% of direct",
                     n, emberMs, tflops(emberMs), directMs, tflops(directMs), directMs / emberMs * 100))
    }
    // One epoch on synthetic Fashion-MNIST-shaped data, Ember against PyTorch.
    func emberEpoch(_ model: String) -> Double {
        Ember.manualSeed(0)
        let net = (model == "mlp" ? FashionModels.mlp() : FashionModels.cnn()).to(gpu)
        let opt = Adam(net.parameters(), lr: 1e-3)
        let images = model == "mlp" ? Tensor.randn([60_000, 784], device: gpu) : Tensor.randn([60_000, 1, 28, 28], device: gpu)
        let labels = Tensor.randint(0, 10, [60_000]).to(gpu)
        func step(_ i: Int) {
            let lo = i * 64, hi = min(60_000, lo + 64)
            let loss = crossEntropy(net(images[lo..<hi]), labels[lo..<hi])
            opt.zeroGrad()
            try! loss.backward()
            opt.step()
        }
        for i in 0..<5 { step(i) }
        Ember.CUDA.synchronize()
        let t0 = Date()
        for i in 0..<938 { step(i) }
        Ember.CUDA.synchronize()
        return Date().timeIntervalSince(t0)
    }
    func torchEpoch(_ model: String) -> Double? { pythonNumbers(["epoch", model])?.first }
    // The MLP fed from host memory through the DataLoader (pinned, non-blocking), both sides.
    let fedEmber = try? fedEpoch(steps: 938)
    let fedTorch = pythonNumbers(["fed"])?.first
    print(String(format: "  mlp epoch fed by a DataLoader (2 workers, pinned, non-blocking copies): Ember %@, PyTorch %@: ratio %@",
                 fedEmber.map { String(format: "%.2f s", $0) } ?? "failed", fedTorch.map { String(format: "%.2f s", $0) } ?? "unavailable",
                 fedEmber.flatMap { e in fedTorch.map { String(format: "%.2f", e / $0) } } ?? "-"))
    for model in ["mlp", "cnn"] {
        let e = emberEpoch(model)
        let t = torchEpoch(model)
        print(String(format: "  %@ epoch (938 steps, batch 64): Ember %.2f s, PyTorch %@: ratio %@", model, e,
                     t.map { String(format: "%.2f s", $0) } ?? "unavailable", t.map { String(format: "%.2f", e / $0) } ?? "-"))
    }
    return 0
}

// MARK: 5a. an MLP epoch fed from host memory: DataLoader workers, pinned batches, copies that do not wait
/// Seconds for `steps` steps of the MLP on batches of 64 gathered by 2 DataLoader workers
/// from a host data set, in pinned memory, copied to the GPU without waiting.
func fedEpoch(steps: Int) throws -> Double {
    Ember.manualSeed(0)
    let net = FashionModels.mlp().to(gpu)
    let opt = Adam(net.parameters(), lr: 1e-3)
    let n = steps * 64
    let images = Tensor.randn([n, 784]), labels = Tensor.randint(0, 10, [n])
    let loader = DataLoader(count: n, batchSize: 64, shuffle: true, numWorkers: 2, seed: 1, pinMemory: gpu != .cpu) { idx in
        let i = Tensor(idx)
        return (images.indexSelect(0, i), labels.indexSelect(0, i))
    }
    func sync() { if gpu != .cpu { Ember.CUDA.synchronize() } }
    var t0 = Date()
    var step = 0
    try loader.forEach { (x, y) in
        if step == 5 { sync(); t0 = Date() }  // after warm-up
        let loss = crossEntropy(net(x.to(gpu, nonBlocking: true)), y.to(gpu, nonBlocking: true))
        opt.zeroGrad()
        try loss.backward()
        opt.step()
        step += 1
    }
    sync()
    return Date().timeIntervalSince(t0) * Double(steps) / Double(max(steps - 5, 1))
}

// MARK: 5b. per-op cost of small ops (host overhead and launch), against PyTorch CUDA
func overhead(torch: Bool) -> Int {
    print("\n== per-op cost of small ops on \(gpu) (4 elements: host work and launch, not arithmetic)")
    let a = Tensor.randn([4]).to(gpu), b = Tensor.randn([4]).to(gpu)
    let x = Tensor.randn([4]).to(gpu).requiringGrad()
    func sync() { if gpu != .cpu { Ember.CUDA.synchronize() } }
    for _ in 0..<500 { _ = a + b }
    for _ in 0..<50 { try! (x * a + b).sum().backward(); x.grad = nil }  // kernels compiled and cached
    sync()
    let n = 20_000
    var t0 = Date()
    for _ in 0..<n { _ = a + b }
    let queued = Date().timeIntervalSince(t0)
    sync()
    let addUs = Date().timeIntervalSince(t0) / Double(n) * 1e6
    t0 = Date()
    for _ in 0..<(n / 10) {
        let y = (x * a + b).sum()
        try! y.backward()
        x.grad = nil
    }
    sync()
    // forward: mul, add, sum; backward: about 4 more kernels
    let chainUs = Date().timeIntervalSince(t0) / Double(n / 10) * 1e6
    print(String(format: "  add: %.2f µs per op (%.2f µs to queue); forward+backward of (x*a+b).sum(): %.1f µs", addUs, queued / Double(n) * 1e6, chainUs))
    guard torch else { return 0 }
    guard let v = pythonNumbers(["overhead"]), v.count == 2 else { print("  PyTorch: unavailable"); return 0 }
    print(String(format: "  PyTorch CUDA: add %.2f µs, forward+backward %.1f µs; ratio Ember/PyTorch: add %.2f, forward+backward %.2f",
                 v[0], v[1], addUs / v[0], chainUs / v[1]))
    return 0
}

// MARK: orchestration
// Each part runs in a child process of this same program, so that a crash (a bad kernel, a
// driver error) costs only that part and one run on a lent GPU reports everything.
if let section = option("--section") {
    let n: Int
    switch section {
    case "fixtures":
        // One key, a comma-separated list of keys, or every case.
        if let keys = option("--op")?.split(separator: ",").map(String.init) {
            n = keys.reduce(0) { $0 + fixtures(only: $1) }
        } else {
            n = fixtures(only: nil)
        }
    case "layers": n = layers()
    case "training": n = training()
    case "nccl": n = ncclGroupOfOne()
    case "speed": n = speed()
    case "overhead": n = overhead(torch: args.contains("--torch"))
    case "fed":  // a short fed run, for trying the path without the whole speed section
        do { print(String(format: "fed MLP: %.2f s for 60 steps", try fedEpoch(steps: 60))); n = 0 } catch { print("FAIL fed: \(error)"); n = 1 }
    default: print("unknown section \(section)"); n = 1
    }
    exit(n == 0 ? 0 : 1)
}

func child(_ extra: [String], timeout: Double) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Bundle.main.executablePath ?? args[0])
    p.arguments = ["--fixtures", fixturesPath, "--python", python, "--twin", twinScript] + (dryRun ? ["--device", "cpu"] : []) + extra
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    final class Box: @unchecked Sendable { var data = Data() }
    let box = Box()
    let reader = Thread { box.data = pipe.fileHandleForReading.readDataToEndOfFile() }
    do { try p.run() } catch { return (-1, "cannot start: \(error)") }
    reader.start()
    let start = Date()
    while p.isRunning && Date().timeIntervalSince(start) < timeout { usleep(50_000) }
    if p.isRunning { p.terminate(); usleep(500_000); if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    p.waitUntilExit()
    while reader.isExecuting { usleep(10_000) }
    let text = String(decoding: box.data, as: UTF8.self)
    return (p.terminationReason == .uncaughtSignal ? -p.terminationStatus : p.terminationStatus, text)
}

func report(_ what: String, _ r: (status: Int32, output: String), echo: Bool = true) {
    if echo { print(r.output, terminator: r.output.hasSuffix("\n") || r.output.isEmpty ? "" : "\n") }
    if r.status != 0 { failed += 1 }
    if r.status < 0 || r.status > 1 {
        print("  CRASH \(what) (status \(r.status)); its last lines:")
        for l in r.output.split(separator: "\n").suffix(12) { print("    \(l)") }
    }
}

// Ops run in batches, one child process per batch (a process reads the fixtures once); a
// batch that crashes runs again one op per child, so the report names the op.
print("\n== op fixtures on \(gpu) (\(fixturesPath)), in batches of child processes")
if let core = try? Fixtures(url: URL(fileURLWithPath: fixturesPath)).cases, let opInfoOps = try? OpInfoFixtures.opNames(besides: fixturesPath) {
    var ops: [String] = []
    var seen = Set<String>()
    for c in core where seen.insert(c.op).inserted { ops.append(c.op) }
    if !args.contains("--core-only") { ops += opInfoOps.map { "opinfo:" + $0 } }
    var passed = 0, total = 0
    /// Adds the FIXTURES lines of a child's output; returns the keys it reported.
    func count(_ output: String) -> Set<String> {
        var reported = Set<String>()
        for line in output.split(separator: "\n") where line.hasPrefix("FIXTURES ") {
            let parts = line.split(separator: " ")
            let counts = parts.last?.split(separator: "/")
            if parts.count == 3, let counts, counts.count == 2, let a = Int(counts[0]), let b = Int(counts[1]) {
                passed += a
                total += b
                reported.insert(String(parts[1]))
            }
        }
        return reported
    }
    // The batches run side by side, one child per core (each child is one process reading
    // the fixtures once); counts and reports are taken under a lock.
    let batch = 24
    let batches = stride(from: 0, to: ops.count, by: batch).map { Array(ops[$0..<min($0 + batch, ops.count)]) }
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: batches.count) { b in
        let keys = batches[b]
        let r = child(["--section", "fixtures", "--op", keys.joined(separator: ",")], timeout: 1200)
        if r.status == 0 || r.status == 1 {
            lock.lock(); defer { lock.unlock() }
            _ = count(r.output)
            if r.status != 0 { report("fixtures of \(keys.first!)…\(keys.last!)", r) }
            return
        }
        for key in keys {
            let one = child(["--section", "fixtures", "--op", key], timeout: 600)
            lock.lock()
            if !count(one.output).contains(key) { total += 1 }
            if one.status != 0 { report("fixtures of \(key)", one) }
            lock.unlock()
        }
    }
    print("op fixtures: \(passed) of \(total) cases pass on \(gpu)")
} else {
    print("FAIL: cannot read \(fixturesPath)"); failed += 1
}
report("layers", child(["--section", "layers"], timeout: 600))
report("training", child(["--section", "training"], timeout: 600))
if !dryRun { report("nccl", child(["--section", "nccl"], timeout: 300)) }
let emulated = !dryRun && Ember.CUDA.name(0).contains("emulator")
report("overhead", child(["--section", "overhead"] + (runBench && !dryRun && !emulated ? ["--torch"] : []), timeout: 300))
if runBench && !dryRun { report("speed", child(["--section", "speed"], timeout: 900)) }

print("\n== \(failed == 0 ? "all GPU checks passed" : "\(failed) GPU check part(s) failed")")
exit(failed == 0 ? 0 : 1)
