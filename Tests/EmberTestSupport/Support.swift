@_exported import EmberReference
import EmberCore
import Foundation
#if canImport(XCTest)
import XCTest
#endif

/// The committed fixtures (`Tests/EmberTestSupport/Fixtures`), shared by every test target:
/// PyTorch's values (`ops.json` from `Scripts/make_fixtures.py`, `nn.json` and
/// `training.safetensors` from `Scripts/make_nn_fixtures.py`) and data files.
public enum TestFixtures {
    /// The path of fixture file `name` (`"python.safetensors"`).
    public static func path(_ name: String) -> String {
        guard let dot = name.firstIndex(of: ".") else { fatalError("fixture \(name) has no extension") }
        let base = String(name[..<dot]), ext = String(name[name.index(after: dot)...])
        guard let url = Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Fixtures") else {
            fatalError("no fixture \(name)")
        }
        return url.path
    }

    /// A JSON fixture (`"nn"` for `nn.json`).
    public static func json(_ name: String) -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path(name + ".json")),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            fatalError("cannot load Fixtures/\(name).json")
        }
        return obj
    }

    /// The fixtures' directory in the source tree (where a regenerated fixture is written).
    public static var sourceDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    /// PyTorch's op cases (`ops.json`).
    public static let ops: Fixtures = {
        guard let f = try? Fixtures(url: URL(fileURLWithPath: path("ops.json"))) else { fatalError("cannot load Fixtures/ops.json") }
        return f
    }()

    /// PyTorch's OpInfo samples (`opinfo.json` + `opinfo.safetensors`).
    public static let opInfo: OpInfoFixtures = {
        do { return try OpInfoFixtures(besides: path("opinfo.json")) } catch { fatalError("cannot load the OpInfo fixtures: \(error)") }
    }()

    /// PyTorch's layers, losses, optimizers and schedulers (`nn.json`).
    public static let nn: [String: Any] = json("nn")
}

/// The path of fixture file `name` (`TestFixtures.path`).
public func fixturePath(_ name: String) -> String { TestFixtures.path(name) }

/// PyTorch's layers, losses, optimizers and schedulers (`nn.json`).
public var nnFixtures: [String: Any] { TestFixtures.nn }

/// The bytes of the file at `path`.
public func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }

/// This process's resident memory in bytes.
public func residentBytes() -> Int { Ember.residentMemoryBytes() }

#if canImport(XCTest)

/// A fresh temporary directory, removed after the test.
public func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// Asserts a tensor's values (and optionally shape) match.
public func assertClose(_ t: Tensor, _ want: [Double], shape: [Int]? = nil, scale: Double = 1, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    if let shape { XCTAssertEqual(t.shape, shape, message, file: file, line: line) }
    if let m = mismatch(t.toArray(Double.self), want, t.dtype == .float64 ? .float64 : .float32, scale: scale) {
        XCTFail("\(message): \(m)", file: file, line: line)
    }
}

/// Asserts a tensor equals a fixture tensor (shape and values).
public func assertClose(_ t: Tensor, fixture: Any?, scale: Double = 1, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    let want = fixtureTensor(fixture)
    XCTAssertEqual(t.shape, want.shape, "\(message) shape", file: file, line: line)
    if t.shape == want.shape { assertClose(t, want.toArray(Double.self), scale: scale, message, file: file, line: line) }
}
#endif

/// Runs `executable` with `arguments`, `environment` added to this process's and crash
/// backtraces off, and returns its exit status and its output (standard output and error
/// together). For checks that a program stops with a message.
public func runChild(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    p.environment = ProcessInfo.processInfo.environment.merging(environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { a, _ in a }) { _, b in b }
    let out = Pipe()
    p.standardError = out
    p.standardOutput = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}

/// Runs one test of this test binary again in a child process (`runChild`). Nil when not
/// running from an `.xctest` binary.
public func runTestInChild(_ test: String, environment: [String: String]) throws -> (status: Int32, output: String)? {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0])
    guard exe.lastPathComponent.hasSuffix(".xctest") else { return nil }
    return try runChild(exe, [test], environment: environment)
}

/// Points Ember's on-disk cache (compiled GPU kernels, `EMBER_CACHE_DIR`) at a directory this
/// test process creates under the temporary directory and removes at exit, so that the tests
/// write nothing outside directories they create. Call it before the first use of a GPU;
/// child processes inherit it. A cache directory already chosen by the caller's environment
/// is kept.
public func useTemporaryCaches() {
    _ = temporaryCacheDirectory
}

nonisolated(unsafe) private var temporaryCachePath: String?

private let temporaryCacheDirectory: String? = {
    guard ProcessInfo.processInfo.environment["EMBER_CACHE_DIR"] == nil else { return nil }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-test-cache-\(getpid())-\(UUID().uuidString)").path
    guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { return nil }
    setenv("EMBER_CACHE_DIR", dir, 1)
    temporaryCachePath = dir
    atexit { if let d = temporaryCachePath { try? FileManager.default.removeItem(atPath: d) } }
    return dir
}()
