import Foundation
#if os(Windows)
import WinSDK
#endif

/// A tiny mutual-exclusion lock (no Foundation class on the hot path).
final class Lock: @unchecked Sendable {
    private let m = NSLock()
    @inline(__always) func withLock<R>(_ body: () throws -> R) rethrows -> R {
        m.lock(); defer { m.unlock() }
        return try body()
    }
}

/// Per-thread state: grad mode. Stored in native thread-local storage so that
/// `withNoGrad` on one thread never affects another.
final class ThreadState {
    @exclusivity(unchecked) var gradEnabled = true

    #if os(Windows)
    private static let key: DWORD = FlsAlloc { p in
        if let p { Unmanaged<ThreadState>.fromOpaque(p).release() }
    }
    #else
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            #if os(Linux)
            if let p { Unmanaged<ThreadState>.fromOpaque(p).release() }
            #else
            Unmanaged<ThreadState>.fromOpaque(p).release()
            #endif
        }
        return k
    }()
    #endif

    static var current: ThreadState {
        #if os(Windows)
        if let p = FlsGetValue(key) { return Unmanaged<ThreadState>.fromOpaque(p).takeUnretainedValue() }
        let s = ThreadState()
        FlsSetValue(key, Unmanaged.passRetained(s).toOpaque())
        return s
        #else
        if let p = pthread_getspecific(key) { return Unmanaged<ThreadState>.fromOpaque(p).takeUnretainedValue() }
        let s = ThreadState()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
        #endif
    }
}

/// Grad mode, scoped per thread.
public enum GradMode {
    /// Whether operations on this thread record the autograd graph.
    public static var isEnabled: Bool {
        get { ThreadState.current.gradEnabled }
        set { ThreadState.current.gradEnabled = newValue }
    }
}

/// Runs `body` with graph recording disabled on this thread (`torch.no_grad()`).
///
///     let y = withNoGrad { w * 2 }   // y.requiresGrad == false
@discardableResult
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    try withGradMode(false, body)
}

/// Runs `body` with graph recording enabled on this thread (`torch.enable_grad()`).
@discardableResult
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    try withGradMode(true, body)
}

@inline(__always)
func withGradMode<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
    let s = ThreadState.current
    let saved = s.gradEnabled
    s.gradEnabled = enabled
    defer { s.gradEnabled = saved }
    return try body()
}
