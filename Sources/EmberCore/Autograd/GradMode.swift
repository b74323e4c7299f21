/// Per-thread state: grad mode. `withNoGrad` on one thread never affects another.
final class ThreadState {
    @exclusivity(unchecked) var gradEnabled = true
    private static let local = ThreadLocal { ThreadState() }
    static var current: ThreadState { local.value }
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
