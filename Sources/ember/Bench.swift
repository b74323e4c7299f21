import ArgumentParser
import Dispatch
import Ember
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
    @Option(help: "Repetitions of each case; the median is reported.") var repeats = 7
    @Option(help: "Run only the cases whose name contains this text.") var only: String?

    func run() throws {
        if let threads { Ember.setNumThreads(threads) }
        let twin = noTorch ? nil : TorchTwin(python: python ?? ProcessInfo.processInfo.environment["EMBER_BENCH_PYTHON"] ?? "python3",
                                             threads: Ember.numThreads)
        if twin == nil && !noTorch { print("(no Python with torch found: Ember timings only)") }
        print("threads: \(Ember.numThreads)")
        print(pad("case", 34) + pad("ember", 12) + pad("torch", 12) + "ratio (ember/torch; < 1 = Ember faster)")
        for c in cases() where only.map({ c.name.contains($0) }) ?? true {
            let e = measure(c.iterations, c.setup())
            let t = twin?.time(c.name, iterations: c.iterations, repeats: repeats)
            let ratio = t.map { String(format: "%.2f", e.median / $0) } ?? "-"
            print(pad(c.name, 34) + pad(fmt(e.median), 12) + pad(t.map(fmt) ?? "-", 12) + ratio
                  + "   [ember min \(fmt(e.min)) max \(fmt(e.max))]" + (c.extra.map { "  " + $0(e.median) } ?? ""))
        }
    }

    struct Case {
        let name: String
        let iterations: Int
        /// Builds the inputs and returns the timed body (built only when the case runs).
        let setup: () -> () -> Void
        var extra: ((Double) -> String)? = nil
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
        for n in [128, 256, 512, 1024] {
            list.append(Case(name: "sgemm_\(n)", iterations: max(2, 200_000_000 / (n * n * n)), setup: {
                let x = Tensor.randn([n, n]), y = Tensor.randn([n, n])
                return { _ = x.matmul(y) }
            }, extra: { String(format: "%.1f GFLOPS", 2 * Double(n * n * n) / $0 / 1e9) }))
        }
        return list
    }

    /// Median / min / max seconds per iteration over `repeats` runs (after a warm-up run).
    func measure(_ iterations: Int, _ body: () -> Void) -> (median: Double, min: Double, max: Double) {
        for _ in 0..<max(1, iterations / 10) { body() }
        var times: [Double] = []
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { body() }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(iterations))
        }
        times.sort()
        return (times[times.count / 2], times.first!, times.last!)
    }
}

func fmt(_ s: Double) -> String {
    if s < 1e-3 { return String(format: "%.2f µs", s * 1e6) }
    if s < 1 { return String(format: "%.2f ms", s * 1e3) }
    return String(format: "%.2f s", s)
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

/// A persistent Python process that times the PyTorch version of each case on request.
final class TorchTwin {
    let process = Process()
    let input = Pipe(), output = Pipe()

    init?(python: String, threads: Int) {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", TorchTwin.script, String(threads)]
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

    func time(_ name: String, iterations: Int, repeats: Int) -> Double? {
        input.fileHandleForWriting.write("\(name)\t\(iterations)\t\(repeats)\n".data(using: .utf8)!)
        return readLine().flatMap(Double.init)
    }

    static let script = #"""
import sys, time
try:
    import torch
except Exception:
    sys.exit(1)
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
def cases(name):
    if name.startswith("add_4 "):
        a, b = torch.randn(4), torch.randn(4)
        return lambda: a + b
    if name.startswith("fwd+bwd"):
        a, b, c = (torch.randn(4, requires_grad=True) for _ in range(3))
        return lambda: (a * b + c).sum().backward()
    if name.startswith("add_") or name.startswith("relu_"):
        n = int(name.split("_")[1][:-1]) << 20
        x, y = torch.randn(n), torch.randn(n)
        return (lambda: x + y) if name.startswith("add_") else (lambda: x.relu())
    if name.startswith("softmax"):
        x = torch.randn(64, 1000)
        return lambda: x.softmax(1)
    if name.startswith("sgemm_"):
        n = int(name.split("_")[1])
        x, y = torch.randn(n, n), torch.randn(n, n)
        return lambda: x @ y
    return None
print("ready", flush=True)
for line in sys.stdin:
    name, iters, reps = line.rstrip("\n").split("\t")
    iters, reps = int(iters), int(reps)
    f = cases(name)
    if f is None:
        print("nan", flush=True); continue
    for _ in range(max(1, iters // 10)): f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters): f()
        ts.append((time.perf_counter() - t0) / iters)
    ts.sort()
    print(ts[len(ts) // 2], flush=True)
"""#
}
