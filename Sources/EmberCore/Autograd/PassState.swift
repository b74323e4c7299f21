/// Everything one backward pass keeps while it runs: gradients waiting for their node,
/// leaves' gradients (committed only at the end), leaf hooks (run as soon as a leaf's
/// gradient is final), retained and captured gradients, callbacks queued by hooks, and the
/// gradients hooks asked to adopt. The engine's loop (`Engine.propagate`) calls into it;
/// nothing here outlives the pass.
final class PassState {
    /// A number unique in the process (`Autograd.currentPass`).
    let number: Int
    /// Gradients flowing into each node, summed over its outputs' uses.
    private var pending: [ObjectIdentifier: Tensor] = [:]
    /// Leaves in the order they first got a gradient, and their summed gradients.
    private var leafOrder: [Tensor] = []
    private var leafPending: [ObjectIdentifier: Tensor] = [:]
    /// Edges into each leaf from nodes that have not run yet: at zero its gradient is final.
    private var leafEdges: [ObjectIdentifier: Int] = [:]
    private var hooked = Set<ObjectIdentifier>()
    /// Non-leaf tensors that asked `retainGrad()` (or `Autograd.grad`'s inputs), with their gradients.
    private var retained: [(Tensor, Tensor)] = []
    private let captureIDs: Set<ObjectIdentifier>?
    private var captured: [ObjectIdentifier: Tensor] = [:]
    /// Queued by hooks (`Autograd.queueCallback`); run in order after every derivative.
    var callbacks: [() throws -> Void] = []
    /// Gradients to store as they are, not copied (`Autograd.adoptAsGradient`).
    var adopted = Set<ObjectIdentifier>()

    init(nodes: [Node], capture: [Tensor]?) {
        number = PassState.nextNumber()
        captureIDs = capture.map { Set($0.map { ObjectIdentifier($0) }) }
        for node in nodes {
            for case let t? in node.inputs where t.gradFn == nil { leafEdges[ObjectIdentifier(t), default: 0] += 1 }
        }
    }

    // MARK: the running pass on this thread

    /// The passes running on this thread, innermost last (a hook may run a backward of its own).
    private final class Stack { var passes: [PassState] = [] }
    private static let stack = ThreadLocal { Stack() }
    nonisolated(unsafe) private static var counter = 0
    private static let counterLock = Lock()
    private static func nextNumber() -> Int { counterLock.withLock { counter += 1; return counter } }

    static var current: PassState? { stack.value.passes.last }

    /// Runs `body` with `pass` as this thread's current pass.
    static func running<R>(_ pass: PassState, _ body: () throws -> R) rethrows -> R {
        let s = stack.value
        s.passes.append(pass)
        defer { s.passes.removeLast() }
        return try body()
    }

    // MARK: gradients

    /// Adds `g` (reduced to `t`'s shape and dtype) to what flows into `t`.
    func accumulate(_ t: Tensor, _ g: Tensor) {
        var g = g
        if g.shape != t.shape { g = g.sumTo(t.shape) }
        if g.dtype != t.dtype { g = g.to(t.dtype) }
        if let node = t.gradFn {
            let k = ObjectIdentifier(node)
            pending[k] = pending[k].map { $0 + g } ?? g
        } else {
            let k = ObjectIdentifier(t)
            if let prev = leafPending[k] { leafPending[k] = prev + g } else {
                leafPending[k] = g
                leafOrder.append(t)
            }
        }
    }

    /// The gradient flowing into `node`, which runs now (nil when nothing reached it).
    func takeGradient(of node: Node) -> Tensor? { pending.removeValue(forKey: ObjectIdentifier(node)) }

    /// `node`'s gradient after its pre-hooks: kept for a tensor that retains or captures it.
    func reached(_ node: Node, with g: Tensor) {
        guard let r = node.retainer else { return }
        retained.append((r, g))
        if let ids = captureIDs, ids.contains(ObjectIdentifier(r)) { captured[ObjectIdentifier(r)] = g }
    }

    // MARK: leaf hooks

    /// `node` has run: a leaf it fed whose gradient is now final runs its hooks (not at the
    /// end), so that a hook can start work, such as a data-parallel gradient reduction,
    /// while the rest of backward runs.
    func finished(_ node: Node) throws {
        for case let t? in node.inputs where t.gradFn == nil {
            let k = ObjectIdentifier(t)
            let left = leafEdges[k, default: 1] - 1
            leafEdges[k] = left
            if left == 0 { try runLeafHooks(t) }
        }
    }

    /// Leaves reached only from the roots themselves.
    func finishLeaves() throws {
        for leaf in leafOrder { try runLeafHooks(leaf) }
    }

    private func runLeafHooks(_ leaf: Tensor) throws {
        let k = ObjectIdentifier(leaf)
        guard !leaf.leafHooks.isEmpty, let g0 = leafPending[k], hooked.insert(k).inserted else { return }
        var g = g0
        for hook in leaf.leafHooks { if let r = try hook(g) { g = r } }
        leafPending[k] = g
    }

    /// Callbacks queued during this pass, in order (a callback may queue another).
    func runCallbacks() throws {
        var i = 0
        while i < callbacks.count {
            try callbacks[i]()
            i += 1
        }
    }

    // MARK: commit

    /// Everything succeeded: the gradients of `capture` (for `Autograd.grad`), or each leaf's
    /// gradient added to its `grad` and each retained one stored.
    func commit(_ capture: [Tensor]?, createGraph: Bool) -> [Tensor?] {
        if let capture {
            return capture.map { t in t.gradFn == nil ? leafPending[ObjectIdentifier(t)] : captured[ObjectIdentifier(t)] }
        }
        for leaf in leafOrder {
            var g = leafPending.removeValue(forKey: ObjectIdentifier(leaf))!
            if leaf.grad == nil && !createGraph && (adopted.contains(ObjectIdentifier(g)) || PassState.solelyOwned(&g)) {
                leaf.grad = g
            } else {
                PassState.add(g, to: leaf, createGraph)
            }
        }
        for (t, g) in retained { PassState.add(g, to: t, createGraph) }
        return []
    }

    /// Whether nothing but `g` holds the gradient tensor or its memory, and its elements
    /// fill that memory in order: it then becomes the leaf's `.grad` as it is (PyTorch's
    /// AccumulateGrad takes such a gradient over too) instead of being copied.
    private static func solelyOwned(_ g: inout Tensor) -> Bool {
        guard g.gradFn == nil, g.isContiguous, g.layout.offset == 0, g.count * g.dtype.itemSize == g.storage.byteCount else { return false }
        return isKnownUniquelyReferenced(&g) && isKnownUniquelyReferenced(&g.storage)
    }

    /// `t.grad += g`, giving the tensor a gradient of its own (never an alias of another's).
    private static func add(_ g: Tensor, to t: Tensor, _ createGraph: Bool) {
        if let prev = t.grad {
            t.grad = createGraph ? prev + g : withNoGrad { prev + g }
        } else {
            t.grad = createGraph ? g : withNoGrad { g.clone() }
        }
    }
}
