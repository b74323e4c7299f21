import ArgumentParser
import Dispatch
import Ember
import EmberCUDA
import Foundation

/// Trains the MLP or the CNN on Fashion-MNIST and prints the test accuracy.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model on Fashion-MNIST and print test accuracy.")

    @Option(help: "mlp or cnn.") var model = "mlp"
    @Option(help: "Epochs.") var epochs = 5
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize = 64
    @Option(help: "adam or sgd (momentum 0.9).") var optimizer = "adam"
    @Option(help: "Learning rate (default: 1e-3 for adam, 0.05 for sgd).") var lr: Double?
    @Option(help: "Learning-rate schedule: cosine (default), none, step (×0.5 every 2 epochs), onecycle.") var schedule = "cosine"
    @Option(help: "Directory with the four Fashion-MNIST IDX files (.gz or raw).") var data = FashionMNIST.debianRoot
    @Option(help: "Save a checkpoint here after every epoch (atomically).") var checkpoint: String?
    @Flag(help: "Continue from --checkpoint: same weights, optimizer state and schedule.") var resume = false
    @Option(help: "Use only the first N training images.") var limit: Int?
    @Option(name: .customLong("test-limit"), help: "Evaluate on the first N test images.") var testLimit: Int?
    @Option(help: "Random seed (initialisation and shuffling).") var seed: UInt64 = 0
    @Option(help: "CPU threads (default: all cores).") var threads: Int?
    @Option(help: "DataLoader worker threads preparing batches ahead (0 = on the training thread).") var workers = 1
    @Flag(help: "No progress bar.") var quiet = false
    @Option(help: "cpu or cuda / cuda:N (default: cuda when a GPU is usable, else cpu).") var device: String?

    func validate() throws {
        guard ["mlp", "cnn"].contains(model) else { throw ValidationError("--model must be mlp or cnn") }
        guard ["adam", "sgd"].contains(optimizer) else { throw ValidationError("--optimizer must be adam or sgd") }
        guard ["none", "cosine", "step", "onecycle"].contains(schedule) else { throw ValidationError("unknown --schedule \(schedule)") }
        guard !resume || checkpoint != nil else { throw ValidationError("--resume needs --checkpoint PATH") }
        guard epochs > 0, batchSize > 0 else { throw ValidationError("--epochs and --batch-size must be positive") }
        if let device { _ = try Train.parseDevice(device) }
    }

    static func parseDevice(_ s: String) throws -> Device {
        if s == "cpu" { return .cpu }
        if s == "cuda" { return .cuda(0) }
        if s.hasPrefix("cuda:"), let i = Int(s.dropFirst(5)) { return .cuda(i) }
        throw ValidationError("--device must be cpu, cuda or cuda:N")
    }

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)  // one line at a time, also when piped to a log
        if let threads { Ember.setNumThreads(threads) }
        // Under `ember launch` / mpirun every rank runs this same command: data-parallel.
        var group: ProcessGroup? = nil
        if launchedByMPI() {
            // GPUs talk through NCCL, CPUs through MPI.
            let wantsGPU = device.map { $0 != "cpu" } ?? Ember.CUDA.isAvailable
            let g = try Distributed.initProcessGroup(backend: wantsGPU ? .nccl : .mpi)
            if g.worldSize > 1 { group = g }
        }
        do {
            try train(group)
        } catch {
            guard let group else { throw error }
            FileHandle.standardError.write("rank \(group.rank): \(error)\n".data(using: .utf8)!)
            group.abort(code: 1)
        }
        try Distributed.destroyProcessGroup()
    }

    func train(_ group: ProcessGroup?) throws {
        let rank = group?.rank ?? 0, world = group?.worldSize ?? 1
        func say(_ line: String) { if rank == 0 { print(line) } }
        let train: FashionMNIST, test: FashionMNIST
        do {
            train = try FashionMNIST(root: data, train: true)
            test = try FashionMNIST(root: data, train: false)
        } catch {
            throw ValidationError("\(error)")
        }
        let n = min(limit ?? train.count, train.count)
        let trainImages = train.images.narrow(0, start: 0, length: n), trainLabels = train.labels.narrow(0, start: 0, length: n)
        let nt = min(testLimit ?? test.count, test.count)

        // The device: --device, else a GPU when one is usable (data-parallel GPU runs use
        // NCCL, one GPU per process: the group's device).
        let dev: Device
        if let d = device {
            // Plain `cuda` in a data-parallel job means this rank's GPU (one per process).
            dev = d == "cuda" && group?.device != nil && group?.device != .cpu ? group!.device : try Train.parseDevice(d)
            if dev != .cpu, !Ember.CUDA.isAvailable {
                throw ValidationError("--device \(d): no usable GPU: \(Ember.CUDA.unavailableReason ?? "")")
            }
        } else {
            dev = group?.device ?? (Ember.CUDA.isAvailable ? .cuda(0) : .cpu)
        }
        if let group, group.device != dev {
            throw ValidationError("--device \(dev) does not match the process group's device \(group.device)")
        }
        Ember.manualSeed(seed)
        let net = (model == "mlp" ? FashionModels.mlp() : FashionModels.cnn()).to(dev)
        let opt: Optimizer = optimizer == "adam"
            ? Adam(net.parameters(), lr: lr ?? 1e-3)
            : SGD(net.parameters(), lr: lr ?? 0.05, momentum: 0.9)
        let stepsPerEpoch = (n + batchSize - 1) / batchSize
        let scheduler: LRScheduler?
        switch schedule {
        case "cosine": scheduler = CosineAnnealingLR(opt, tMax: epochs)
        case "step": scheduler = StepLR(opt, stepSize: 2, gamma: 0.5)
        case "onecycle": scheduler = OneCycleLR(opt, maxLR: (lr ?? (optimizer == "adam" ? 1e-3 : 0.05)) * 4, totalSteps: epochs * stepsPerEpoch)
        default: scheduler = nil
        }

        var startEpoch = 0
        if resume, let path = checkpoint, FileManager.default.fileExists(atPath: path) {
            let ck = try Checkpoint.load(path)
            guard ck.values["model"] == model else {
                throw ValidationError("checkpoint \(path) holds a \(ck.values["model"] ?? "?") model, not \(model)")
            }
            try net.loadStateDict(ck.model)
            if let o = ck.optimizer { try opt.loadStateDict(o) }
            startEpoch = Int(ck.values["epoch"] ?? "0") ?? 0
            if let s = ck.values["scheduler_step"].flatMap(Int.init) { scheduler?.setEpoch(s) }
            say("resumed from \(path) after epoch \(startEpoch)")
        }
        // Data-parallel: rank 0's weights go to every rank, gradients are averaged in backward.
        let forward: Module = try group.map { try DistributedDataParallel(net, group: $0) } ?? net
        say("model \(model): \(net.parameterCount) parameters; \(n) training images, \(nt) test images; "
            + "\(optimizer) lr \(opt.paramGroups[0].lr), batch \(batchSize), "
            + (dev == .cpu ? "threads \(Ember.numThreads)" : "device \(dev) (\(Ember.CUDA.name(dev == .cuda(0) ? 0 : Distributed.localRank % max(1, Ember.CUDA.deviceCount))))")
            + (world > 1 ? "; data-parallel over \(world) processes (\(group!.backendName)), global batch \(world * batchSize)" : ""))

        let mean = 0.2860, std = 0.3530
        func batch(_ images: Tensor, _ idx: Tensor) -> Tensor {
            var x = (images.indexSelect(0, idx).to(.float32) / 255 - mean) / std
            if model == "cnn" { x = x.unsqueeze(1) }
            return x
        }
        // Batches are gathered whole by the loader's workers while the model trains.
        let shard: DistributedSampler? = world > 1 ? DistributedSampler(count: n, numReplicas: world, rank: rank, shuffle: true, seed: seed) : nil
        let sampler: Sampler? = shard
        let loader = DataLoader(count: n, batchSize: batchSize, shuffle: sampler == nil, sampler: sampler, numWorkers: workers,
                                seed: seed, pinMemory: dev != .cpu) { indices in
            let idx = Tensor(indices)
            return (batch(trainImages, idx), trainLabels.indexSelect(0, idx))
        }
        loader.epoch = startEpoch

        let stepsThisRank = shard.map { ($0.numSamples + batchSize - 1) / batchSize } ?? stepsPerEpoch
        if startEpoch >= epochs { say("nothing to do: the checkpoint is already at epoch \(startEpoch)") }
        for epoch in startEpoch..<epochs {
            net.train()
            let bar = Progress(total: stepsThisRank, label: "epoch \(epoch + 1)/\(epochs)", quiet: quiet || rank != 0)
            var seen = 0, step = 0
            var pendingLosses: [Tensor] = []
            func readPendingLosses() {
                for v in Tensor.stack(pendingLosses).to(.cpu).toArray(Float.self) { bar.record(Double(v)) }
                pendingLosses.removeAll()
                bar.draw(step, samples: seen)
            }
            let batches = loader.makeBatchIterator()
            while let (x, y) = try batches.next() {
                // Batches are pinned on a GPU run: their copies are queued without waiting.
                let loss = dev == .cpu ? crossEntropy(forward(x), y) : crossEntropy(forward(x.to(dev, nonBlocking: true)), y.to(dev, nonBlocking: true))
                opt.zeroGrad()
                try loss.backward()
                opt.step()
                if schedule == "onecycle" { scheduler?.step() }
                seen += y.count
                step += 1
                if dev == .cpu {
                    bar.update(step, loss: loss.item(), samples: seen)
                } else {
                    // Reading a loss waits for the GPU: keep them there and read 20 at once,
                    // so the host queues the next steps meanwhile (the same smoothed values).
                    pendingLosses.append(loss.detach())
                    if pendingLosses.count == 20 { readPendingLosses() }
                }
            }
            if !pendingLosses.isEmpty { readPendingLosses() }
            if schedule != "onecycle" { scheduler?.step() }
            if rank == 0 { bar.finish() }
            let acc = try evaluate(net, test, nt, batch, group, dev)
            say(String(format: "epoch %d: test accuracy %.2f%%", epoch + 1, acc * 100))
            if let path = checkpoint, rank == 0 {
                try Checkpoint(model: net.stateDict(), optimizer: opt.stateDict(),
                               values: ["model": model, "epoch": "\(epoch + 1)", "scheduler_step": "\(scheduler?.lastEpoch ?? 0)"])
                    .save(to: path)
            }
        }
        let acc = try evaluate(net, test, nt, batch, group, dev)
        say(String(format: "test accuracy: %.4f (%.2f%%)", acc, acc * 100))
    }

    /// Test accuracy; with a group, each rank scores its share and the counts are summed.
    func evaluate(_ net: Module, _ test: FashionMNIST, _ count: Int, _ batch: (Tensor, Tensor) -> Tensor,
                  _ group: ProcessGroup?, _ dev: Device = .cpu) throws -> Double {
        net.eval()
        defer { net.train() }
        var correct = 0
        let world = group?.worldSize ?? 1, rank = group?.rank ?? 0
        let lo = count * rank / world, hi = count * (rank + 1) / world
        withNoGrad {
            var i = lo
            while i < hi {
                let m = min(1000, hi - i)
                let idx = Tensor.arange(Double(i), Double(i + m), dtype: .int64)
                let pred = net(batch(test.images, idx).to(dev)).argmax(dim: 1).to(.cpu)
                correct += Int(pred.eq(test.labels.indexSelect(0, idx)).sum().item())
                i += m
            }
        }
        if let group {
            // On the group's device: NCCL reduces CUDA tensors only.
            let total = Tensor([Int64(correct)], device: group.device)
            try group.allReduce(total)
            correct = Int(total.to(.cpu).item(Int64.self))
        }
        return Double(correct) / Double(max(count, 1))
    }
}

/// A one-line progress bar on stderr: step, loss, samples/s, ETA.
final class Progress {
    let total: Int, label: String, quiet: Bool
    let start = DispatchTime.now().uptimeNanoseconds
    var lastDraw: UInt64 = 0
    var lossAvg: Double?

    init(total: Int, label: String, quiet: Bool) {
        self.total = total
        self.label = label
        self.quiet = quiet
    }

    func update(_ step: Int, loss: Double, samples: Int) {
        record(loss)
        draw(step, samples: samples)
    }

    /// Adds one step's loss to the smoothed mean.
    func record(_ loss: Double) { lossAvg = lossAvg.map { 0.98 * $0 + 0.02 * loss } ?? loss }

    func draw(_ step: Int, samples: Int) {
        let now = DispatchTime.now().uptimeNanoseconds
        guard !quiet, now - lastDraw > 100_000_000 || step == total else { return }
        lastDraw = now
        let elapsed = Double(now - start) / 1e9
        let rate = Double(samples) / max(elapsed, 1e-9)
        let eta = elapsed / Double(step) * Double(total - step)
        let width = 24, filled = width * step / max(total, 1)
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let line = String(format: "\r%@ [%@] %d/%d loss %.4f %.0f samples/s ETA %.0fs   ", label, bar, step, total, lossAvg!, rate, eta)
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }

    func finish() {
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if !quiet { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        print(String(format: "%@: %.1fs, mean loss (smoothed) %.4f", label, elapsed, lossAvg ?? .nan))
    }
}
