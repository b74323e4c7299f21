import EmberCore
@testable import EmberCUDA
import EmberNN
import Foundation
import XCTest

/// Every generated kernel module compiles with NVRTC (no GPU needed: NVRTC emits PTX and
/// CUBIN on any machine). CI provides NVRTC from NVIDIA's PyPI wheel; without it the test
/// is skipped with the reason printed.
final class KernelCompileTests: XCTestCase {
    func nvrtc() throws -> NVRTC {
        do { return try NVRTC.load() } catch {
            throw XCTSkip("NVRTC not found (pip install nvidia-cuda-nvrtc-cu12, or EMBER_NVRTC_LIBRARY): \(error)")
        }
    }

    func testEveryModuleCompiles() throws {
        let nv = try nvrtc()
        print("NVRTC \(nv.version.major).\(nv.version.minor) from \(nv.library.path); architectures \(nv.supportedArchitectures)")
        // CUBIN for a recent data-center GPU, and PTX for the oldest architecture NVRTC does
        // not call deprecated (Ember needs compute capability 6.0+ for float64 atomics).
        let targets: [NVRTC.Target] = [nv.target(forArchitecture: 90), .ptx(75)]
        // Every (module, target) pair on all cores: NVRTC compiles programs concurrently.
        let jobs = KernelSource.allModules().flatMap { m in targets.map { (m.0, m.1, $0) } }
        var results = [String?](repeating: nil, count: jobs.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
            let (name, source, target) = jobs[i]
            var failure: String? = nil
            do {
                let binary = try nv.compile(source, name: name + ".cu", target: target)
                if binary.count < 100 { failure = "\(name) \(target): \(binary.count) bytes" }
            } catch {
                failure = "\(name) \(target): \(error)".prefix(3000).description
            }
            lock.lock(); results[i] = failure; lock.unlock()
        }
        let failures = results.compactMap { $0 }
        XCTAssertGreaterThan(jobs.count, 60)
        XCTAssertEqual(failures, [], failures.joined(separator: "\n\n"))
    }

    /// Kernels in which many threads add into one element (duplicate indices, overlapping
    /// pooling windows) must add atomically in every dtype: a plain `+=` loses updates on a
    /// GPU (the emulator runs threads one after another, so only the source shows it).
    func testAccumulatingKernelsAddAtomically() {
        for d in DType.allCases {
            for (module, kernel) in [(KernelModule.indexing, "indexAdd"), (.indexing, "scatter"), (.convolution, "maxPool2dBackward")] {
                let entry = "void \(KernelSource.name(kernel, d.description))("
                guard let src = module.source(d), let start = src.range(of: entry) else {
                    if module != .convolution || d.isFloatingPoint { XCTFail("\(entry) missing") }
                    continue
                }
                // The kernel's body: from its first brace to the matching one.
                var depth = 0, text = ""
                for c in src[start.upperBound...].drop(while: { $0 != "{" }) {
                    text.append(c)
                    if c == "{" { depth += 1 } else if c == "}" { depth -= 1; if depth == 0 { break } }
                }
                let adds = text.replacingOccurrences(of: "i += (long long)gridDim.x * blockDim.x", with: "")  // grid-stride loops
                XCTAssertFalse(adds.contains("+="), "\(kernel) \(d) adds without an atomic:\n\(text)")
                XCTAssertTrue(text.contains("atomicAdd(") || text.contains("ember_atomic_small("),
                              "\(kernel) \(d):\n\(text)")
            }
        }
    }

    /// An NVRTC of a newer major version than the driver is passed over, with the reason in
    /// the list of what was tried; one of the driver's major version (or older) is taken.
    func testNVRTCNewerThanTheDriverIsPassedOver() throws {
        let nv = try nvrtc()
        let same = try NVRTC.load(driverVersion: nv.version.major * 1000 + 990)
        XCTAssertTrue(same.version == nv.version, "\(same.version) from \(same.library.path)")
        let olderDriver = (nv.version.major - 1) * 1000 + 80
        do {
            let other = try NVRTC.load(driverVersion: olderDriver)
            // Another NVRTC on this machine fits the older driver.
            XCTAssertLessThanOrEqual(other.version.major, nv.version.major - 1)
        } catch {
            XCTAssertTrue("\(error)".contains("NVRTC \(nv.version.major).\(nv.version.minor) is newer than the driver (CUDA \(nv.version.major - 1).8)"), "\(error)")
        }
    }

    func testCompileErrorsCarryTheLog() throws {
        let nv = try nvrtc()
        XCTAssertThrowsError(try nv.compile("extern \"C\" __global__ void k() { undefined_thing(); }", target: .ptx(75))) { e in
            XCTAssertTrue("\(e)".contains("undefined_thing"), "\(e)")
        }
    }

    func testTargetPrefersExactCubin() throws {
        let nv = try nvrtc()
        // An architecture this NVRTC knows (sm_80 for NVIDIA's; the emulator's knows sm_90 only).
        let known = nv.supportedArchitectures.contains(80) ? 80 : (nv.supportedArchitectures.first ?? 80)
        XCTAssertEqual(nv.target(forArchitecture: known), .cubin(known))
        if let top = nv.supportedArchitectures.max() {
            // A GPU newer than NVRTC knows gets PTX for the newest architecture it does know.
            XCTAssertEqual(nv.target(forArchitecture: top + 100), .ptx(top))
        }
    }

    func testKernelCacheRoundTripAndBrokenEntries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = KernelCache(directory: dir)
        XCTAssertNil(cache.load(key: "k1"))
        let payload: [UInt8] = (0..<5000).map { UInt8($0 % 253) }
        cache.store(key: "k1", binary: payload)
        XCTAssertEqual(cache.load(key: "k1"), payload)
        XCTAssertNil(cache.load(key: "k2"))
        // Corrupt the entry: it is dropped (and the caller recompiles), never fatal.
        let file = cache.file(for: Array("k1".utf8))
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count - 1] ^= 0xff
        try bytes.write(to: file)
        XCTAssertNil(cache.load(key: "k1"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file.path))
        // Truncated entry.
        cache.store(key: "k1", binary: payload)
        try Data(try Data(contentsOf: file).prefix(40)).write(to: file)
        XCTAssertNil(cache.load(key: "k1"))
        // No temporary files are left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
        XCTAssertEqual(left, [])
    }

    func testLibrarySearchIncludesWheelLayouts() {
        let env = ["EMBER_PYTHON_SITE": "/opt/py/site-packages", "EMBER_CUDA_LIBRARY_PATH": "/opt/cuda/lib"]
        // Only existing site directories are listed; the explicit one is kept when it exists.
        let c = CUDALibraries.candidates(CUDALibraries.nvrtc, environment: env)
        XCTAssertEqual(c.first, "/opt/cuda/lib/libnvrtc.so.13")
        XCTAssertTrue(c.contains("libnvrtc.so.12"))
        XCTAssertTrue(c.contains("/usr/local/cuda/lib64/libnvrtc.so.12"))
    }

    func testMissingDriverIsReportedWithPaths() {
        // The driver the rest of the process uses (the emulator's, say) is restored afterwards.
        let saved = ProcessInfo.processInfo.environment["EMBER_CUDA_DRIVER"]
        setenv("EMBER_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1)
        defer { if let saved { setenv("EMBER_CUDA_DRIVER", saved, 1) } else { unsetenv("EMBER_CUDA_DRIVER") } }
        if FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libcuda.so.1") { return }
        XCTAssertThrowsError(try CUDALibraries.open(CUDALibraries.driver)) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/libcuda.so.1") && "\(e)".contains("libcuda.so.1"), "\(e)")
        }
    }
}

