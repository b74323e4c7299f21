import EmberCore
@testable import EmberCUDA
import EmberNN
import Foundation
import XCTest


/// cuDNN's convolution API as Ember calls it: every symbol resolves in the real library and
/// the descriptors accept Ember's arguments (no GPU needed for these). Skipped without cuDNN
/// (pip install nvidia-cudnn-cu12); CI checks the calls themselves on the CUDA emulator.
final class CUDNNLibraryTests: XCTestCase {
    func testRealCuDNNHasEverySymbolAndTakesTheDescriptors() throws {
        let dnn: CUDNN
        do { dnn = try CUDNN.load() } catch { throw XCTSkip("cuDNN not found: \(error)") }
        print("cuDNN \(dnn.version) from \(dnn.library.path)")
        XCTAssertGreaterThanOrEqual(dnn.version, 7000)
        var t: OpaquePointer?, f: OpaquePointer?, c: OpaquePointer?
        XCTAssertEqual(dnn.createTensor(&t), 0)
        XCTAssertEqual(dnn.setTensor4d(t, 0, 0, 64, 32, 14, 14), 0, dnn.message(dnn.setTensor4d(t, 0, 0, 64, 32, 14, 14)))
        XCTAssertEqual(dnn.createFilter(&f), 0)
        XCTAssertEqual(dnn.setFilter4d(f, 0, 0, 64, 32, 3, 3), 0)
        XCTAssertEqual(dnn.createConv(&c), 0)
        XCTAssertEqual(dnn.setConv2d(c, 1, 1, 1, 1, 1, 1, 1, 0), 0)
        XCTAssertEqual(dnn.setMathType(c, 3), 0)
        // Invalid arguments are refused (the library checks what Ember passes).
        XCTAssertNotEqual(dnn.setTensor4d(t, 0, 0, 0, 32, 14, 14), 0)
        XCTAssertEqual(dnn.destroyTensor(t), 0)
        XCTAssertEqual(dnn.destroyFilter(f), 0)
        XCTAssertEqual(dnn.destroyConv(c), 0)
    }
}

