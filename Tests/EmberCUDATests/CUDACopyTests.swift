import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// Pinned memory and copies that do not wait (`pin_memory`, `non_blocking`).
final class CUDACopyTests: XCTestCase {
    func gpu() throws -> Device {
        guard gpuAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        return .cuda(0)
    }

    func testPageableCopiesAreSnapshotsAndStagingBuffersAreNotReusedEarly() throws {
        let g = try gpu()
        // Many queued copies through the staging pool; each source changes right after its
        // copy is queued. A staging block reused before its copy ran would mix the values.
        var onGPU: [Tensor] = []
        for i in 0..<40 {
            let h = Tensor.full([3000 + i], Double(i))
            onGPU.append(h.to(g))
            h.fill_(-1)
        }
        for (i, t) in onGPU.enumerated() {
            XCTAssertEqual(t.to(.cpu).min().item(), Double(i), "copy \(i)")
            XCTAssertEqual(t.to(.cpu).max().item(), Double(i), "copy \(i)")
        }
    }

    func testPinnedTensorsAndNonBlockingCopies() throws {
        let g = try gpu()
        Ember.manualSeed(5)
        let h = Tensor.randn([257, 3])
        let p = h.pinMemory()
        XCTAssertTrue(p.isPinned)
        XCTAssertFalse(h.isPinned)
        XCTAssertEqual(p.toArray(Float.self), h.toArray(Float.self))
        let d = p.to(g, nonBlocking: true)
        let back = (d * 2).to(.cpu, nonBlocking: true)
        XCTAssertTrue(back.isPinned)
        Ember.CUDA.synchronize()
        XCTAssertEqual(back.toArray(Float.self), (h * 2).toArray(Float.self))
        // A pinned tensor dropped while its copy may be in flight goes back to the pool and
        // is handed out again only after that copy: many rounds must all arrive intact.
        var results: [Tensor] = []
        for i in 0..<30 {
            let src = Tensor.full([1000], Double(i)).pinMemory()
            results.append(src.to(g, nonBlocking: true))
        }
        for (i, t) in results.enumerated() { XCTAssertEqual(t.to(.cpu).sum().item(), Double(1000 * i), "round \(i)") }
        XCTAssertGreaterThan(Ember.CUDA.pinnedMemoryReserved, 0)
    }

    /// With two GPUs, copies to each go through the same pinned pool: each copy and the
    /// event that guards its staging block must be queued in its own device's context
    /// (a GPU refuses a stream or event of another context). Run with 2 devices in CI
    /// (EMBER_EMULATOR_DEVICES=2), where the emulator refuses them as a GPU would.
    func testCopiesToTwoDevicesShareThePinnedPool() throws {
        _ = try gpu()
        guard Ember.CUDA.deviceCount >= 2 else { throw XCTSkip("needs 2 GPUs (EMBER_EMULATOR_DEVICES=2 on the emulator)") }
        let host = Tensor.randn([64, 33])
        for round in 0..<3 {
            for i in [1, 0, 1] {
                // Pageable sources are staged in pinned blocks, reused once their copies are done.
                let d = host.to(.cuda(i)) * Double(round + 1)
                XCTAssertEqual(d.device, .cuda(i))
                XCTAssertEqual(d.to(.cpu).toArray(Float.self), (host * Double(round + 1)).toArray(Float.self))
                let pinned = host.pinMemory()
                let e = pinned.to(.cuda(i), nonBlocking: true).sum()
                XCTAssertEqual(e.item(), host.sum().item(), accuracy: 1e-3)
            }
        }
        // A worker thread with no context of its own copies to the second device.
        nonisolated(unsafe) var result: [Float] = []
        let done = DispatchSemaphore(value: 0)
        Thread { result = host.to(.cuda(1)).to(.cpu).toArray(Float.self); done.signal() }.start()
        done.wait()
        XCTAssertEqual(result, host.toArray(Float.self))
    }

    func testDataLoaderPinsEveryBatchTensorInWorkers() throws {
        let g = try gpu()
        let x = Tensor.randn([50, 4]), y = Tensor.arange(50)
        for workers in [0, 2] {
            let loader = DataLoader(count: 50, batchSize: 8, numWorkers: workers, seed: 1, pinMemory: true) { idx in
                let i = Tensor(idx)
                return (x.indexSelect(0, i), y.indexSelect(0, i))
            }
            var seen = 0
            try loader.forEach { (bx, by) in
                XCTAssertTrue(bx.isPinned && by.isPinned, "workers \(workers): batch not pinned")
                let dx = bx.to(g, nonBlocking: true)
                XCTAssertEqual(dx.to(.cpu).toArray(Float.self), bx.toArray(Float.self))
                seen += by.count
            }
            XCTAssertEqual(seen, 50)
        }
        // Pinned blocks return to the pool once their copies are done, also when the
        // worker threads that pin the next batches ask (they need the device's context for
        // that): after the first epochs, later ones reserve no more pinned memory. (How many
        // batches the workers hold at once varies with timing: up to 2 more 1 MiB blocks are
        // allowed; without reuse it grows by 4 per epoch.)
        let loader = DataLoader(count: 400, batchSize: 100, numWorkers: 2, seed: 1, pinMemory: true) { idx in
            Tensor.ones([idx.count, 2048])
        }
        var reserved: [Int] = []
        for _ in 0..<6 {
            try loader.forEach { (b: Tensor) in _ = b.to(g, nonBlocking: true).sum().item() }
            reserved.append(Ember.CUDA.pinnedMemoryReserved)
        }
        XCTAssertLessThanOrEqual(reserved[5] - reserved[1], 2 << 20, "pinned memory reserved after each epoch: \(reserved)")
    }
}
