// swift-tools-version:6.0
import PackageDescription

// Ember builds with nothing but the Swift toolchain: no system library, no C toolkit,
// no environment variables. Optional native libraries are found at run time.
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
        // CPU kernels on raw buffers and strides: no tensor type, no autograd.
        .target(
            name: "EmberCPU",
            dependencies: ["CEmberKernels", .product(name: "RealModule", package: "swift-numerics")]),
        // Tensor, dtypes, layouts, storage, devices, the op table, autograd, the backend protocol.
        .target(
            name: "EmberCore",
            dependencies: ["EmberCPU", "CEmberKernels", .product(name: "RealModule", package: "swift-numerics")]),
        // Module, layers, losses, initialisation.
        .target(name: "EmberNN", dependencies: ["EmberCore"]),
        // Optimizers, learning-rate schedulers, gradient clipping.
        .target(name: "EmberOptim", dependencies: ["EmberCore", "EmberNN"]),
        // Datasets, IDX/gzip readers, batching; safetensors checkpoints.
        .target(name: "EmberData", dependencies: ["EmberCore", "EmberNN", "EmberOptim"]),
        // NVIDIA GPUs: driver, NVRTC and cuBLAS opened at run time; kernels compiled by NVRTC.
        .target(name: "EmberCUDA", dependencies: ["EmberCore", "EmberCPU"]),
        // Process groups on MPI and NCCL (both loaded at run time), data-parallel training.
        .target(name: "EmberDistributed", dependencies: ["EmberCore", "EmberCPU", "EmberNN", "EmberCUDA", "CEmberKernels"]),
        // The umbrella module users import.
        .target(name: "Ember", dependencies: ["EmberCore", "EmberNN", "EmberOptim", "EmberData", "EmberDistributed"]),
        // The command-line tool.
        .executableTarget(
            name: "ember",
            dependencies: ["Ember", "EmberCPU", "EmberCUDA", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // GPU verification: the op fixtures, layers and training on a GPU against the CPU and
        // PyTorch (built with --static-swift-stdlib and run where a GPU is lent).
        .executableTarget(
            name: "ember-gpu-check",
            dependencies: ["Ember", "EmberCUDA", "EmberOpFixtures", "EmberTestSupport"]),
        // Helpers shared by the test targets (fixture loading, tolerances).
        .target(name: "EmberTestSupport", dependencies: ["EmberCore"], path: "Tests/EmberTestSupport"),
        // The PyTorch op fixtures as a library: cases, the op table, and a runner per device.
        .target(name: "EmberOpFixtures", dependencies: ["EmberCore", "EmberTestSupport"], path: "Tests/EmberOpFixtures"),
        .testTarget(
            name: "EmberNNTests",
            dependencies: ["Ember", "EmberCPU", "EmberNN", "EmberOptim", "EmberData", "EmberTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "EmberCUDATests",
            dependencies: ["EmberCUDA", "EmberCore", "EmberNN", "EmberOptim", "EmberData", "EmberTestSupport"]),
        .testTarget(
            name: "EmberDistributedTests",
            dependencies: ["Ember", "EmberDistributed", "EmberTestSupport"]),
        .testTarget(
            name: "EmberCoreTests",
            dependencies: ["Ember", "EmberCore", "EmberCPU", "EmberTestSupport", "EmberOpFixtures"],
            resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
