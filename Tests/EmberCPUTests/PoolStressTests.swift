import EmberCPU
import Foundation
import XCTest

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
