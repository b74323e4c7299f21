import Foundation
#if os(Windows)
import WinSDK
#endif

/// A native library opened at run time (dlopen / LoadLibrary), so that Ember builds
/// without it and works where it is missing.
public final class DynamicLibrary: @unchecked Sendable {
    public let path: String
    let handle: UnsafeMutableRawPointer

    /// Why a library could not be opened: every path tried, with the system's reason.
    public struct LoadError: Error, CustomStringConvertible {
        public let library: String
        public let tried: [(path: String, reason: String)]
        public var description: String {
            "\(library) not found; tried:\n" + tried.map { "  \($0.path): \($0.reason)" }.joined(separator: "\n")
        }
    }

    init(path: String, handle: UnsafeMutableRawPointer) {
        self.path = path
        self.handle = handle
    }

    /// Opens the first of: the path in environment variable `environment`, then each
    /// candidate (sonames are searched on the system's library path). `global` makes its
    /// symbols visible to libraries it loads later (RTLD_GLOBAL; Open MPI's plugins need it).
    /// `accept` may turn down a library that loads (its reason is listed with the others,
    /// and the search goes on): a version that cannot work here, for instance.
    public static func open(_ library: String, environment: String? = nil, candidates: [String],
                            global: Bool = false, accept: ((DynamicLibrary) -> String?)? = nil) throws -> DynamicLibrary {
        var paths: [String] = []
        if let environment, let p = ProcessInfo.processInfo.environment[environment], !p.isEmpty { paths.append(p) }
        paths += candidates
        var tried: [(String, String)] = []
        for p in paths {
            #if os(Windows)
            let lib = LoadLibraryA(p).map { DynamicLibrary(path: p, handle: UnsafeMutableRawPointer($0)) }
            let failure = lib == nil ? "LoadLibrary error \(GetLastError())" : ""
            #else
            let lib = dlopen(p, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)).map { DynamicLibrary(path: p, handle: $0) }
            let failure = lib == nil ? dlerror().map { String(cString: $0) } ?? "unknown error" : ""
            #endif
            guard let lib else { tried.append((p, failure)); continue }
            if let refused = accept?(lib) { tried.append((p, refused)); continue }  // stays loaded: harmless
            return lib
        }
        throw LoadError(library: library, tried: tried)
    }

    /// The first of `names` the library exports, as `T`; otherwise throws `error` of a
    /// message that names the library and what it lacks ("…/libx.so has no f").
    public func require<T>(_ names: [String], as _: T.Type = T.self, error: (String) -> Error) throws -> T {
        for n in names { if let f = symbol(n, as: T.self) { return f } }
        throw error(names.count == 1 ? "\(path) has no \(names[0])" : "\(path) has none of \(names.joined(separator: ", "))")
    }

    /// The address of `name` as a C function type, or nil.
    public func symbol<T>(_ name: String, as: T.Type) -> T? {
        #if os(Windows)
        guard let p = GetProcAddress(HMODULE(OpaquePointer(handle)), name) else { return nil }
        return unsafeBitCast(p, to: T.self)
        #else
        guard let p = dlsym(handle, name) else { return nil }
        return unsafeBitCast(p, to: T.self)
        #endif
    }
}
