/// What a derivative sees when the engine runs it.
public struct BackwardContext {
    /// Gradient of the loss with respect to the node's output.
    public let grad: Tensor
    /// The node's output (a detached alias), when the op asked to save it.
    public let output: Tensor?
    /// True when the backward pass records a graph of its own (`createGraph: true`):
    /// derivatives then recompute from inputs rather than use the saved output.
    public let createGraph: Bool
    let needs: [Bool]
    /// Whether input `i` wants a gradient (lets a derivative skip needless work).
    public func needsGrad(_ i: Int) -> Bool { needs[i] }
}

/// A recorded operation: the edge from an output back to its inputs and the derivative
/// that maps the output's gradient to the inputs' gradients.
///
/// A node holds its inputs (strong, no cycle: inputs never point forward) and, if the
/// derivative needs it, a detached alias of the output, never the output itself.
public final class Node {
    public let name: String
    var inputs: [Tensor?]
    var saved: [(tensor: Tensor, version: Int)]
    var output: Tensor?
    var derivative: ((BackwardContext) throws -> [Tensor?])?
    var preHooks: [(id: Int, hook: (Tensor) throws -> Tensor?)] = []
    /// A non-leaf tensor that asked `retainGrad()`; set weakly to avoid a cycle.
    weak var retainer: Tensor?
    var released = false

    init(name: String, inputs: [Tensor?], saved: [Tensor], output: Tensor?,
         derivative: @escaping (BackwardContext) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.saved = saved.map { ($0, $0.storage.version) }
        self.output = output
        self.derivative = derivative
    }

    /// Drops everything backward needed (the graph is freed after backward).
    func release() {
        released = true
        inputs = []
        saved = []
        output = nil
        derivative = nil
    }
}

@inline(__always) func anyNeedsGrad(_ a: Tensor) -> Bool {
    a.requiresGrad && GradMode.isEnabled
}
@inline(__always) func anyNeedsGrad(_ a: Tensor, _ b: Tensor) -> Bool {
    (a.requiresGrad || b.requiresGrad) && GradMode.isEnabled
}
@inline(__always) func anyNeedsGrad(_ a: Tensor, _ b: Tensor, _ c: Tensor) -> Bool {
    (a.requiresGrad || b.requiresGrad || c.requiresGrad) && GradMode.isEnabled
}
func anyNeedsGrad(_ ts: [Tensor]) -> Bool {
    ts.contains { $0.requiresGrad } && GradMode.isEnabled
}

/// Records `out` as produced by op `name` from `inputs`, with `derivative` written next to
/// the op's forward code. Call only when `anyNeedsGrad(...)` is true.
///
/// - Parameters:
///   - save: tensors the derivative reads; backward throws if any of them is modified in
///     place afterwards (PyTorch's version-counter rule).
///   - saveOutput: keep a detached alias of `out` for `BackwardContext.output`.
func record(_ out: Tensor, _ name: String, _ inputs: [Tensor], save: [Tensor] = [], saveOutput: Bool = false,
            _ derivative: @escaping (BackwardContext) throws -> [Tensor?]) {
    var s = save
    var alias: Tensor? = nil
    if saveOutput {
        let a = out.detach()
        alias = a
        s.append(a)
    }
    out.gradFn = Node(name: name, inputs: inputs.map { $0.requiresGrad ? $0 : nil }, saved: s, output: alias,
                      derivative: derivative)
}

/// A handle that removes a registered hook.
public struct HookHandle {
    let remove_: () -> Void
    public func remove() { remove_() }
}

nonisolated(unsafe) private var nextHookID = 0
private let hookLock = Lock()

extension Tensor {
    /// Registers a hook that runs with this tensor's gradient during backward; returning
    /// a tensor replaces the gradient (`register_hook`). The hook may throw: the error
    /// reaches the caller of `backward`.
    @discardableResult
    public func registerHook(_ hook: @escaping (Tensor) throws -> Tensor?) -> HookHandle {
        checked { try require(requiresGrad, "registerHook: cannot register a hook on a tensor that doesn't require gradient") }
        let id = hookLock.withLock { nextHookID += 1; return nextHookID }
        if let node = gradFn {
            node.preHooks.append((id, hook))
            return HookHandle { [weak node] in node?.preHooks.removeAll { $0.id == id } }
        }
        leafHooks.append(hook)
        let index = leafHooks.count - 1
        return HookHandle { [weak self] in
            if let self, index < self.leafHooks.count { self.leafHooks[index] = { _ in nil } }
        }
    }

    /// Makes backward store this non-leaf tensor's gradient in `grad` (`retain_grad`).
    public func retainGrad() {
        if let node = gradFn { node.retainer = self }
    }
}
