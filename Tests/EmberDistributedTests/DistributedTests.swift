import Ember
import EmberTestSupport
import Foundation
import XCTest

/// Multi-process tests on one machine (loopback): each starts a job of this test binary
/// under `mpirun` and reads what the ranks printed. Skipped, with the reason, when no MPI
/// launcher is installed (CI installs Open MPI).
final class DistributedTests: XCTestCase {
    private func harness(_ flavor: MPIHarness.Flavor = .openMPI) throws -> MPIHarness {
        #if os(Linux) || os(macOS)
        guard CommandLine.arguments[0].hasSuffix(".xctest") || CommandLine.arguments[0].contains("xctest") else {
            throw XCTSkip("not running from an .xctest binary")
        }
        guard let h = MPIHarness.find(flavor) else {
            throw XCTSkip(flavor == .openMPI
                ? "no Open MPI launcher (apt-get install openmpi-bin libopenmpi-dev): multi-process tests skipped"
                : "MPICH is not installed (apt-get install mpich): MPICH tests skipped")
        }
        return h
        #else
        throw XCTSkip("multi-process tests run on Linux and macOS")
        #endif
    }

    private func expectOK(_ r: MPIHarness.Result, np: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for k in 0..<np {
            XCTAssertTrue(r.output.contains("EMBER-OK rank \(k)"), "\(what): rank \(k) did not pass (exit \(r.status)):\n\(r.output.suffix(3000))", file: file, line: line)
        }
        XCTAssertEqual(r.status, 0, "\(what): exit status", file: file, line: line)
        XCTAssertFalse(r.output.contains("EMBER-FAIL"), "\(what):\n\(r.output.suffix(3000))", file: file, line: line)
    }

    func testCollectivesTwoAndThreeRanks() throws {
        let h = try harness()
        for np in [2, 3] {
            let r = try h.run(scenario: "collectives", np: np)
            expectOK(r, np: np, "collectives with \(np) ranks")
            XCTAssertTrue(r.output.contains("EMBER-BACKEND rank 0: MPI (Open MPI)"), r.output.suffix(1000).description)
        }
    }

    func testCollectivesOnMPICH() throws {
        let h = try harness(.mpich)
        let r = try h.run(scenario: "collectives", np: 2)
        expectOK(r, np: 2, "collectives on MPICH")
        XCTAssertTrue(r.output.contains("EMBER-BACKEND rank 0: MPI (MPICH)"), r.output.suffix(1000).description)
    }

    /// NCCL with 2 ranks: collectives, send/recv and DDP on CUDA tensors. Runs where a GPU per rank is
    /// available, and on the CUDA emulator (`bash Scripts/cuda-emulator.sh swift test
    /// --filter EmberDistributedTests.DistributedTests/testNCCL`, as CI does).
    func testNCCLCollectivesAndDataParallelOnGPUs() throws {
        let h = try harness()
        useTemporaryCaches()  // the ranks compile kernels: into a directory this test removes
        guard Ember.CUDA.isAvailable else { throw XCTSkip("no usable GPU: \(Ember.CUDA.unavailableReason ?? "?")") }
        // A port nobody listens on now (the probe store closes when it goes away).
        let port = try { () throws -> Int in try TCPStore(port: 0, isServer: true, timeout: 5).port }()
        let env = ["EMBER_DIST_BACKEND": "nccl", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "\(port)"]
        if Ember.CUDA.deviceCount < 2 {
            // Two ranks on one GPU: refused up front, with what to do instead.
            let r = try h.run(scenario: "nccl", np: 2, env: env, timeout: 120)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.output.contains("needs one GPU per process") && r.output.contains("--nproc 1"), r.output.suffix(2000).description)
            throw XCTSkip("NCCL needs a GPU per rank: 2 ranks, \(Ember.CUDA.deviceCount) GPU (the refusal was checked)")
        }
        let r = try h.run(scenario: "nccl", np: 2, env: env, timeout: 600)
        expectOK(r, np: 2, "NCCL collectives and DDP")
        XCTAssertTrue(r.output.contains("EMBER-BACKEND rank 0: NCCL"), r.output.suffix(1000).description)
        XCTAssertTrue(r.output.contains("EMBER-P2P rank 1"), r.output.suffix(1000).description)
    }

    func testMismatchedShapesAreReported() throws {
        let h = try harness()
        let r = try h.run(scenario: "mismatch", np: 2)
        expectOK(r, np: 2, "mismatch")
        XCTAssertTrue(r.output.contains("EMBER-MISMATCH rank 1"), r.output.suffix(2000).description)
    }

    func testDataParallelMatchesOneProcessWithTheWholeBatch() throws {
        let h = try harness()
        let r = try h.run(scenario: "ddp", np: 2)
        expectOK(r, np: 2, "ddp")
    }

    func testDataParallelUnusedParameters() throws {
        let h = try harness()
        let r = try h.run(scenario: "ddp-unused", np: 2)
        expectOK(r, np: 2, "ddp-unused")
    }

    /// A rank killed with SIGKILL: the job ends, with a non-zero status, well within the
    /// timeout — never a silent hang.
    func testKilledRankEndsTheJob() throws {
        let h = try harness()
        let r = try h.run(scenario: "die", np: 3, env: ["EMBER_DIST_TIMEOUT": "10"], timeout: 90)
        XCTAssertFalse(r.timedOut, "the job hung after a rank died:\n\(r.output.suffix(2000))")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertFalse(r.output.contains("EMBER-UNEXPECTED"), r.output)
        XCTAssertLessThan(r.seconds, 40, "the job took \(r.seconds) s to notice a dead rank")
    }

    /// A rank that hangs: the others fail with a clear timeout error naming the operation.
    func testHungRankTimesOut() throws {
        let h = try harness()
        let r = try h.run(scenario: "hang", np: 2, env: ["EMBER_DIST_TIMEOUT": "3"], timeout: 90)
        XCTAssertFalse(r.timedOut, "the job hung:\n\(r.output.suffix(2000))")
        XCTAssertTrue(r.output.contains("EMBER-TIMEOUT rank 0: distributed: timeout: allReduce(sum) float32 [1000] on rank 0 of 2 did not finish within 3.0 s"),
                      r.output.suffix(2000).description)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(r.seconds, 40)
    }

    /// A missing MPI library gives an error that lists every path tried.
    func testMissingLibraryListsWhatWasTried() {
        XCTAssertThrowsError(try MPILibrary.load(candidates: ["/nonexistent/libmpi.so.40", "libnotmpi.so.99"])) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("/nonexistent/libmpi.so.40") && m.contains("libnotmpi.so.99") && m.contains("apt-get install"), m)
        }
    }

    /// WORLD_SIZE without an MPI launcher is refused with the command to use.
    func testLauncherEnvironmentIsChecked() throws {
        XCTAssertFalse(launchedByMPI(["WORLD_SIZE": "2"]))
        XCTAssertTrue(launchedByMPI(["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(launchedByMPI(["PMI_SIZE": "2", "PMI_RANK": "0"]))
        XCTAssertEqual(MPILibrary.candidates(environment: ["PMI_RANK": "0"]).first, "libmpich.so.12")
        XCTAssertEqual(MPILibrary.candidates(environment: ["OMPI_COMM_WORLD_RANK": "0"]).first, "libmpi.so.40")
    }
}
