import Ember
import Foundation
import XCTest

#if !os(Windows)
/// The rendezvous store over real loopback TCP, with clients on several threads.
final class TCPStoreTests: XCTestCase {
    func testSetGetAddCheckDelete() throws {
        let server = try TCPStore(port: 0, isServer: true, timeout: 5)
        XCTAssertGreaterThan(server.port, 0)
        let client = try TCPStore(port: server.port, isServer: false, timeout: 5)
        try client.set("id", [1, 2, 3, 255])
        XCTAssertEqual(try server.get("id"), [1, 2, 3, 255])
        XCTAssertTrue(try server.check("id"))
        XCTAssertFalse(try server.check("nope"))
        XCTAssertEqual(try client.add("n", 5), 5)
        XCTAssertEqual(try server.add("n", -2), 3)
        XCTAssertTrue(try client.delete("id"))
        XCTAssertFalse(try client.check("id"))
        XCTAssertFalse(try client.delete("id"))
        // An empty value and a long one.
        try client.set("empty", [])
        XCTAssertEqual(try server.get("empty"), [])
        let long = (0..<200_000).map { UInt8($0 % 251) }
        try client.set("long", long)
        XCTAssertEqual(try server.get("long"), long)
    }

    func testGetWaitsForAnotherClient() throws {
        let server = try TCPStore(port: 0, isServer: true, timeout: 10)
        let port = server.port
        let started = Date()
        let t = Thread {
            usleep(300_000)
            let c = try! TCPStore(port: port, isServer: false, timeout: 10)
            try! c.set("late", Array("hello".utf8))
        }
        t.start()
        XCTAssertEqual(String(decoding: try server.get("late"), as: UTF8.self), "hello")
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.25)
    }

    func testConcurrentAddsAreAtomicAndBarrierReleasesEveryone() throws {
        let server = try TCPStore(port: 0, isServer: true, timeout: 10)
        let port = server.port
        let group = DispatchGroup()
        let errors = NSLock()
        var failures: [String] = []
        for _ in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let c = try TCPStore(port: port, isServer: false, timeout: 10)
                    for _ in 0..<100 { try c.add("counter", 1) }
                    try c.barrier("b", worldSize: 4)
                } catch {
                    errors.lock(); failures.append("\(error)"); errors.unlock()
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(failures, [])
        XCTAssertEqual(try server.add("counter", 0), 400)
    }

    func testTimeoutsNameWhatIsMissing() throws {
        let server = try TCPStore(port: 0, isServer: true, timeout: 0.5)
        let t0 = Date()
        XCTAssertThrowsError(try server.get("never")) { e in
            XCTAssertTrue("\(e)".contains("'never'") && "\(e)".contains("timeout"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5)
        XCTAssertThrowsError(try server.barrier("lonely", worldSize: 2)) { e in
            XCTAssertTrue("\(e)".contains("1 of 2 processes arrived"), "\(e)")
        }
    }

    func testUnreachableStoreFailsWithinTheTimeout() throws {
        // Find a free port, then close it: nobody listens there.
        let probe = try TCPStore(port: 0, isServer: true, timeout: 1)
        let port = probe.port
        _ = probe
        let t0 = Date()
        XCTAssertThrowsError(try TCPStore(host: "127.0.0.1", port: port + 1 == 65536 ? 1 : port + 1, isServer: false, timeout: 0.6)) { e in
            XCTAssertTrue("\(e)".contains("could not reach the store"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5)
    }

    func testEnvironmentWithoutPortIsExplained() {
        if ProcessInfo.processInfo.environment["MASTER_PORT"] != nil { return }
        XCTAssertThrowsError(try TCPStore.fromEnvironment(timeout: 1)) { e in
            XCTAssertTrue("\(e)".contains("MASTER_PORT is not set"), "\(e)")
        }
    }
}
#endif
