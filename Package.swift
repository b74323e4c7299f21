// swift-tools-version:6.0
import PackageDescription

// Ember builds with nothing but the Swift toolchain: no system library, no C toolkit,
// no environment variables. Optional native libraries are found at run time.
let numerics = Target.Dependency.product(name: "RealModule", package: "swift-numerics")

let package = Package(
    name: "Ember",
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .executable(name: "ember", targets: ["ember"]),
        .executable(name: "ember-gpu-check", targets: ["ember-gpu-check"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Instruction-set-specific micro-kernels (AVX2+FMA, AVX-512), chosen at run time.
        .target(name: "CEmberKernels", exclude: ["vector_kernels.inc"]),
        // The intra-op thread pool (and a process-wide counter of pinned-allocation scopes).
        .target(name: "CEmberThreads"),
        // The one NCCL call that takes a struct by value.
        .target(name: "CEmberNCCL"),
        // Native libraries opened at run time (dlopen / LoadLibrary), with every path tried.
        .target(name: "EmberLoader"),
        // CPU kernels on raw buffers and strides: no tensor type, no autograd.
        .target(name: "EmberCPU", dependencies: ["CEmberKernels", "CEmberThreads", "EmberLoader", numerics]),
        // Tensor, dtypes, layouts, storage, devices, the op table and its CPU backend, the ops,
        // autograd, state dicts and safetensors files.
        .target(name: "EmberCore", dependencies: ["EmberCPU", "CEmberKernels", "CEmberThreads", numerics]),
        // Module, layers, initialisation.
        .target(name: "EmberNN", dependencies: ["EmberCore"]),
        // Optimizers, learning-rate schedulers, gradient clipping, training checkpoints.
        .target(name: "EmberOptim", dependencies: ["EmberCore"]),
        // Datasets, IDX/gzip readers, transforms, samplers, the DataLoader.
        .target(name: "EmberData", dependencies: ["EmberCore"]),
        // NVIDIA GPUs: driver, NVRTC, cuBLAS and cuDNN opened at run time; kernels compiled by NVRTC.
        .target(name: "EmberCUDA", dependencies: ["EmberCore", "EmberLoader"]),
        // Process groups on MPI and NCCL (both loaded at run time), data-parallel training.
        .target(name: "EmberDistributed", dependencies: ["EmberCore", "EmberNN", "EmberCUDA", "EmberLoader", "CEmberNCCL"]),
        // The umbrella module users import.
        .target(name: "Ember", dependencies: ["EmberCore", "EmberNN", "EmberOptim", "EmberData", "EmberDistributed"]),
        // The PyTorch op fixtures as a library: cases, the op table, tolerances, a runner per
        // device (the tests and ember-gpu-check share it).
        .target(name: "EmberReference", dependencies: ["EmberCore", "EmberNN"]),
        // The command-line tool.
        .executableTarget(
            name: "ember",
            dependencies: ["Ember", "EmberCPU", "EmberCUDA", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // GPU verification: the op fixtures, layers and training on a GPU against the CPU and
        // PyTorch (built with --static-swift-stdlib and run where a GPU is lent).
        .executableTarget(name: "ember-gpu-check", dependencies: ["Ember", "EmberCUDA", "EmberReference"]),

        // Tests: one target per module, one test class per file.
        // Helpers shared by the test targets (the committed fixtures, assertions, child processes).
        .target(name: "EmberTestSupport", dependencies: ["EmberCore", "EmberReference"], path: "Tests/EmberTestSupport",
                resources: [.copy("Fixtures")]),
        .testTarget(name: "EmberLoaderTests", dependencies: ["EmberLoader"]),
        .testTarget(name: "EmberCPUTests", dependencies: ["EmberCPU", "EmberCore", "EmberTestSupport"]),
        .testTarget(name: "EmberCoreTests", dependencies: ["EmberCore", "EmberCPU", "EmberTestSupport", "EmberReference"]),
        .testTarget(name: "EmberNNTests", dependencies: ["Ember", "EmberCPU", "EmberTestSupport"]),
        .testTarget(name: "EmberOptimTests", dependencies: ["Ember", "EmberTestSupport"]),
        .testTarget(name: "EmberDataTests", dependencies: ["Ember", "EmberData", "EmberTestSupport"]),
        .testTarget(name: "EmberCUDATests", dependencies: ["EmberCUDA", "Ember", "EmberTestSupport"]),
        .testTarget(name: "EmberDistributedTests", dependencies: ["Ember", "EmberDistributed", "EmberTestSupport"]),
        // Misuse of ops, layers, losses, optimizers and data, one scenario per run: the
        // messages EmberTests.MisuseScenarioTests expects, checked in debug and (CI) release.
        .executableTarget(name: "EmberMisuseScenarios", dependencies: ["Ember"], path: "Tests/EmberMisuseScenarios"),
        // The umbrella: the README's tour, end-to-end training against PyTorch, misuse messages.
        .testTarget(name: "EmberTests", dependencies: ["Ember", "EmberTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
