import ArgumentParser
import Dispatch
import Ember
import Foundation

/// `ember launch --nproc 2 ember bench-distributed`: allReduce bus bandwidth through Ember
/// against the same MPI call made directly, and the step time of data-parallel training
/// against a single process. Rank 0 prints the table; times are the slowest rank's.
struct BenchDistributed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-distributed",
        abstract: "Benchmark collectives and DDP (run it under ember launch or mpirun).")

    @Option(help: "Repeats per case (median reported).") var repeats = 5
    @Option(help: "Comma-separated allReduce sizes in MB.") var sizes = "1,4,16,64,100"
    @Option(help: "Training steps per DDP measurement.") var steps = 20
    @Option(name: .customLong("bucket-mb"), help: "DDP bucket cap in MB (the first bucket is at most 1 MB).") var bucketMB = 25.0
    @Option(help: "Comma-separated models for the DDP step (mlp, cnn).") var models = "mlp,cnn"

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let g = try Distributed.initProcessGroup()
        let say: (String) -> Void = { if g.rank == 0 { print($0) } }
        say("ember bench-distributed: \(g.worldSize) ranks, \(g.backendName), \(Ember.numThreads) thread(s) per rank")
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        let world = Double(g.worldSize)
        func busBW(_ bytes: Int, _ s: Double) -> Double { 2 * (world - 1) / world * Double(bytes) / s / 1e9 }

        say("\nallReduce (float32, sum, in place): bus bandwidth GB/s, median of \(repeats)")
        say("size      direct MPI   Ember        Ember/direct   Ember (no check)   /direct")
        for mb in sizes.split(separator: ",").compactMap({ Double($0) }) {
            let count = Int(mb * 1_048_576) / 4
            let t = Tensor.ones([count])
            let iters = max(2, Int(64 / mb))
            var direct: [Double] = [], ember: [Double] = [], unchecked: [Double] = []
            for _ in 0..<repeats {
                direct.append(try DistributedBenchmark.directAllReduceSeconds(g, t, iterations: iters))
                g.checksConsistency = true
                ember.append(try DistributedBenchmark.emberAllReduceSeconds(g, t, iterations: iters))
                g.checksConsistency = false
                unchecked.append(try DistributedBenchmark.emberAllReduceSeconds(g, t, iterations: iters))
                g.checksConsistency = true
            }
            let d = busBW(count * 4, median(direct)), e = busBW(count * 4, median(ember)), u = busBW(count * 4, median(unchecked))
            say(String(format: "%5.0f MB  %8.2f     %8.2f     %7.1f %%      %8.2f         %7.1f %%", mb, d, e, e / d * 100, u, u / d * 100))
        }

        say("\nDDP step (forward + backward + Adam, batch 64 per rank, synthetic Fashion-MNIST-shaped data): ms, median of \(repeats)")
        say("single: each rank steps on its own; in-step: the same plus one direct MPI allReduce of all gradients per step")
        say("(ranks in lockstep, as under DDP); raw: that allReduce timed alone, back to back; lockstep: single plus an")
        say("allReduce of one value per step (what waiting for the slowest rank costs, with no data to move)")
        say("model  single   lockstep  in-step   DDP      raw allReduce   beyond raw (DDP − single − raw)   beyond lockstep + raw   beyond in-step")
        for name in models.split(separator: ",").map(String.init) where ["mlp", "cnn"].contains(name) {
            Ember.manualSeed(0)
            let local = name == "mlp" ? FashionModels.mlp() : FashionModels.cnn()
            let shared = name == "mlp" ? FashionModels.mlp() : FashionModels.cnn()
            let ddp = try DistributedDataParallel(shared, group: g, bucketCapMB: bucketMB)
            let x = name == "mlp" ? Tensor.randn([64, 784]) : Tensor.randn([64, 1, 28, 28])
            let y = Tensor.randint(0, 10, [64])
            let optLocal = Adam(local.parameters()), optDDP = Adam(shared.parameters())
            let flat = Tensor.zeros([shared.parameterCount])
            func timeSteps(_ body: () throws -> Void) throws -> Double {
                for _ in 0..<2 { try body() }
                try g.barrier()
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<steps { try body() }
                return try DistributedBenchmark.slowest(g, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(steps))
            }
            let localParams = local.parameters()
            var single: [Double] = [], data: [Double] = [], raw: [Double] = [], inStep: [Double] = [], lockstep: [Double] = []
            let token = Tensor.zeros([1])
            for _ in 0..<repeats {
                single.append(try timeSteps {
                    optLocal.zeroGrad()
                    try crossEntropy(local(x), y).backward()
                    optLocal.step()
                })
                lockstep.append(try timeSteps {
                    optLocal.zeroGrad()
                    try crossEntropy(local(x), y).backward()
                    _ = try DistributedBenchmark.directAllReduceSeconds(g, token, iterations: 1, slowest: false)
                    optLocal.step()
                })
                data.append(try timeSteps {
                    optDDP.zeroGrad()
                    try crossEntropy(ddp(x), y).backward()
                    optDDP.step()
                })
                inStep.append(try timeSteps {
                    optLocal.zeroGrad()
                    try crossEntropy(local(x), y).backward()
                    // What a hand-written data-parallel step does at least: gather the gradients,
                    // one allReduce, scatter them back.
                    var offset = 0
                    withNoGrad {
                        for p in localParams {
                            flat[offset..<(offset + p.count)].copy_(p.grad!.flatten(), scaledBy: 1 / world)
                            offset += p.count
                        }
                    }
                    _ = try DistributedBenchmark.directAllReduceSeconds(g, flat, iterations: 1, slowest: false)
                    offset = 0
                    withNoGrad {
                        for p in localParams {
                            p.grad!.copy_(flat[offset..<(offset + p.count)].view(p.shape))
                            offset += p.count
                        }
                    }
                    optLocal.step()
                })
                raw.append(try DistributedBenchmark.directAllReduceSeconds(g, flat, iterations: steps) * 1000)
            }
            let s = median(single), d = median(data), r = median(raw), l = median(inStep), k = median(lockstep)
            say(String(format: "%@    %6.2f   %6.2f    %6.2f    %6.2f   %8.3f        %+6.1f %% of the DDP step           %+6.1f %%               %+6.1f %%",
                       name, s, k, l, d, r, (d - s - r) / d * 100, (d - k - r) / d * 100, (d - l) / d * 100))
        }
        try Distributed.destroyProcessGroup()
    }
}
