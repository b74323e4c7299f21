import EmberTestSupport
import Foundation
import XCTest
@testable import EmberData
@testable import Ember

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
