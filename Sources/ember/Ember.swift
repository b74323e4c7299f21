import ArgumentParser
import Ember
import EmberCPU
import EmberCUDA

@main
struct EmberTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ember",
        abstract: "Ember: deep learning in Swift.",
        subcommands: [Train.self, Launch.self, Demo.self, Info.self, Bench.self, BenchDistributed.self],
        defaultSubcommand: Train.self)
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print what Ember found on this machine.")
    func run() {
        print("Ember")
        print("  CPU threads: \(Ember.numThreads) (EMBER_NUM_THREADS or Ember.setNumThreads to change)")
        print("  CPU kernels: \(CPUFeatures.active) (detected \(CPUFeatures.detected); EMBER_CPU_ISA to change), GEMM micro-kernel \(GEMM.microKernelISA)")
        _ = BLAS.shared
        print("  BLAS: \(BLAS.status)")
        if Ember.CUDA.isAvailable {
            print("  devices: cpu, " + (0..<Ember.CUDA.deviceCount).map { "cuda:\($0)" }.joined(separator: ", "))
        } else {
            print("  devices: cpu")
        }
        print("  CUDA:\n" + Ember.CUDA.report().split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
    }
}
