// swift-tools-version:6.0
import PackageDescription

// Ember builds with nothing but the Swift toolchain: no system library, no C toolkit,
// no environment variables. Optional native libraries are found at run time.
let package = Package(
    name: "Ember",
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .executable(name: "ember", targets: ["ember"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // CPU kernels on raw buffers and strides: no tensor type, no autograd.
        .target(
            name: "EmberCPU",
            dependencies: [.product(name: "RealModule", package: "swift-numerics")]),
        // Tensor, dtypes, layouts, storage, devices, the op table, autograd, the backend protocol.
        .target(
            name: "EmberCore",
            dependencies: ["EmberCPU", .product(name: "RealModule", package: "swift-numerics")]),
        // The umbrella module users import.
        .target(name: "Ember", dependencies: ["EmberCore"]),
        // The command-line tool.
        .executableTarget(
            name: "ember",
            dependencies: ["Ember", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(
            name: "EmberCoreTests",
            dependencies: ["Ember", "EmberCore", "EmberCPU"],
            resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
