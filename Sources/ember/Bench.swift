import ArgumentParser
import Dispatch
import Ember
import EmberCPU
import Foundation

/// Micro-benchmarks, each run in Ember and then in its PyTorch twin (same machine, same
/// threads, interleaved case by case) when a Python with torch is found.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time Ember against PyTorch (per-op overhead, elementwise, softmax, SGEMM).")

    @Option(help: "Python interpreter for the PyTorch twin (default: $EMBER_BENCH_PYTHON or python3).")
    var python: String?
    @Flag(help: "Skip the PyTorch twin.") var noTorch = false
    @Option(help: "Threads for both sides (default: all cores).") var threads: Int?
    @Option(help: "Repetitions of each case per round; the median over all rounds is reported.") var repeats = 7
    @Option(help: "Rounds that alternate Ember and PyTorch for each short case (the machine's drift then hits both sides).")
    var rounds = 3
    @Option(help: "Run only the cases whose name contains this text.") var only: String?
    var peak = 0.0

    enum CodingKeys: String, CodingKey { case python, noTorch, threads, repeats, rounds, only }

    mutating func run() throws {
        if let threads { Ember.setNumThreads(threads) }
        let twin = noTorch ? nil : TorchTwin(python: python ?? ProcessInfo.processInfo.environment["EMBER_BENCH_PYTHON"] ?? "python3",
                                             threads: Ember.numThreads)
        if twin == nil && !noTorch {
            print(TorchTwin.scriptPath == nil ? "(Scripts/bench_twin.py not found: run from the repository; Ember timings only)"
                                              : "(no Python with torch found: Ember timings only)")
        }
        let peak = GEMM.measuredPeakGFLOPS()
        _ = BLAS.shared
        print("threads: \(Ember.numThreads); CPU kernels \(CPUFeatures.active) (GEMM \(GEMM.microKernelISA)); BLAS: \(BLAS.status)")
        print(String(format: "measured float32 FMA peak: %.1f GFLOPS per core, %.1f on %d threads", peak, peak * Double(Ember.numThreads), Ember.numThreads))
        self.peak = peak
        print(pad("case", 34) + pad("ember", 12) + pad("torch", 12) + "ratio (ember/torch; < 1 = Ember faster)")
        if only.map({ "loader_rss".contains($0) || $0.contains("loader_rss") }) ?? true {
            memoryReport(twin)
        }
        for c in cases() where only.map({ c.name.contains($0) }) ?? true {
            let reps = c.repeats ?? repeats
            // Short cases alternate sides for several rounds, so that a slow spell of the
            // machine (a shared VM's cores come and go) falls on both; long ones run once.
            let caseRounds = twin != nil && (c.repeats ?? 2) > 1 ? max(1, rounds) : 1
            let body = c.setup()
            var mine: [Double] = [], theirs: [Double] = [], roundRatios: [Double] = []
            for _ in 0..<caseRounds {
                // The twin's OpenMP threads busy-wait for a while after each of its cases (and
                // Ember's pool workers for 200 µs): let the other side go idle before timing.
                if twin != nil { usleep(300_000) }
                let e = measure(c.iterations, reps, body)
                mine += e.samples
                if twin != nil { usleep(300_000) }
                if let t = twin?.times(c.name, iterations: c.iterations, repeats: reps), !t.isEmpty {
                    theirs += t
                    roundRatios.append(median(e.samples) / median(t))
                }
            }
            let e = median(mine), t = theirs.isEmpty ? nil : median(theirs)
            let ratio = t.map { String(format: "%.2f", e / $0) } ?? "-"
            let spread = roundRatios.count > 1
                ? String(format: "  rounds %.2f–%.2f", roundRatios.min()!, roundRatios.max()!) : ""
            print(pad(c.name, 34) + pad(fmt(e), 12) + pad(t.map(fmt) ?? "-", 12) + ratio
                  + "   [ember min \(fmt(mine.min()!)) max \(fmt(mine.max()!))\(spread)]" + (c.extra.map { "  " + $0(e) } ?? ""))
        }
    }

    struct Case {
        let name: String
        let iterations: Int
        /// Builds the inputs and returns the timed body (built only when the case runs).
        let setup: () -> () -> Void
        var extra: ((Double) -> String)? = nil
        /// Repetitions for long cases (nil = the command's `--repeats`).
        var repeats: Int? = nil
    }

    func cases() -> [Case] {
        var list: [Case] = []
        list.append(Case(name: "add_4 (alloc + 4-element add)", iterations: 20000, setup: {
            let a = Tensor.randn([4]), b = Tensor.randn([4])
            return { _ = a + b }
        }))
        list.append(Case(name: "fwd+bwd (a*b+c).sum()", iterations: 5000, setup: {
            let a = Tensor.randn([4], requiresGrad: true), b = Tensor.randn([4], requiresGrad: true)
            let c = Tensor.randn([4], requiresGrad: true)
            return { try! (a * b + c).sum().backward() }
        }, extra: { String(format: "%.2f µs per op (3 ops)", $0 * 1e6 / 3) }))
        for n in [1 << 20, 1 << 24] {
            let iterations = n > 1 << 20 ? 5 : 50
            list.append(Case(name: "add_\(n >> 20)M", iterations: iterations, setup: {
                let x = Tensor.randn([n]), y = Tensor.randn([n])
                return { _ = x + y }
            }, extra: { String(format: "%.1f GB/s", Double(3 * 4 * n) / $0 / 1e9) }))
            list.append(Case(name: "relu_\(n >> 20)M", iterations: iterations, setup: {
                let x = Tensor.randn([n])
                return { _ = x.relu() }
            }, extra: { String(format: "%.1f GB/s", Double(2 * 4 * n) / $0 / 1e9) }))
        }
        list.append(Case(name: "softmax_64x1000", iterations: 200, setup: {
            let logits = Tensor.randn([64, 1000])
            return { _ = logits.softmax(dim: 1) }
        }))
        let peak = self.peak
        for n in [128, 256, 512, 1024, 2048] {
            for single in [false, true] {
                let threads = single ? 1 : Ember.numThreads
                list.append(Case(name: "sgemm_\(n)" + (single ? "_1t" : ""), iterations: max(1, 200_000_000 / (n * n * n)), setup: {
                    let x = Tensor.randn([n, n]), y = Tensor.randn([n, n])
                    return {
                        let saved = Ember.numThreads
                        Ember.setNumThreads(threads)
                        _ = x.matmul(y)
                        Ember.setNumThreads(saved)
                    }
                }, extra: {
                    let g = 2 * Double(n * n * n) / $0 / 1e9
                    return String(format: "%.1f GFLOPS, %.0f%% of peak", g, 100 * g / (peak * Double(threads)))
                }, repeats: n >= 2048 ? 3 : nil))
            }
        }
        for (name, c, o, hw) in [("conv1", 1, 32, 28), ("conv2", 32, 64, 14)] {
            list.append(Case(name: "\(name)_fwd", iterations: 10, setup: {
                let x = Tensor.randn([64, c, hw, hw]), w = Tensor.randn([o, c, 3, 3]), b = Tensor.randn([o])
                return { _ = conv2d(x, w, b, padding: .explicit(1, 1)) }
            }))
            list.append(Case(name: "\(name)_fwdbwd", iterations: 5, setup: {
                let x = Tensor.randn([64, c, hw, hw], requiresGrad: true), w = Tensor.randn([o, c, 3, 3], requiresGrad: true)
                let b = Tensor.randn([o], requiresGrad: true)
                return { try! conv2d(x, w, b, padding: .explicit(1, 1)).sum().backward() }
            }))
        }
        // The op families of PyTorch's surface: sorting, selection, scans, distances.
        list.append(Case(name: "sort_1M", iterations: 5, setup: {
            let x = Tensor.randn([1 << 20])
            return { _ = x.sort() }
        }))
        list.append(Case(name: "sort_rows_1024x1024", iterations: 5, setup: {
            let x = Tensor.randn([1024, 1024])
            return { _ = x.sort(dim: 1) }
        }))
        list.append(Case(name: "topk_64x50000_k10", iterations: 5, setup: {
            let x = Tensor.randn([64, 50000])
            return { _ = x.topk(10, dim: 1) }
        }))
        list.append(Case(name: "cumsum_1M", iterations: 20, setup: {
            let x = Tensor.randn([1 << 20])
            return { _ = x.cumsum(dim: 0) }
        }))
        list.append(Case(name: "cumsum_rows_1024x1024", iterations: 20, setup: {
            let x = Tensor.randn([1024, 1024])
            return { _ = x.cumsum(dim: 1) }
        }))
        list.append(Case(name: "einsum_attention_8x8x128x64", iterations: 10, setup: {
            let q = Tensor.randn([8, 8, 128, 64]), k = Tensor.randn([8, 8, 128, 64])
            return { _ = Tensor.einsum("bhqd,bhkd->bhqk", [q, k]) }
        }))
        list.append(Case(name: "cdist_1024x1024x64", iterations: 3, setup: {
            let a = Tensor.randn([1024, 64]), b = Tensor.randn([1024, 64])
            return { _ = Tensor.cdist(a, b) }
        }))
        list.append(Case(name: "interpolate_bilinear_8x32x64x64_to_128", iterations: 5, setup: {
            let x = Tensor.randn([8, 32, 64, 64])
            return { _ = interpolate(x, size: [128, 128], mode: .bilinear, alignCorners: false) }
        }))
        // The factorizations (float32, as PyTorch's default dtype).
        list.append(Case(name: "cholesky_512", iterations: 5, setup: {
            let x = Tensor.randn([512, 512])
            let a = x.matmul(x.mT) + Tensor.eye(512) * 512
            return { _ = Linalg.cholesky(a) }
        }))
        list.append(Case(name: "solve_512x512_rhs64", iterations: 5, setup: {
            let a = Tensor.randn([512, 512]) + Tensor.eye(512) * 16, b = Tensor.randn([512, 64])
            return { _ = Linalg.solve(a, b) }
        }))
        list.append(Case(name: "svd_256", iterations: 2, setup: {
            let a = Tensor.randn([256, 256])
            return { _ = Linalg.svd(a, fullMatrices: false) }
        }))
        list.append(Case(name: "cross_entropy_64x1000", iterations: 200, setup: {
            let logits = Tensor.randn([64, 1000]), target = Tensor.randint(0, 1000, [64])
            return { _ = crossEntropy(logits, target) }
        }))
        list.append(Case(name: "adam_step_1M", iterations: 20, setup: {
            let p = Tensor.randn([1 << 20], requiresGrad: true)
            p.grad = Tensor.randn([1 << 20])
            let opt = Adam([p], lr: 1e-3)
            return { opt.step() }
        }, extra: { String(format: "%.1f GB/s", Double(7 * 4 << 20) / $0 / 1e9) }))
        for workers in [0, 1, 2] {
            list.append(Case(name: "loader_epoch_w\(workers)", iterations: 1, setup: {
                let loader = augmentedLoader(workers: workers)
                return { try! loader.forEach { _ in } }
            }, extra: { String(format: "%.0f samples/s", 60000 / $0) }, repeats: 1))
        }
        for model in ["mlp", "cnn"] {
            list.append(Case(name: "train_\(model)_epoch", iterations: 1, setup: {
                let (x, y) = trainingData()
                return { trainEpoch(model, x, y) }
            }, extra: { String(format: "%.0f samples/s", 60000 / $0) }, repeats: 1))
        }
        return list
    }

    /// Resident memory of the augmented pipeline with 2 workers after epochs 1 and 10, for
    /// Ember (one process) and PyTorch (main process + worker processes).
    func memoryReport(_ twin: TorchTwin?) {
        let loader = augmentedLoader(workers: 2)
        var rss: [Double] = []
        for epoch in 1...10 {
            try! loader.forEach { _ in }
            if epoch == 1 || epoch == 10 { rss.append(Double(residentBytes()) / 1e6) }
        }
        var line = String(format: "loader_rss_w2 (MB)                ember %.0f → %.0f", rss[0], rss[1])
        if let t = twin?.query("rss\t0\t0") {
            let v = t.split(separator: " ").compactMap { Double($0) }
            if v.count == 4 {
                line += String(format: "   torch main %.0f → %.0f, workers %.0f → %.0f (summed RSS)", v[0], v[2], v[1], v[3])
            }
        }
        print(line)
    }

    /// A decode-heavy pipeline: uint8 → float, normalise, random crop (padding 4) and flip per
    /// sample, batches of 64 (the PyTorch twin builds the same with torch's DataLoader).
    func augmentedLoader(workers: Int) -> DataLoader<[Tensor], [Tensor]> {
        let images = (try? FashionMNIST(train: true))?.images ?? Tensor.randint(0, 256, [60000, 28, 28], dtype: .uint8)
        let labels = (try? FashionMNIST(train: true))?.labels ?? Tensor.randint(0, 10, [60000])
        let transform = Transforms.compose([Transforms.normalize(mean: [0.2860], std: [0.3530]),
                                            Transforms.randomCrop(size: 28, padding: 4), Transforms.randomHorizontalFlip()])
        let data = TensorDataset(images, labels).map { [transform(($0[0].to(.float32) / 255).unsqueeze(0)), $0[1]] }
        return DataLoader(data, batchSize: 64, shuffle: true, numWorkers: workers, seed: 0)
    }

    /// Fashion-MNIST's training set normalised like `ember train`, or random data of the same
    /// shape when the data set is not installed.
    func trainingData() -> (Tensor, Tensor) {
        if let d = try? FashionMNIST(train: true) {
            return ((d.images.to(.float32) / 255 - 0.2860) / 0.3530, d.labels)
        }
        return (Tensor.randn([60000, 28, 28]), Tensor.randint(0, 10, [60000]))
    }

    /// One epoch, batch 64, Adam(1e-3), fixed batch order (the PyTorch twin does the same).
    func trainEpoch(_ model: String, _ x: Tensor, _ y: Tensor) {
        Ember.manualSeed(0)
        let net = model == "mlp" ? FashionModels.mlp() : FashionModels.cnn()
        let opt = Adam(net.parameters(), lr: 1e-3)
        let n = x.shape[0]
        var i = 0
        while i < n {
            let m = Swift.min(64, n - i)
            var xb = x.narrow(0, start: i, length: m)
            if model == "cnn" { xb = xb.unsqueeze(1) }
            let loss = crossEntropy(net(xb), y.narrow(0, start: i, length: m))
            opt.zeroGrad()
            try! loss.backward()
            opt.step()
            i += m
        }
    }

    /// Median / min / max seconds per iteration over `repeats` runs (after a warm-up run).
    func measure(_ iterations: Int, _ repeats: Int, _ body: () -> Void) -> (median: Double, min: Double, max: Double, samples: [Double]) {
        if repeats > 1 { for _ in 0..<max(1, iterations / 10) { body() } }
        var times: [Double] = []
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { body() }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(iterations))
        }
        times.sort()
        return (times[times.count / 2], times.first!, times.last!, times)
    }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
}

func fmt(_ s: Double) -> String {
    if s < 1e-3 { return String(format: "%.2f µs", s * 1e6) }
    if s < 1 { return String(format: "%.2f ms", s * 1e3) }
    return String(format: "%.2f s", s)
}

func residentBytes() -> Int { Ember.residentMemoryBytes() }

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

/// A persistent Python process that times the PyTorch version of each case on request.
final class TorchTwin {
    let process = Process()
    let input = Pipe(), output = Pipe()

    init?(python: String, threads: Int) {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        guard let script = TorchTwin.scriptPath else { return nil }
        process.arguments = [python, script, String(threads)]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        guard readLine() == "ready" else { return nil }
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    private func readLine() -> String? {
        var bytes: [UInt8] = []
        while true {
            let d = output.fileHandleForReading.readData(ofLength: 1)
            if d.isEmpty { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if d[0] == 10 { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(d[0])
        }
    }

    /// The twin's per-repeat times (seconds per iteration) for one round of a case.
    func times(_ name: String, iterations: Int, repeats: Int) -> [Double]? {
        query("\(name)\t\(iterations)\t\(repeats)").map { $0.split(separator: " ").compactMap { Double($0) }.filter { !$0.isNaN } }
    }

    /// Sends one request line; returns the twin's answer line.
    func query(_ line: String) -> String? {
        input.fileHandleForWriting.write((line + "\n").data(using: .utf8)!)
        return readLine()
    }

    /// `Scripts/bench_twin.py`: next to this source file's repository, else under the
    /// current directory (nil when neither has it).
    static var scriptPath: String? {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [repo.appendingPathComponent("Scripts/bench_twin.py").path,
                          FileManager.default.currentDirectoryPath + "/Scripts/bench_twin.py"]
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}
