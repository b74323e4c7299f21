import Ember
import EmberDistributed
import EmberTestSupport
import Foundation
import XCTest

#if !os(Windows)
/// The parts of the NCCL backend that run without a GPU: loading NCCL and handing its
/// 128-byte id from rank 0 to the others through the rendezvous store. (Communicators need
/// GPUs: `ember-gpu-check` machines.) Skipped, with the reason, when NCCL is not installed.
final class NCCLTests: XCTestCase {
    func testUniqueIdTravelsThroughTheStore() throws {
        let nccl: NCCLLibrary
        do { nccl = try NCCLLibrary.load() } catch {
            throw XCTSkip("NCCL not found (pip install nvidia-nccl-cu12): \(error)")
        }
        print("NCCL \(nccl.version) from \(nccl.library.path)")
        let server = try TCPStore(port: 0, isServer: true, timeout: 10)
        let port = server.port
        let world = 3
        var ids = [[UInt8]](repeating: [], count: world)
        let lock = NSLock()
        let group = DispatchGroup()
        for r in 0..<world {
            group.enter()
            Thread {
                defer { group.leave() }
                let store = r == 0 ? server : try! TCPStore(port: port, isServer: false, timeout: 10)
                let id = try! nccl.exchangeUniqueId(rank: r, store: store)
                lock.lock(); ids[r] = id; lock.unlock()
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(ids[0].count, 128)
        XCTAssertTrue(ids[0].contains { $0 != 0 })
        XCTAssertEqual(ids[1], ids[0])
        XCTAssertEqual(ids[2], ids[0])
    }

    func testNCCLBackendWithoutAGPUSaysSo() throws {
        useTemporaryCaches()
        if Ember.CUDA.isAvailable { throw XCTSkip("a GPU is present") }
        XCTAssertThrowsError(try Distributed.initProcessGroup(backend: .nccl)) { e in
            XCTAssertTrue("\(e)".contains("needs a GPU"), "\(e)")
        }
    }
}
#endif
