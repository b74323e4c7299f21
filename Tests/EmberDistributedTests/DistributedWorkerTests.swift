import Ember
import Foundation
import XCTest

/// The rank side of the multi-process tests: `MPIHarness` starts this test under `mpirun`
/// with `EMBER_DIST_SCENARIO` set. Each scenario prints `EMBER-OK rank R` when every check
/// passed; a failed check prints `EMBER-FAIL …` and exits non-zero.
final class DistributedWorkerTests: XCTestCase {
    func testWorker() throws {
        guard let scenario = ProcessInfo.processInfo.environment["EMBER_DIST_SCENARIO"] else {
            throw XCTSkip("runs only as a rank started by the multi-process tests")
        }
        setvbuf(stdout, nil, _IOLBF, 0)
        let timeout = ProcessInfo.processInfo.environment["EMBER_DIST_TIMEOUT"].flatMap(Double.init) ?? 60
        let backend: Distributed.Backend = ProcessInfo.processInfo.environment["EMBER_DIST_BACKEND"] == "nccl" ? .nccl : .mpi
        let g = try Distributed.initProcessGroup(backend: backend, timeout: timeout)
        var failures: [String] = []
        func check(_ ok: Bool, _ what: @autoclosure () -> String) {
            if !ok { failures.append(what()); print("EMBER-FAIL rank \(g.rank): \(what())") }
        }
        switch scenario {
        case "collectives": try Scenarios.collectives(g, check)
        case "mismatch": try Scenarios.mismatch(g, check)
        case "ddp": try Scenarios.ddp(g, check)
        case "ddp-unused": try Scenarios.ddpUnused(g, check)
        case "nccl": try Scenarios.nccl(g, check)
        case "die":
            if g.rank == 1 { kill(getpid(), SIGKILL) }
            try g.allReduce(Tensor.ones([1000]))
            print("EMBER-UNEXPECTED rank \(g.rank) finished")
        case "hang":
            if g.rank == 1 { sleep(120) }
            do {
                try g.allReduce(Tensor.ones([1000]))
                print("EMBER-UNEXPECTED rank \(g.rank) finished")
            } catch let e as DistributedError {
                print("EMBER-TIMEOUT rank \(g.rank): \(e)")
                exit(3)
            }
        default: fatalError("unknown scenario \(scenario)")
        }
        try Distributed.destroyProcessGroup()
        if failures.isEmpty { print("EMBER-OK rank \(g.rank)") } else { exit(2) }
    }
}

enum Scenarios {
    typealias Check = (Bool, @autoclosure () -> String) -> Void

    static func values(_ t: Tensor) -> [Double] { t.to(.float64).contiguous().toArray(Double.self) }

    /// Every collective, for several dtypes, against values computed from the rank formula.
    static func collectives(_ g: ProcessGroup, _ check: Check) throws {
        let r = Double(g.rank), n = Double(g.worldSize)
        let ranks = (0..<g.worldSize).map(Double.init)
        check(g.backendName.hasPrefix("MPI"), "backend \(g.backendName)")
        print("EMBER-BACKEND rank \(g.rank): \(g.backendName)")
        for dtype in [DType.float32, .float64, .int32, .int64, .uint8, .float16, .bfloat16] {
            // x_r[i] = r + 1 + i (small, exact in every dtype)
            func make() -> Tensor { (Tensor.arange(6, dtype: .float64) + (r + 1)).to(dtype).reshape([2, 3]) }
            let sum: (Double) -> Double = { i in ranks.reduce(0) { $0 + $1 + 1 + i } }
            let prod: (Double) -> Double = { i in ranks.reduce(1) { $0 * ($1 + 1 + i) } }
            let avg: (Double) -> Double = { i in sum(i) / n }
            var ops: [(Distributed.ReduceOp, (Double) -> Double)] = [(.sum, sum), (.max, { i in n + i }), (.min, { i in 1 + i }), (.product, prod)]
            if dtype.isFloatingPoint { ops.append((.avg, avg)) }
            for (op, want) in ops {
                if dtype == .uint8 && op == .product { continue }
                let t = make()
                try g.allReduce(t, op: op)
                let expected = (0..<6).map { want(Double($0)) }
                let got = values(t)
                let tol = dtype == .bfloat16 ? 0.02 : (dtype == .float16 ? 0.002 : 1e-9)
                check(zip(got, expected).allSatisfy { abs($0 - $1) <= tol * max(1, abs($1)) },
                      "allReduce \(op) \(dtype): \(got) vs \(expected)")
                check(t.dtype == dtype && t.shape == [2, 3], "allReduce \(op) \(dtype) kept dtype/shape")
            }
            // broadcast from the last rank
            let b = make()
            try g.broadcast(b, from: g.worldSize - 1)
            check(values(b) == (0..<6).map { n + Double($0) }, "broadcast \(dtype): \(values(b))")
            // allGather
            let parts = try g.allGather(make())
            check(parts.count == g.worldSize, "allGather count")
            for (k, p) in parts.enumerated() {
                check(p.shape == [2, 3] && values(p) == (0..<6).map { Double(k) + 1 + Double($0) }, "allGather \(dtype) part \(k): \(values(p))")
            }
            // reduceScatter: input row k = k*10 + r
            if dtype != .uint8 || g.worldSize <= 3 {
                let input = (Tensor.arange(g.worldSize * 2, dtype: .float64).reshape([g.worldSize, 2]) * 10 + r).to(dtype)
                let out = try g.reduceScatter(input, op: .sum)
                let want = (0..<2).map { j in ranks.reduce(0) { $0 + Double((g.rank * 2 + j) * 10) + $1 } }
                check(out.shape == [1, 2] && values(out) == want, "reduceScatter \(dtype): \(values(out)) vs \(want)")
            }
        }
        // Bool: any / all through max / min.
        let flag = Tensor([g.rank == 0, true, false])
        try g.allReduce(flag, op: .max)
        check(flag.toArray(Bool.self) == [true, true, false], "allReduce bool max")
        // A non-contiguous tensor is written back through its view.
        let base = Tensor.ones([3, 4])
        let tview = base.t()
        try g.allReduce(tview)
        check(values(base).allSatisfy { $0 == n }, "allReduce of a transposed view")
        // Several collectives in flight at once complete in order.
        let many = (0..<8).map { k in Tensor.full([1000], Double(k)) }
        let works = many.map { g.allReduceAsync($0, op: .sum) }
        for w in works { try w.wait() }
        for (k, t) in many.enumerated() { check(values(t).allSatisfy { $0 == Double(k) * n }, "async allReduce \(k)") }
        // A large buffer (4M floats).
        let big = Tensor.full([1 << 22], r + 1)
        try g.allReduce(big)
        check(values(big[0..<1])[0] == ranks.reduce(0) { $0 + $1 + 1 } && values(big[(1 << 22) - 1..<(1 << 22)])[0] == ranks.reduce(0) { $0 + $1 + 1 }, "large allReduce")
        // Ring send/recv: both directions posted before waiting, so no rank blocks another.
        let next = (g.rank + 1) % g.worldSize, prev = (g.rank + g.worldSize - 1) % g.worldSize
        let out = Tensor.full([5, 5], r, dtype: .float64)
        let inbox = Tensor.zeros([5, 5], dtype: .float64)
        let s = g.sendAsync(out, to: next, tag: 7)
        let rv = g.recvAsync(inbox, from: prev, tag: 7)
        try s.wait(); try rv.wait()
        check(values(inbox).allSatisfy { $0 == Double(prev) }, "ring recv from \(prev): \(values(inbox).prefix(3))")
        // The same ring as one batch, receives listed first, two dtypes, a transposed view.
        let ints = Tensor.full([4], r, dtype: .int64), intsIn = Tensor.zeros([4], dtype: .int64)
        let halves = Tensor.arange(6, dtype: .float64).reshape([2, 3]).to(.float16) + r
        let halvesBase = Tensor.zeros([3, 2], dtype: .float16)
        let batch = g.batchIsendIrecv([.recv(intsIn, from: prev, tag: 3), .recv(halvesBase.t(), from: prev, tag: 4),
                                       .send(ints, to: next, tag: 3), .send(halves, to: next, tag: 4)])
        check(batch.count == 4, "batchIsendIrecv returns one work per operation")
        for w in batch { try w.wait() }
        check(values(intsIn) == [Double](repeating: Double(prev), count: 4), "batch ring int64 from \(prev): \(values(intsIn))")
        check(values(halvesBase.t()) == (0..<6).map { Double($0) + Double(prev) }, "batch ring float16 into a view: \(values(halvesBase.t()))")
        try g.barrier()
    }

    /// Ranks pass different shapes: every rank gets the same error listing each rank's call.
    static func mismatch(_ g: ProcessGroup, _ check: Check) throws {
        let t = g.rank == 0 ? Tensor.ones([4, 3]) : Tensor.ones([5])
        do {
            try g.allReduce(t)
            check(false, "mismatched allReduce did not throw")
        } catch let e as DistributedError {
            let m = "\(e)"
            print("EMBER-MISMATCH rank \(g.rank): \(m)")
            check(m.contains("rank 0: allReduce(sum) float32 [4, 3]") && m.contains("rank 1: allReduce(sum) float32 [5]"), "message: \(m)")
        }
        // The group still works afterwards.
        let ok = Tensor.ones([2])
        try g.allReduce(ok)
        check(values(ok) == [Double(g.worldSize), Double(g.worldSize)], "allReduce after a mismatch")
        // DDP refuses models that differ across ranks.
        let model = g.rank == 0 ? Sequential([Linear(4, 3)]) : Sequential([Linear(4, 2)])
        do {
            _ = try DistributedDataParallel(model, group: g)
            check(false, "DDP accepted different models")
        } catch let e as DistributedError {
            let m = "\(e)"
            print("EMBER-MISMATCH rank \(g.rank): \(m)")
            check(m.contains("rank 0: 0.weight float32 [3, 4]") && m.contains("rank 1: 0.weight float32 [2, 4]"), "DDP message: \(m)")
        }
    }

    /// NCCL on CUDA tensors: collectives for several dtypes, then DDP on the GPU against one
    /// process with the whole batch.
    static func nccl(_ g: ProcessGroup, _ check: Check) throws {
        let dev = g.device, r = Double(g.rank), n = Double(g.worldSize)
        check(g.backendName.hasPrefix("NCCL") && dev != .cpu, "backend \(g.backendName) on \(dev)")
        print("EMBER-BACKEND rank \(g.rank): \(g.backendName) on \(dev)")
        let ranks = (0..<g.worldSize).map(Double.init)
        for dtype in [DType.float32, .float64, .int64, .int32, .float16, .bfloat16] {
            func make() -> Tensor { (Tensor.arange(6, dtype: .float64) + (r + 1)).to(dtype).reshape([2, 3]).to(dev) }
            let sum = (0..<6).map { i in ranks.reduce(0) { $0 + $1 + 1 + Double(i) } }
            for (op, want) in [(Distributed.ReduceOp.sum, sum), (.max, (0..<6).map { n + Double($0) }), (.min, (0..<6).map { 1 + Double($0) })] {
                let t = make()
                try g.allReduce(t, op: op)
                check(t.device == dev && values(t) == want, "allReduce \(op) \(dtype): \(values(t)) vs \(want)")
            }
            let b = make()
            try g.broadcast(b, from: g.worldSize - 1)
            check(values(b) == (0..<6).map { n + Double($0) }, "broadcast \(dtype): \(values(b))")
            let parts = try g.allGather(make())
            for (k, p) in parts.enumerated() {
                check(p.device == dev && values(p) == (0..<6).map { Double(k) + 1 + Double($0) }, "allGather \(dtype) part \(k): \(values(p))")
            }
            let input = (Tensor.arange(g.worldSize * 2, dtype: .float64).reshape([g.worldSize, 2]) * 10 + r).to(dtype).to(dev)
            let out = try g.reduceScatter(input, op: .sum)
            let want = (0..<2).map { j in ranks.reduce(0) { $0 + Double((g.rank * 2 + j) * 10) + $1 } }
            check(values(out) == want, "reduceScatter \(dtype): \(values(out)) vs \(want)")
        }
        let avg = Tensor.full([3], r, device: dev)
        try g.allReduce(avg, op: .avg)
        check(values(avg).allSatisfy { $0 == ranks.reduce(0, +) / n }, "allReduce avg: \(values(avg))")
        // Larger than one transfer slot of the emulator (and than NCCL's default chunk).
        let big = Tensor.full([3 << 20], r + 1, device: dev)
        try g.allReduce(big)
        let total = ranks.reduce(0) { $0 + $1 + 1 }
        check(values(big[0..<1])[0] == total && values(big[((3 << 20) - 1)...])[0] == total, "large allReduce")

        try pointToPointOnDevice(g, check)
        try collectivesOnAUserStream(g, check)

        // DDP on the GPU: W ranks × batch B against one process with batch W·B.
        let B = 8, W = g.worldSize
        Ember.manualSeed(123)
        let xs = Tensor.randn([5, W * B, 20]).to(dev), ys = Tensor.randint(0, 5, [5, W * B]).to(dev)
        let ref = makeModel(seed: 7).to(dev)
        let refOpt = SGD(ref.parameters(), lr: 0.1, momentum: 0.9)
        for s in 0..<5 {
            refOpt.zeroGrad()
            try crossEntropy(ref(xs[s]), ys[s]).backward()
            refOpt.step()
        }
        let model = makeModel(seed: 7 + UInt64(g.rank) * 1000).to(dev)
        let ddp = try DistributedDataParallel(model, group: g, bucketCapMB: 0.002)
        let opt = SGD(model.parameters(), lr: 0.1, momentum: 0.9)
        for s in 0..<5 {
            opt.zeroGrad()
            try crossEntropy(ddp(xs[s][(g.rank * B)..<((g.rank + 1) * B)]), ys[s][(g.rank * B)..<((g.rank + 1) * B)]).backward()
            opt.step()
        }
        var worst = 0.0
        for (p, q) in zip(model.parameters(), ref.parameters()) { worst = max(worst, (p - q).abs().max().item()) }
        check(worst < 1e-5, "GPU DDP differs from the single process by \(worst)")
        print("EMBER-DDP rank \(g.rank): max |ddp - single| = \(worst)")
        try g.barrier()
    }

    /// Send and receive on the group's device: a ring as one batch (every rank sends before
    /// it receives, which only a batch allows on NCCL), messages larger than one transfer
    /// chunk, two messages to one peer matched in order, and a request/answer between ranks
    /// 0 and 1 with plain send/recv.
    static func pointToPointOnDevice(_ g: ProcessGroup, _ check: Check) throws {
        let dev = g.device, r = Double(g.rank), W = g.worldSize
        let next = (g.rank + 1) % W, prev = (g.rank + W - 1) % W
        let big = Tensor.full([3 << 18], r + 1, device: dev)  // 3 MB
        let bigIn = Tensor.zeros([3 << 18], device: dev)
        let first = (Tensor.arange(5, dtype: .float64) + r).to(dev), firstIn = Tensor.zeros([5], dtype: .float64, device: dev)
        let second = Tensor.full([2, 2], r * 10, dtype: .int32, device: dev), secondIn = Tensor.zeros([2, 2], dtype: .int32, device: dev)
        let works = g.batchIsendIrecv([.send(big, to: next), .send(first, to: next), .send(second, to: next),
                                       .recv(bigIn, from: prev), .recv(firstIn, from: prev), .recv(secondIn, from: prev)])
        for w in works { try w.wait() }
        let bigValues = values(bigIn)
        check(bigIn.device == dev && bigValues.allSatisfy { $0 == Double(prev) + 1 }, "batch ring, 3 MB from \(prev): \(bigValues.prefix(3)) … \(bigValues.suffix(3))")
        check(values(firstIn) == (0..<5).map { Double($0) + Double(prev) }, "batch ring, first message from \(prev): \(values(firstIn))")
        check(values(secondIn) == [Double](repeating: Double(prev) * 10, count: 4), "batch ring, second message from \(prev): \(values(secondIn))")
        // Request and answer: rank 0 sends, rank 1 receives, doubles and sends back.
        let q = Tensor.zeros([3, 4], device: dev)
        if g.rank == 0 {
            let request = Tensor.arange(12, dtype: .float32).reshape([3, 4]).to(dev)
            try g.send(request, to: 1)
            try g.recv(q.t(), from: 1)  // into a transposed view
            check(values(q.t().contiguous()) == (0..<12).map { Double($0) * 2 }, "answer from rank 1: \(values(q.t().contiguous()))")
        } else if g.rank == 1 {
            try g.recv(q, from: 0)
            check(values(q) == (0..<12).map(Double.init), "request from rank 0: \(values(q))")
            try g.send(q * 2, to: 0)
        }
        print("EMBER-P2P rank \(g.rank): ring batch and request/answer on \(dev)")
    }

    /// Tensors made on a user stream: the collective waits for that stream's work, and its
    /// own work (averaging, the copy back into a view) is queued there, before the caller's next.
    static func collectivesOnAUserStream(_ g: ProcessGroup, _ check: Check) throws {
        guard case .cuda(let index) = g.device else { return }
        let r = Double(g.rank), n = Double(g.worldSize)
        let mean = (0..<g.worldSize).map { Double($0) + 1 }.reduce(0, +) / n
        let s = Ember.CUDA.Stream(device: index)
        for _ in 0..<3 {
            let (result, sent): (Tensor, Tensor) = try Ember.CUDA.withStream(s) {
                let base = Tensor.full([10, 100], r + 1).to(g.device) * 2
                let view = base.t()  // not contiguous: staged, then copied back
                try g.allReduce(view, op: .avg)
                return ((view * 1).contiguous(), base)
            }
            _ = sent
            s.synchronize()
            let got = values(result)
            check(got.allSatisfy { $0 == 2 * mean }, "allReduce(avg) on a user stream: \(got.prefix(3)) vs \(2 * mean)")
        }
    }

    static func makeModel(seed: UInt64) -> Sequential {
        Ember.manualSeed(seed)
        return Sequential([Linear(20, 32), ReLU(), Linear(32, 16), Tanh(), Linear(16, 5)])
    }

    /// DDP with W ranks × batch B matches one process with batch W·B after 10 SGD steps;
    /// also with gradient accumulation under `noSync`.
    static func ddp(_ g: ProcessGroup, _ check: Check) throws {
        let B = 8, W = g.worldSize
        Ember.manualSeed(123)
        let xs = Tensor.randn([10, W * B, 20])
        let ys = Tensor.randint(0, 5, [10, W * B])

        // Reference: a single process on the whole batch (computed on every rank).
        let ref = makeModel(seed: 7)
        let refOpt = SGD(ref.parameters(), lr: 0.1, momentum: 0.9)
        for s in 0..<10 {
            refOpt.zeroGrad()
            try crossEntropy(ref(xs[s]), ys[s]).backward()
            refOpt.step()
        }
        // DDP: a different seed on other ranks proves the initial broadcast.
        let model = makeModel(seed: 7 + UInt64(g.rank) * 1000)
        let ddp = try DistributedDataParallel(model, group: g, bucketCapMB: 0.002)
        check(ddp.bucketParameterNames.count > 1, "several buckets: \(ddp.bucketParameterNames)")
        let opt = SGD(model.parameters(), lr: 0.1, momentum: 0.9)
        for s in 0..<10 {
            opt.zeroGrad()
            let mine = xs[s][(g.rank * B)..<((g.rank + 1) * B)]
            let labels = ys[s][(g.rank * B)..<((g.rank + 1) * B)]
            try crossEntropy(ddp(mine), labels).backward()
            opt.step()
        }
        var worst = 0.0
        for ((name, p), (_, q)) in zip(model.namedParameters(), ref.namedParameters()) {
            let d = (p - q).abs().max().item()
            worst = max(worst, d)
            check(d < 1e-5, "DDP parameter \(name) differs from the single process by \(d)")
        }
        print("EMBER-DDP rank \(g.rank): max |ddp - single| = \(worst)")

        // Gradient accumulation: two half-batches, the first under noSync.
        let acc = makeModel(seed: 99)
        let accRef = makeModel(seed: 99)
        let accDDP = try DistributedDataParallel(acc, group: g)
        let x = xs[0], y = ys[0]
        let h = B / 2
        let lo = g.rank * B
        try accDDP.noSync {
            try (crossEntropy(accDDP(x[lo..<(lo + h)]), y[lo..<(lo + h)]) * 0.5).backward()
        }
        try (crossEntropy(accDDP(x[(lo + h)..<(lo + B)]), y[(lo + h)..<(lo + B)]) * 0.5).backward()
        try crossEntropy(accRef(x), y).backward()
        for ((name, p), (_, q)) in zip(acc.namedParameters(), accRef.namedParameters()) {
            let d = (p.grad! - q.grad!).abs().max().item()
            check(d < 1e-5, "noSync accumulation: gradient of \(name) differs by \(d)")
        }
        // A second backward after an error works: a hook throwing mid-backward leaves no state behind.
        let extra = acc.parameters()[0]
        let handle = extra.registerHook { _ in throw DistributedError.backend("injected") }
        acc.zeroGrad()
        check((try? crossEntropy(accDDP(x[lo..<(lo + B)]), y[lo..<(lo + B)]).backward()) == nil, "the injected error surfaced")
        handle.remove()
        // Every rank failed the same way, so the ranks' collectives still line up: the next
        // backward works and averages again.
        acc.zeroGrad()
        accRef.zeroGrad()
        try crossEntropy(accDDP(x[lo..<(lo + B)]), y[lo..<(lo + B)]).backward()
        try crossEntropy(accRef(x), y).backward()
        let d = (acc.parameters()[0].grad! - accRef.parameters()[0].grad!).abs().max().item()
        check(d < 1e-5, "backward after an error: gradient differs by \(d)")
    }

    /// A branch used only on rank 0: with findUnusedParameters the gradient is averaged
    /// over the ranks that used it (zeros elsewhere); without it, backward names the parameter.
    static func ddpUnused(_ g: ProcessGroup, _ check: Check) throws {
        final class TwoHeads: Module {
            let body = Linear(6, 6), a = Linear(6, 2), b = Linear(6, 2)
            var useB = true
            override func callAsFunction(_ x: Tensor) -> Tensor {
                let h = body(x).relu()
                return useB ? a(h) + b(h) : a(h)
            }
        }
        Ember.manualSeed(5)
        let m = TwoHeads()
        m.useB = g.rank == 0
        let ddp = try DistributedDataParallel(m, group: g, findUnusedParameters: true)
        Ember.manualSeed(6)
        let x = Tensor.randn([4, 6])
        try ddp(x).sum().backward()
        // b's gradient: rank 0's local gradient divided by the world size, on every rank.
        let local = Tensor.ones([4, 2]).t().matmul(m.body(x).relu())
        let want = local / Double(g.worldSize)
        let got = try XCTUnwrap(m.b.weight.grad)
        let d = (got - want).abs().max().item()
        check(d < 1e-5, "unused-parameter gradient differs by \(d)")
        // A parameter used by no rank keeps no gradient.
        m.useB = false
        m.zeroGrad()
        try ddp(x).sum().backward()
        check(m.b.weight.grad == nil, "a parameter no rank used got a gradient")
        check(m.a.weight.grad != nil, "used parameter has a gradient")

        // Without findUnusedParameters the error names the parameter.
        let m2 = TwoHeads()
        m2.useB = false
        let strict = try DistributedDataParallel(m2, group: g)
        do {
            try strict(x).sum().backward()
            check(false, "unused parameters were accepted")
        } catch {
            check("\(error)".contains("module.b.weight") || "\(error)".contains("b.weight"), "error names the parameter: \(error)")
        }
    }
}
