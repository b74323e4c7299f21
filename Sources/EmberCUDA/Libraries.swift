import EmberLoader
import Foundation

/// Where the NVIDIA libraries are looked for at run time: nothing of CUDA is needed to
/// build Ember. Each library is tried from, in order: its environment variable (a path),
/// the directories in `EMBER_CUDA_LIBRARY_PATH`, the system's library path (sonames, newest
/// first), CUDA installations (`CUDA_PATH`, `CUDA_HOME`, /usr/local/cuda), and the layouts of
/// NVIDIA's PyPI wheels (`site-packages/nvidia/<component>/lib`, `nvidia/cu13/lib`) in the
/// active virtual environment, conda environment, user site and system site directories.
public enum CUDALibraries {
    /// A library Ember can use, with its file names per platform.
    public struct Spec: Sendable {
        public let name: String
        public let environment: String
        /// Wheel component directories (`nvidia/<component>/lib`).
        public let wheelComponents: [String]
        public let linuxNames: [String]
        public let windowsNames: [String]
        public let macNames: [String]
    }

    public static let driver = Spec(
        name: "CUDA driver", environment: "EMBER_CUDA_DRIVER", wheelComponents: [],
        linuxNames: ["libcuda.so.1", "libcuda.so"], windowsNames: ["nvcuda.dll"], macNames: [])
    public static let nvrtc = Spec(
        name: "NVRTC", environment: "EMBER_NVRTC_LIBRARY", wheelComponents: ["cu13", "cuda_nvrtc"],
        linuxNames: ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        windowsNames: ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"], macNames: [])
    public static let cublas = Spec(
        name: "cuBLAS", environment: "EMBER_CUBLAS_LIBRARY", wheelComponents: ["cu13", "cublas"],
        linuxNames: ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
        windowsNames: ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"], macNames: [])
    public static let cudnn = Spec(
        name: "cuDNN", environment: "EMBER_CUDNN_LIBRARY", wheelComponents: ["cudnn"],
        linuxNames: ["libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"],
        windowsNames: ["cudnn64_9.dll", "cudnn64_8.dll"], macNames: [])
    public static let nccl = Spec(
        name: "NCCL", environment: "EMBER_NCCL_LIBRARY", wheelComponents: ["nccl", "cu13"],
        linuxNames: ["libnccl.so.2", "libnccl.so"], windowsNames: [], macNames: [])

    /// Site-packages directories of the Python environments in sight (for NVIDIA's wheels).
    public static func pythonSiteDirectories(environment env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var roots: [String] = []
        let fm = FileManager.default
        func pythonDirs(under lib: String) -> [String] {
            guard let entries = try? fm.contentsOfDirectory(atPath: lib) else { return [] }
            return entries.filter { $0.hasPrefix("python3") }.sorted(by: >).flatMap {
                ["\(lib)/\($0)/site-packages", "\(lib)/\($0)/dist-packages"]
            }
        }
        if let v = env["EMBER_PYTHON_SITE"] { roots += v.split(separator: ":").map(String.init) }
        if let v = env["VIRTUAL_ENV"] { roots += pythonDirs(under: "\(v)/lib") + ["\(v)/Lib/site-packages"] }
        if let v = env["CONDA_PREFIX"] { roots += pythonDirs(under: "\(v)/lib") + ["\(v)/Lib/site-packages"] }
        if let home = env["HOME"] {
            roots += pythonDirs(under: "\(home)/.local/lib")
            if let versions = try? fm.contentsOfDirectory(atPath: "\(home)/.pyenv/versions") {
                for v in versions.sorted(by: >) { roots += pythonDirs(under: "\(home)/.pyenv/versions/\(v)/lib") }
            }
        }
        roots += pythonDirs(under: "/usr/local/lib") + pythonDirs(under: "/usr/lib") + ["/usr/lib/python3/dist-packages"]
        if let appdata = env["APPDATA"] { roots.append("\(appdata)\\Python\\site-packages") }
        var seen = Set<String>()
        return roots.filter { fm.fileExists(atPath: $0) && seen.insert($0).inserted }
    }

    /// Every path tried for `spec`, in order.
    public static func candidates(_ spec: Spec, environment env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        #if os(Windows)
        let names = spec.windowsNames
        let sep = "\\"
        #elseif canImport(Darwin)
        let names = spec.macNames
        let sep = "/"
        #else
        let names = spec.linuxNames
        let sep = "/"
        #endif
        if names.isEmpty { return [] }
        var dirs: [String] = []
        if let p = env["EMBER_CUDA_LIBRARY_PATH"] { dirs += p.split(separator: ":").map(String.init) }
        var out: [String] = []
        for d in dirs { for n in names { out.append(d + sep + n) } }
        out += names  // the system's search path
        var installs: [String] = []
        for k in ["CUDA_PATH", "CUDA_HOME"] { if let v = env[k] { installs.append(v) } }
        installs.append("/usr/local/cuda")
        for i in installs {
            for sub in ["lib64", "lib", "bin", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"] {
                for n in names { out.append(i + sep + sub + sep + n) }
            }
        }
        for site in pythonSiteDirectories(environment: env) {
            for c in spec.wheelComponents {
                for sub in ["lib", "bin"] { for n in names { out.append([site, "nvidia", c, sub, n].joined(separator: sep)) } }
            }
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    /// Opens `spec`'s library: the environment variable's path, then `candidates`; `accept`
    /// may turn one down with a reason (the search then goes on).
    /// - Throws: `CUDAError.libraryNotFound` listing every path tried and why it failed.
    public static func open(_ spec: Spec, accept: ((DynamicLibrary) -> String?)? = nil) throws -> DynamicLibrary {
        do {
            return try DynamicLibrary.open(spec.name, environment: spec.environment, candidates: candidates(spec), accept: accept)
        } catch let e as DynamicLibrary.LoadError {
            // Last resort for the wheels: ask the Python on PATH where its packages live.
            if !spec.wheelComponents.isEmpty, let sites = askPythonForSites(), !sites.isEmpty {
                var env = ProcessInfo.processInfo.environment
                env["EMBER_PYTHON_SITE"] = (sites + [env["EMBER_PYTHON_SITE"]].compactMap { $0 }).joined(separator: ":")
                let more = candidates(spec, environment: env).filter { c in !e.tried.contains { $0.path == c } }
                if let lib = try? DynamicLibrary.open(spec.name, candidates: more, accept: accept) { return lib }
            }
            throw CUDAError.libraryNotFound("\(e)")
        }
    }

    nonisolated(unsafe) private static var pythonSites: [String]?? = nil
    private static let pythonLock = NSLock()

    /// `site.getsitepackages()` and the user site of `python3` (asked once; nil without Python).
    static func askPythonForSites() -> [String]? {
        pythonLock.lock(); defer { pythonLock.unlock() }
        if let cached = pythonSites { return cached }
        #if os(Windows)
        let exe = "python", launcher = "C:\\Windows\\System32\\cmd.exe"
        let args = ["/c", exe, "-c", "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"]
        #else
        let launcher = "/usr/bin/env"
        let args = ["python3", "-c", "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"]
        #endif
        let p = Process()
        p.executableURL = URL(fileURLWithPath: launcher)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        var result: [String]? = nil
        if (try? p.run()) != nil {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            if p.terminationStatus == 0 {
                result = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            }
        }
        pythonSites = .some(result)
        return result
    }
}

/// Errors of the CUDA backend (anything that touches the driver or a library).
public enum CUDAError: Error, CustomStringConvertible, Equatable {
    case libraryNotFound(String)
    /// A driver or library call failed: the call and CUDA's own message.
    case driver(String)
    /// NVRTC rejected a kernel: the log.
    case compile(String)
    case noDevice(String)

    public var description: String {
        switch self {
        case .libraryNotFound(let m): "CUDA: library not found: \(m)"
        case .driver(let m): "CUDA: \(m)"
        case .compile(let m): "CUDA: kernel compilation failed: \(m)"
        case .noDevice(let m): "CUDA: \(m)"
        }
    }
}
