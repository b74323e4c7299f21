import ArgumentParser
import Ember
import Foundation

/// `ember launch --nproc N <command…>`: starts N copies of a command as one data-parallel
/// job on this machine (like `torchrun`). The processes are started by the MPI launcher
/// that is installed (Open MPI's `mpirun` or MPICH's `mpiexec`), since the collectives run
/// on MPI; for several machines, call `mpirun` yourself with a host file.
struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command as N data-parallel processes on this machine (through MPI).",
        discussion: """
        Example: ember launch --nproc 2 ember train --model mlp
        Each process gets EMBER_NUM_THREADS = cores / N unless it is set. Several machines: use
        mpirun directly (mpirun -np 8 --hostfile hosts ember train …).
        """)

    @Option(help: "Number of processes.") var nproc = 2
    @Option(help: "The MPI launcher (default: EMBER_MPIRUN, else mpirun or mpiexec on PATH).") var mpirun: String?
    @Flag(help: "Print the launcher command before running it.") var verbose = false
    @Argument(parsing: .captureForPassthrough, help: "The command each process runs.") var command: [String] = []

    func validate() throws {
        guard nproc >= 1 else { throw ValidationError("--nproc must be at least 1") }
        guard !command.isEmpty else { throw ValidationError("give the command to run, e.g. ember launch --nproc 2 ember train") }
    }

    func run() throws {
        var cmd = command
        if cmd.first == "--" { cmd.removeFirst() }
        // `ember` means this very executable (not whatever `ember` is first on PATH).
        if cmd.first == "ember", let me = Bundle.main.executablePath { cmd[0] = me }
        let (launcher, flavor) = try findLauncher()
        var args: [String] = []
        var env = ProcessInfo.processInfo.environment
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if env["EMBER_NUM_THREADS"] == nil { env["EMBER_NUM_THREADS"] = "\(max(1, cores / nproc))" }
        // The rendezvous store for engines that need one (NCCL): rank 0 serves it.
        if env["MASTER_ADDR"] == nil { env["MASTER_ADDR"] = "127.0.0.1" }
        if env["MASTER_PORT"] == nil, let port = Launch.freePort() { env["MASTER_PORT"] = "\(port)" }
        switch flavor {
        case "openmpi":
            if geteuid() == 0 { args.append("--allow-run-as-root") }
            if nproc > cores { args.append("--oversubscribe") }
            args += ["--bind-to", "none"]
        default:
            break
        }
        args += ["-np", "\(nproc)"] + cmd
        if verbose { print(([launcher] + args).joined(separator: " ")) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: launcher)
        p.arguments = args
        p.environment = env
        try p.run()
        // Ctrl-C reaches the launcher too (same process group), which ends every rank; this
        // process waits for it and returns its status.
        signal(SIGINT, SIG_IGN)
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw ExitCode(p.terminationStatus) }
    }

    /// A TCP port nobody listens on now (the store's port for this job).
    static func freePort() -> Int? {
        #if os(Windows)
        return 29500
        #else
        guard let probe = try? TCPStore(port: 0, isServer: true, timeout: 2) else { return nil }
        return probe.port
        #endif
    }

    /// The MPI launcher and its family ("openmpi", "mpich").
    func findLauncher() throws -> (String, String) {
        let env = ProcessInfo.processInfo.environment
        var names = [mpirun, env["EMBER_MPIRUN"]].compactMap { $0 }
        names += ["mpirun", "mpiexec", "mpirun.openmpi", "mpiexec.mpich"]
        let path = (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        var tried: [String] = []
        for n in names {
            for c in n.contains("/") ? [n] : path.map({ "\($0)/\(n)" }) {
                tried.append(c)
                guard FileManager.default.isExecutableFile(atPath: c) else { continue }
                let out = versionText(c)
                if out.contains("Open MPI") || out.contains("OpenRTE") { return (c, "openmpi") }
                return (c, "mpich")
            }
        }
        throw ValidationError("""
            ember launch starts the processes with MPI, and no MPI launcher was found (looked for \(names.joined(separator: ", ")) on PATH).
            Install one: Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev (or mpich); macOS: brew install open-mpi; Windows: Microsoft MPI.
            """)
    }

    private func versionText(_ exe: String) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["--version"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        guard (try? p.run()) != nil else { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
