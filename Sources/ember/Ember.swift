import ArgumentParser
import Ember

@main
struct EmberTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ember",
        abstract: "Ember: deep learning in Swift.",
        subcommands: [Train.self, Demo.self, Info.self, Bench.self],
        defaultSubcommand: Train.self)
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print what Ember found on this machine.")
    func run() {
        print("Ember")
        print("  CPU threads: \(Ember.numThreads) (EMBER_NUM_THREADS or Ember.setNumThreads to change)")
        print("  devices: cpu")
    }
}
