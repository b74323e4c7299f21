import EmberTestSupport
import Foundation
import XCTest
@testable import EmberData
@testable import Ember

func fixturePath(_ name: String) -> String {
    let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
    return Bundle.module.url(forResource: parts[0], withExtension: parts[1], subdirectory: "Fixtures")!.path
}

func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }

/// A fresh temporary directory, removed after the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ember-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

final class GzipIDXTests: XCTestCase {
    func testEveryBlockKindAndMultiMember() throws {
        let payload = bytes(fixturePath("payload.bin"))
        for name in ["payload.l0.gz", "payload.l1.gz", "payload.l9.gz", "payload.fixed.gz", "payload.multi.gz"] {
            XCTAssertEqual(try Gzip.decompress(bytes(fixturePath(name))), payload, name)
        }
    }

    func testCorruptAndTruncatedStreamsThrow() {
        let gz = bytes(fixturePath("payload.l9.gz"))
        var flipped = gz
        flipped[gz.count / 2] ^= 0x5a
        XCTAssertThrowsError(try Gzip.decompress(flipped))
        XCTAssertThrowsError(try Gzip.decompress(Array(gz.prefix(gz.count / 2))))
        XCTAssertThrowsError(try Gzip.decompress(Array(gz.prefix(5))))
        var badTrailer = gz
        badTrailer[gz.count - 6] ^= 1
        XCTAssertThrowsError(try Gzip.decompress(badTrailer)) { XCTAssertEqual($0 as? DataError, .corrupt("gzip: CRC-32 mismatch")) }
        XCTAssertThrowsError(try Gzip.decompress(bytes(fixturePath("payload.l9.gz")), limit: 100))
    }

    func testIDXParsingAndHostileHeaders() throws {
        // A valid 2×3 uint8 file and a 2-element int32 file.
        let ok: [UInt8] = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]
        let t = try IDX.parse(ok)
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.toArray(Int.self), [1, 2, 3, 4, 5, 6])
        let i32 = try IDX.parse([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff])
        XCTAssertEqual(i32.toArray(Int.self), [256, -1])
        XCTAssertThrowsError(try IDX.parse([1, 0, 8, 1, 0, 0, 0, 1, 7]))  // wrong magic
        XCTAssertThrowsError(try IDX.parse([0, 0, 8, 2, 0, 0, 0, 2]))  // truncated header
        XCTAssertThrowsError(try IDX.parse(Array(ok.dropLast())))  // truncated data
        // Absurd dimensions: rejected before any allocation.
        XCTAssertThrowsError(try IDX.parse([0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1])) {
            XCTAssertTrue("\($0)".contains("need more data"), "\($0)")
        }
        XCTAssertThrowsError(try IDX.parse([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))  // unknown type
        XCTAssertThrowsError(try IDX.read("/nonexistent/file"))
    }

    func testFashionMNISTWhenInstalled() throws {
        guard FileManager.default.fileExists(atPath: FashionMNIST.debianRoot) else {
            throw XCTSkip("dataset-fashion-mnist is not installed")
        }
        let test = try FashionMNIST(train: false)
        XCTAssertEqual(test.images.shape, [10_000, 28, 28])
        XCTAssertEqual(test.images.dtype, .uint8)
        XCTAssertEqual(test.labels.toArray(Int.self).prefix(10), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
        XCTAssertThrowsError(try FashionMNIST(root: "/nonexistent", train: true)) { e in
            XCTAssertTrue("\(e)".contains("apt-get install dataset-fashion-mnist"), "\(e)")
        }
    }
}

final class SafeTensorsTests: XCTestCase {
    func sample() -> StateDict {
        let (sd, _) = try! SafeTensors.load(fixturePath("python.safetensors"))
        return sd
    }

    /// A file written by Python's safetensors reads in Ember; Ember writes the same bytes.
    func testByteCompatibleWithPython() throws {
        let (sd, meta) = try SafeTensors.load(fixturePath("python.safetensors"))
        XCTAssertEqual(meta, ["format": "pt"])
        XCTAssertEqual(Set(sd.keys), ["weight", "bias", "ids", "mask", "half", "bf", "small", "bytes", "layer.0.weight"])
        XCTAssertEqual(sd["bias"]!.dtype, .float64)
        XCTAssertEqual(sd["bias"]!.toArray(Double.self), [0, 1, 2, 3, 4])
        XCTAssertEqual(sd["ids"]!.shape, [2, 3])
        XCTAssertEqual(sd["mask"]!.toArray(Bool.self), [true, false, true])
        XCTAssertEqual(sd["bytes"]!.toArray(Int.self), [0, 255, 7])
        XCTAssertEqual(sd["half"]!.dtype, .float16)
        XCTAssertEqual(sd["bf"]!.dtype, .bfloat16)
        XCTAssertEqual(SafeTensors.serialize(sd, metadata: meta), bytes(fixturePath("python.safetensors")))
        if ProcessInfo.processInfo.environment["EMBER_WRITE_FIXTURES"] != nil {
            // Regenerates the file Scripts/make_nn_fixtures.py reads back with Python.
            let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
            try SafeTensors.save(sd, to: dir.appendingPathComponent("ember_written.safetensors").path, metadata: meta)
        }
    }

    func testHostileFilesThrowTypedErrors() {
        let good = bytes(fixturePath("python.safetensors"))
        func header(_ json: String, data: Int = 0) -> [UInt8] {
            var h = Array(json.utf8)
            var n = UInt64(h.count).littleEndian
            var out = withUnsafeBytes(of: &n) { Array($0) }
            out += h
            h = [UInt8](repeating: 0, count: data)
            return out + h
        }
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("truncated", Array(good.prefix(good.count - 3))),
            ("huge header length", [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f] + [UInt8](repeating: 0x20, count: 16)),
            ("not json", header("{not json}")),
            ("offsets beyond data", header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: 4)),
            ("shape vs offsets", header(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8)),
            ("absurd shape", header(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: 8)),
            ("unknown dtype", header(#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#, data: 1)),
            ("negative", header(#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#, data: 1)),
            ("overlap", header(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#, data: 3)),
        ]
        for (name, b) in cases {
            XCTAssertThrowsError(try SafeTensors.deserialize(b), name) { XCTAssertTrue($0 is DataError, "\(name): \($0)") }
        }
    }

    func testCheckpointRoundTripAndAtomicReplace() throws {
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("model.safetensors").path
        let net = FashionModels.mlp()
        let opt = Adam(net.parameters(), lr: 1e-3)
        try crossEntropy(net(Tensor.randn([4, 28, 28])), Tensor([1, 2, 3, 4])).backward()
        opt.step()
        try Checkpoint(model: net.stateDict(), optimizer: opt.stateDict(), values: ["epoch": "3"]).save(to: path)
        let ck = try Checkpoint.load(path)
        XCTAssertEqual(ck.values["epoch"], "3")
        let net2 = FashionModels.mlp()
        try net2.loadStateDict(ck.model)
        for (a, b) in zip(net.parameters(), net2.parameters()) { XCTAssertEqual(a.scalars, b.scalars) }
        let opt2 = Adam(net2.parameters(), lr: 5)
        try opt2.loadStateDict(ck.optimizer!)
        XCTAssertEqual(opt2.paramGroups[0].lr, 1e-3)
        XCTAssertEqual(opt2.stateDict().state[0]!["exp_avg"]!.scalars, opt.stateDict().state[0]!["exp_avg"]!.scalars)
        // Saving again replaces the file and leaves no temporary behind.
        try Checkpoint(model: net.stateDict(), values: ["epoch": "4"]).save(to: path)
        XCTAssertEqual(try Checkpoint.load(path).values["epoch"], "4")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"])
        XCTAssertThrowsError(try Checkpoint(model: net.stateDict()).save(to: dir.appendingPathComponent("missing/dir/x").path))
    }

    /// The crash test: a child process saves checkpoints in a loop and is killed with
    /// SIGKILL at random moments; the file on disk always loads completely (old or new).
    func testKilledSaveLeavesAValidFile() throws {
        if let path = ProcessInfo.processInfo.environment["EMBER_SAVE_LOOP"] {
            var i = 0
            while true {
                let sd = StateDict([("w", Tensor.full([256, 1024], Double(i))), ("i", Tensor(scalar: i))])
                try SafeTensors.save(sd, to: path)
                i += 1
            }
        }
        #if os(Linux)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0])
        guard exe.lastPathComponent.hasSuffix(".xctest") else { throw XCTSkip("not running from an .xctest binary") }
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("ck.safetensors").path
        for round in 0..<6 {
            let p = Process()
            p.executableURL = exe
            p.arguments = ["EmberNNTests.SafeTensorsTests/testKilledSaveLeavesAValidFile"]
            p.environment = ProcessInfo.processInfo.environment.merging(["EMBER_SAVE_LOOP": path]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Let it write a few files, then kill it mid-write.
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: path) && Date() < deadline { usleep(10_000) }
            usleep(UInt32(30_000 + round * 17_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let (sd, _) = try SafeTensors.load(path)
            let i = sd["i"]!.item()
            XCTAssertEqual(sd["w"]!.min().item(), i)
            XCTAssertEqual(sd["w"]!.max().item(), i)
        }
        #else
        throw XCTSkip("the kill test runs on Linux")
        #endif
    }
}
