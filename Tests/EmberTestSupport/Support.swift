import EmberCore
import Foundation
#if canImport(XCTest)
import XCTest
#endif

/// A JSON number, or "inf"/"-inf"/"nan".
public func number(_ v: Any) -> Double {
    if let s = v as? String { return s == "nan" ? .nan : (s == "inf" ? .infinity : -.infinity) }
    if let b = v as? Bool { return b ? 1 : 0 }
    return (v as! NSNumber).doubleValue
}
public func numbers(_ v: Any?) -> [Double] { (v as! [Any]).map(number) }

public func dtypeNamed(_ s: String) -> DType { DType.allCases.first { $0.description == s }! }

/// A tensor from a fixture's `{"shape", "dtype", "data"}`.
public func fixtureTensor(_ v: Any?) -> Tensor {
    let d = v as! [String: Any]
    let shape = (d["shape"] as! [Any]).map { Int(number($0)) }
    return Tensor(numbers(d["data"]), shape: shape, dtype: dtypeNamed(d["dtype"] as! String))
}

/// Loads a JSON fixture from a test bundle.
public func loadJSON(_ bundle: Bundle, _ name: String) -> [String: Any] {
    guard let url = bundle.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
          let data = try? Data(contentsOf: url),
          let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        fatalError("cannot load Fixtures/\(name).json")
    }
    return obj
}

/// Tolerances by dtype (relative, absolute).
public func tolerance(_ d: DType) -> (Double, Double) {
    switch d {
    case .float64: (1e-9, 1e-10)
    case .float32: (2e-4, 2e-5)
    case .float16: (2e-3, 1e-3)
    case .bfloat16: (1.6e-2, 1e-2)
    default: (0, 0)
    }
}

/// Compares values; returns a description of the first mismatch, or nil.
public func mismatch(_ got: [Double], _ want: [Double], _ d: DType, scale: Double = 1) -> String? {
    if got.count != want.count { return "count \(got.count) != \(want.count)" }
    let (rtol, atol) = tolerance(d)
    for i in 0..<got.count {
        let g = got[i], w = want[i]
        if g.isNaN && w.isNaN { continue }
        if g == w { continue }
        if Swift.abs(g - w) > atol * scale + rtol * Swift.abs(w) {
            return "element \(i): got \(g), expected \(w) (got \(Array(got.prefix(6))), expected \(Array(want.prefix(6))))"
        }
    }
    return nil
}
#if canImport(XCTest)

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

/// Runs one test of this test binary again in a child process, with `environment` added to
/// this one's and crash backtraces off, and returns its exit status and its output (standard
/// output and error together). For checks that the program stops with a message. Nil when
/// not running from an `.xctest` binary.
public func runTestInChild(_ test: String, environment: [String: String]) throws -> (status: Int32, output: String)? {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0])
    guard exe.lastPathComponent.hasSuffix(".xctest") else { return nil }
    let p = Process()
    p.executableURL = exe
    p.arguments = [test]
    p.environment = ProcessInfo.processInfo.environment.merging(environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { a, _ in a }) { _, b in b }
    let out = Pipe()
    p.standardError = out
    p.standardOutput = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
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
