import EmberLoader
import Foundation

/// NVRTC, the CUDA run-time compiler, opened with dlopen: Ember's kernels are CUDA C
/// source compiled when first used, so a new CUDA (and a new GPU) needs no rebuild.
public final class NVRTC: @unchecked Sendable {
    public let library: DynamicLibrary
    public let version: (major: Int, minor: Int)
    /// Real architectures NVRTC can emit a CUBIN for (e.g. 75, 80, 86, 89, 90).
    public let supportedArchitectures: [Int]

    typealias Program = OpaquePointer
    typealias FnVersion = @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32
    typealias FnCreate = @convention(c) (UnsafeMutablePointer<Program?>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
                                         UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias FnCompile = @convention(c) (Program?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias FnSize = @convention(c) (Program?, UnsafeMutablePointer<Int>) -> Int32
    typealias FnGet = @convention(c) (Program?, UnsafeMutablePointer<CChar>) -> Int32
    typealias FnDestroy = @convention(c) (UnsafeMutablePointer<Program?>) -> Int32
    typealias FnError = @convention(c) (Int32) -> UnsafePointer<CChar>?
    typealias FnNumArchs = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    typealias FnArchs = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32

    private let create: FnCreate
    private let compileFn: FnCompile
    private let ptxSize: FnSize, ptx: FnGet
    private let cubinSize: FnSize?, cubin: FnGet?
    private let logSize: FnSize, log: FnGet
    private let destroy: FnDestroy
    private let errorString: FnError?

    /// Loads NVRTC (see `CUDALibraries` for where it is looked for). With the driver's
    /// version (`cuDriverGetVersion`, 12080 for CUDA 12.8), an NVRTC of a newer major
    /// version is passed over: the driver cannot load what it compiles (within one major
    /// version, CUBINs load on an older driver, and Ember prefers CUBINs).
    public static func load(driverVersion: Int? = nil) throws -> NVRTC {
        try NVRTC(CUDALibraries.open(CUDALibraries.nvrtc) { lib in
            guard let driverVersion, let f = lib.symbol("nvrtcVersion", as: FnVersion.self) else { return nil }
            var major: Int32 = 0, minor: Int32 = 0
            guard f(&major, &minor) == 0, Int(major) > driverVersion / 1000 else { return nil }
            return "NVRTC \(major).\(minor) is newer than the driver (CUDA \(driverVersion / 1000).\(driverVersion % 1000 / 10)), which could not load its kernels"
        })
    }

    init(_ lib: DynamicLibrary) throws {
        library = lib
        func fn<T>(_ name: String, _ t: T.Type) throws -> T { try lib.require([name], as: t) { CUDAError.libraryNotFound($0) } }
        let v = try fn("nvrtcVersion", FnVersion.self)
        var major: Int32 = 0, minor: Int32 = 0
        _ = v(&major, &minor)
        version = (Int(major), Int(minor))
        create = try fn("nvrtcCreateProgram", FnCreate.self)
        compileFn = try fn("nvrtcCompileProgram", FnCompile.self)
        ptxSize = try fn("nvrtcGetPTXSize", FnSize.self)
        ptx = try fn("nvrtcGetPTX", FnGet.self)
        cubinSize = lib.symbol("nvrtcGetCUBINSize", as: FnSize.self)
        cubin = lib.symbol("nvrtcGetCUBIN", as: FnGet.self)
        logSize = try fn("nvrtcGetProgramLogSize", FnSize.self)
        log = try fn("nvrtcGetProgramLog", FnGet.self)
        destroy = try fn("nvrtcDestroyProgram", FnDestroy.self)
        errorString = lib.symbol("nvrtcGetErrorString", as: FnError.self)
        var archs: [Int] = []
        if let n = lib.symbol("nvrtcGetNumSupportedArchs", as: FnNumArchs.self),
           let a = lib.symbol("nvrtcGetSupportedArchs", as: FnArchs.self) {
            var count: Int32 = 0
            if n(&count) == 0, count > 0 {
                var buf = [Int32](repeating: 0, count: Int(count))
                if a(&buf) == 0 { archs = buf.map(Int.init) }
            }
        }
        supportedArchitectures = archs
    }

    /// What to compile for: a CUBIN for one real architecture (`sm_90`), or PTX for a
    /// virtual one (`compute_90`) that the driver compiles when loading.
    public enum Target: Equatable, Sendable, CustomStringConvertible {
        case cubin(Int)
        case ptx(Int)
        public var description: String {
            switch self {
            case .cubin(let a): "sm_\(a)"
            case .ptx(let a): "compute_\(a)"
            }
        }
    }

    /// The best target for a device of compute capability `arch` (e.g. 90): its exact CUBIN
    /// when NVRTC supports it, else PTX for the newest architecture NVRTC knows that the
    /// device can run (the driver compiles it).
    public func target(forArchitecture arch: Int) -> Target {
        if supportedArchitectures.isEmpty || supportedArchitectures.contains(arch) { return .cubin(arch) }
        let below = supportedArchitectures.filter { $0 <= arch }
        return .ptx(below.max() ?? supportedArchitectures.min()!)
    }

    private func message(_ code: Int32) -> String {
        errorString.flatMap { $0(code) }.map { String(cString: $0) } ?? "NVRTC error \(code)"
    }

    /// Compiles CUDA C `source` for `target`. Returns the CUBIN or the PTX (NUL-terminated).
    /// - Throws: `CUDAError.compile` with NVRTC's log.
    public func compile(_ source: String, name: String = "ember.cu", target: Target, options extra: [String] = []) throws -> [UInt8] {
        var program: Program?
        let rc = source.withCString { s in name.withCString { n in create(&program, s, n, 0, nil, nil) } }
        guard rc == 0, program != nil else { throw CUDAError.compile("nvrtcCreateProgram: \(message(rc))") }
        defer { _ = destroy(&program) }
        let options = ["--gpu-architecture=\(target)", "--std=c++17", "-default-device"] + extra
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        let compiled = cOptions.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { compileFn(program, Int32(options.count), $0.baseAddress) }
        if compiled != 0 {
            var n = 0
            _ = logSize(program, &n)
            var buf = [CChar](repeating: 0, count: max(n, 1))
            _ = log(program, &buf)
            let text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CUDAError.compile("\(message(compiled)) (\(target), \(name)):\n\(text)")
        }
        var n = 0
        if case .cubin = target, let cubinSize, let cubin {
            _ = cubinSize(program, &n)
            var buf = [CChar](repeating: 0, count: n)
            _ = cubin(program, &buf)
            return buf.map { UInt8(bitPattern: $0) }
        }
        _ = ptxSize(program, &n)
        var buf = [CChar](repeating: 0, count: n)
        _ = ptx(program, &buf)
        return buf.map { UInt8(bitPattern: $0) }
    }
}

/// Compiled kernels on disk, keyed by source, options, NVRTC and driver versions, in the
/// user's cache directory (`EMBER_CACHE_DIR` to override). An entry is written to a
/// temporary file and renamed into place; an entry that does not read back whole (wrong
/// header, length or checksum, or another key) is deleted and compiled again, never fatal.
public struct KernelCache: Sendable {
    public let directory: URL

    public init(directory: URL? = nil) {
        self.directory = directory ?? KernelCache.defaultDirectory()
    }

    public static func defaultDirectory(_ env: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let d = env["EMBER_CACHE_DIR"] { return URL(fileURLWithPath: d) }
        #if os(Windows)
        let base = env["LOCALAPPDATA"] ?? NSTemporaryDirectory()
        return URL(fileURLWithPath: base).appendingPathComponent("ember").appendingPathComponent("kernels")
        #elseif canImport(Darwin)
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent("Library/Caches/ember/kernels")
        #else
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("ember/kernels") }
        let home = env["HOME"] ?? NSTemporaryDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/ember/kernels")
        #endif
    }

    static func fnv(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    private static let magic: [UInt8] = Array("EMBERK1\n".utf8)

    func file(for key: [UInt8]) -> URL {
        directory.appendingPathComponent(KernelCache.hex(KernelCache.fnv(key, seed: 0xcbf2_9ce4_8422_2325))
                                         + KernelCache.hex(KernelCache.fnv(key, seed: 0x8422_2325_cbf2_9ce4)) + ".bin")
    }

    /// The cached binary for `key`, or nil (a broken entry is removed).
    public func load(key: String) -> [UInt8]? {
        let k = Array(key.utf8)
        let url = file(for: k)
        guard let data = try? Data(contentsOf: url) else { return nil }
        let bytes = [UInt8](data)
        func bad() -> [UInt8]? { try? FileManager.default.removeItem(at: url); return nil }
        let m = KernelCache.magic.count
        guard bytes.count >= m + 24, Array(bytes[0..<m]) == KernelCache.magic else { return bad() }
        func u64(_ at: Int) -> UInt64 { bytes[at..<(at + 8)].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } }
        let keyLen = Int(u64(m)), payloadLen = Int(u64(m + 8))
        let start = m + 24
        guard keyLen >= 0, payloadLen >= 0, bytes.count == start + keyLen + payloadLen else { return bad() }
        let storedKey = Array(bytes[start..<(start + keyLen)])
        let payload = Array(bytes[(start + keyLen)...])
        guard storedKey == k, KernelCache.fnv(payload, seed: 0xcbf2_9ce4_8422_2325) == u64(m + 16) else { return bad() }
        return payload
    }

    /// Stores `binary` for `key` (atomically; failures to write are ignored: the cache is
    /// an optimisation).
    public func store(key: String, binary: [UInt8]) {
        let k = Array(key.utf8)
        var out = KernelCache.magic
        func put(_ v: UInt64) { for i in 0..<8 { out.append(UInt8((v >> (8 * UInt64(i))) & 0xff)) } }
        put(UInt64(k.count)); put(UInt64(binary.count)); put(KernelCache.fnv(binary, seed: 0xcbf2_9ce4_8422_2325))
        out += k
        out += binary
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            let final = file(for: k)
            let tmp = directory.appendingPathComponent(".\(final.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).\(UInt64.random(in: 0...UInt64.max)).tmp")
            try Data(out).write(to: tmp)
            #if os(Windows)
            if fm.fileExists(atPath: final.path) { _ = try? fm.removeItem(at: final) }
            do { try fm.moveItem(at: tmp, to: final) } catch { try? fm.removeItem(at: tmp) }
            #else
            if rename(tmp.path, final.path) != 0 { try? fm.removeItem(at: tmp) }
            #endif
        } catch {
            return
        }
    }
}
