import Foundation
import XCTest

/// Runs this test binary under an MPI launcher, one scenario per job: the child side is
/// `DistributedWorkerTests.testWorker`, which reads `EMBER_DIST_SCENARIO`.
struct MPIHarness {
    enum Flavor { case openMPI, mpich }
    let launcher: String
    let flavor: Flavor

    /// The launcher to use: Open MPI's `mpirun` (or `EMBER_TEST_MPIRUN`), or MPICH's
    /// `mpiexec.mpich` / `mpirun.mpich` for `flavor == .mpich`.
    static func find(_ flavor: Flavor = .openMPI) -> MPIHarness? {
        let names: [String]
        switch flavor {
        case .openMPI: names = [ProcessInfo.processInfo.environment["EMBER_TEST_MPIRUN"], "mpirun.openmpi", "mpirun"].compactMap { $0 }
        case .mpich: names = ["mpiexec.mpich", "mpirun.mpich", "mpiexec.hydra"]
        }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for n in names {
            let candidates = n.hasPrefix("/") ? [n] : path.map { "\($0)/\(n)" }
            for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
                if flavor == .openMPI {
                    // `mpirun` may be MPICH's: ask.
                    let out = (try? run([c, "--version"], env: [:], timeout: 20).output) ?? ""
                    if !out.contains("Open MPI") && !out.contains("OpenRTE") { continue }
                }
                return MPIHarness(launcher: c, flavor: flavor)
            }
        }
        return nil
    }

    struct Result {
        let status: Int32
        let output: String
        let seconds: Double
        let timedOut: Bool
    }

    /// Starts `np` ranks of this test binary running `scenario`.
    func run(scenario: String, np: Int, env extra: [String: String] = [:], timeout: Double = 120) throws -> Result {
        let exe = CommandLine.arguments[0]
        var args = [launcher]
        switch flavor {
        case .openMPI:
            if geteuid() == 0 { args.append("--allow-run-as-root") }
            args += ["--oversubscribe", "--bind-to", "none", "-np", "\(np)"]
        case .mpich:
            args += ["-np", "\(np)"]
        }
        args += [exe, "EmberDistributedTests.DistributedWorkerTests/testWorker"]
        var env = extra
        env["EMBER_DIST_SCENARIO"] = scenario
        env["SWIFT_BACKTRACE"] = "enable=no"
        env["EMBER_NUM_THREADS"] = "1"
        if flavor == .openMPI {
            env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        }
        return try MPIHarness.run(args, env: env, timeout: timeout)
    }

    static func run(_ args: [String], env extra: [String: String], timeout: Double) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: args[0])
        p.arguments = Array(args.dropFirst())
        p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ember-mpi-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: tmp.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let handle = try FileHandle(forWritingTo: tmp)
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        let start = Date()
        try p.run()
        var timedOut = false
        while p.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                p.terminate()
                usleep(500_000)
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                break
            }
            usleep(20_000)
        }
        p.waitUntilExit()
        try? handle.close()
        let output = (try? String(contentsOf: tmp, encoding: .utf8)) ?? ""
        return Result(status: p.terminationStatus, output: output, seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }
}
