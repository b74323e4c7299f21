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

/// A stress test of the pool's job hand-over (600 000 jobs; not part of the emulated run).
final class PoolStressTests: XCTestCase {
    /// Back-to-back jobs with different chunk counts and contexts while other threads compete
    /// for the cores (so pool workers get preempted mid-claim): every chunk of every job runs
    /// exactly once, with its own job's closure. A worker that read a job's function, context
    /// or chunk count before checking which job the claim belonged to once ran a chunk of one
    /// job with another's context (memory corruption in training, seen under DDP).
    func testLateWorkersNeverRunAChunkOfAnotherJob() {
        let stop = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        stop.initialize(to: 0)
        defer { stop.deallocate() }
        let noise = DispatchGroup()
        for _ in 0..<2 {  // busy threads: the scheduler preempts pool workers at random points
            noise.enter()
            Thread {
                var x = 0
                while stop.pointee == 0 { x &+= 1; if x % 4096 == 0 { sched_yield() } }
                noise.leave()
            }.start()
        }
        var wrong = 0
        let jobs = 600_000
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        defer { slots.deallocate() }
        for j in 0..<jobs {
            let chunks = 2 + j % 7
            slots.initialize(repeating: 0, count: 16)
            let tag = j  // captured: a chunk run with another job's closure sees another tag
            parallelTasks(chunks) { c in
                if c < 16 { slots[c] += tag == j ? 1 : 1000 } else { slots[15] += 1000 }
            }
            for c in 0..<16 where slots[c] != (c < chunks ? 1 : 0) { wrong += 1 }
        }
        stop.pointee = 1
        _ = noise.wait(timeout: .now() + 10)
        XCTAssertEqual(wrong, 0, "chunks ran twice, not at all, or with another job's context")
    }
}

/// A required symbol: the first of several names the library exports, else the caller's
/// error with a message naming the library and what it lacks.
final class DynamicLibraryTests: XCTestCase {
    struct Missing: Error { let message: String }

    func testRequireFindsTheFirstExportedNameOrSaysWhatIsMissing() throws {
        #if os(Linux)
        let lib = try DynamicLibrary.open("libm", candidates: ["libm.so.6"])
        let cosine: @convention(c) (Double) -> Double = try lib.require(["ember_no_such_cos", "cos"]) { Missing(message: $0) }
        XCTAssertEqual(cosine(0), 1)
        XCTAssertThrowsError(try lib.require(["ember_no_such_symbol"], as: (@convention(c) () -> Void).self) { Missing(message: $0) }) {
            XCTAssertEqual(($0 as? Missing)?.message, "libm.so.6 has no ember_no_such_symbol")
        }
        XCTAssertThrowsError(try lib.require(["ember_a", "ember_b"], as: (@convention(c) () -> Void).self) { Missing(message: $0) }) {
            XCTAssertEqual(($0 as? Missing)?.message, "libm.so.6 has none of ember_a, ember_b")
        }
        #else
        throw XCTSkip("uses libm.so.6")
        #endif
    }
}
