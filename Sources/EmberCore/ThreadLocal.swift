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

/// A value per thread, created on first use in each thread and released when the thread
/// exits (pthread keys, or fiber-local storage on Windows).
public final class ThreadLocal<Value: AnyObject>: @unchecked Sendable {
    private let make: () -> Value
    #if os(Windows)
    private let key: DWORD
    #else
    private var key = pthread_key_t()
    #endif

    public init(_ make: @escaping () -> Value) {
        self.make = make
        #if os(Windows)
        key = FlsAlloc { p in if let p { Unmanaged<AnyObject>.fromOpaque(p).release() } }
        #else
        pthread_key_create(&key) { p in
            #if os(Linux)
            if let p { Unmanaged<AnyObject>.fromOpaque(p).release() }
            #else
            Unmanaged<AnyObject>.fromOpaque(p).release()
            #endif
        }
        #endif
    }

    /// This thread's value.
    public var value: Value {
        #if os(Windows)
        if let p = FlsGetValue(key) { return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as! Value }
        let v = make()
        FlsSetValue(key, Unmanaged.passRetained(v as AnyObject).toOpaque())
        return v
        #else
        if let p = pthread_getspecific(key) { return unsafeDowncast(Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue(), to: Value.self) }
        let v = make()
        pthread_setspecific(key, Unmanaged.passRetained(v as AnyObject).toOpaque())
        return v
        #endif
    }
}
