import EmberCPU
import Foundation
import XCTest

/// The intra-op pool: every index runs exactly once, from one caller, from several callers
/// at once (the pool serves one and the others fall back), and from nested calls.
final class ParallelTests: XCTestCase {
    private func coverage(_ n: Int, grain: Int) -> [Int] {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
        hits.initialize(repeating: 0, count: n)
        defer { hits.deallocate() }
        parallelFor(n, grain: grain) { r in for i in r { hits[i] += 1 } }
        return Array(UnsafeBufferPointer(start: hits, count: n))
    }

    func testEveryIndexRunsOnce() {
        for (n, grain) in [(1, 1), (7, 1), (1000, 10), (100_003, 1000), (1 << 20, 1 << 14)] {
            XCTAssertEqual(coverage(n, grain: grain), Array(repeating: 1, count: n), "n \(n) grain \(grain)")
        }
        // Many small jobs back to back (the workers' spin path).
        for _ in 0..<2000 { XCTAssertEqual(coverage(64, grain: 1).reduce(0, +), 64) }
    }

    func testConcurrentAndNestedCallers() {
        let group = DispatchGroup()
        let lock = NSLock()
        var bad = 0
        for t in 0..<6 {
            group.enter()
            Thread {
                defer { group.leave() }
                for k in 0..<200 {
                    let n = 500 + (t * 37 + k) % 300
                    let outer = UnsafeMutablePointer<Int>.allocate(capacity: n)
                    outer.initialize(repeating: 0, count: n)
                    parallelFor(n, grain: 16) { r in
                        for i in r {
                            // A nested parallel loop (inline inside a pool job, else wherever it can run).
                            let slots = UnsafeMutablePointer<Int>.allocate(capacity: 4)
                            slots.initialize(repeating: 0, count: 4)
                            parallelTasks(4) { j in slots[j] = j }
                            let s = slots[0] + slots[1] + slots[2] + slots[3]
                            slots.deallocate()
                            outer[i] += 1 + (s == 6 ? 0 : 1000)
                        }
                    }
                    let ok = (0..<n).allSatisfy { outer[$0] == 1 }
                    outer.deallocate()
                    if !ok { lock.lock(); bad += 1; lock.unlock() }
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(bad, 0)
    }
}
