import EmberTestSupport
import Foundation
import XCTest
@testable import EmberCore

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
            let dir = TestFixtures.sourceDirectory
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

    /// Python's writer puts an empty tensor at the offset of the tensor after it: valid,
    /// whatever order the header lists them in.
    func testEmptyTensorsShareOffsets() throws {
        for json in [#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#,
                     #"{"b":{"dtype":"U8","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#] {
            var n = UInt64(json.utf8.count).littleEndian
            let file = withUnsafeBytes(of: &n) { Array($0) } + Array(json.utf8) + [7, 9]
            let (sd, _) = try SafeTensors.deserialize(file)
            XCTAssertEqual(sd["a"]?.toArray(UInt8.self), [7, 9])
            XCTAssertEqual(sd["b"]?.count, 0)
        }
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
            p.arguments = ["EmberCoreTests.SafeTensorsTests/testKilledSaveLeavesAValidFile"]
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
