/// Runs backward passes: sort the graph once, walk it in reverse, reduce broadcast
/// gradients to each input's shape, and commit leaves' gradients only when every
/// derivative and hook has succeeded. The engine takes no lock and keeps no state
/// between passes, so a thrown error can neither deadlock nor poison the next pass.
enum Engine {
    /// Gradients flowing into the graph from `roots`; returns the gradients of `capture`
    /// (for `Autograd.grad`) or accumulates into leaves when `capture` is nil.
    static func run(roots: [(Tensor, Tensor)], retainGraph: Bool, createGraph: Bool,
                    capture: [Tensor]? = nil) throws -> [Tensor?] {
        // Topological order of the nodes reachable from the roots (iterative DFS).
        var order: [Node] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Node, Int)] = []
        for (root, _) in roots {
            guard let n = root.gradFn, visited.insert(ObjectIdentifier(n)).inserted else { continue }
            stack.append((n, 0))
            while let (node, i) = stack.last {
                if node.released {
                    throw EmberError.autograd(
                        "Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed) in \(node.name). Specify retainGraph: true if you need to backward through the graph a second time.")
                }
                if i < node.inputs.count {
                    stack[stack.count - 1].1 += 1
                    if let t = node.inputs[i], let child = t.gradFn, visited.insert(ObjectIdentifier(child)).inserted {
                        stack.append((child, 0))
                    }
                } else {
                    order.append(node)
                    stack.removeLast()
                }
            }
        }

        var pending: [ObjectIdentifier: Tensor] = [:]
        var leafOrder: [Tensor] = []
        var leafPending: [ObjectIdentifier: Tensor] = [:]
        var retained: [(Tensor, Tensor)] = []
        let captureIDs = capture.map { Set($0.map { ObjectIdentifier($0) }) }
        var captured: [ObjectIdentifier: Tensor] = [:]

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

        // Each leaf's gradient is final once every node that feeds it has run; its hooks
        // fire then (not at the end), so that a hook can start work — such as a
        // data-parallel gradient reduction — while the rest of backward runs.
        var leafEdges: [ObjectIdentifier: Int] = [:]
        for node in order {
            for case let t? in node.inputs where t.gradFn == nil { leafEdges[ObjectIdentifier(t), default: 0] += 1 }
        }
        var hooked = Set<ObjectIdentifier>()
        func runLeafHooks(_ leaf: Tensor) throws {
            let k = ObjectIdentifier(leaf)
            guard !leaf.leafHooks.isEmpty, let g0 = leafPending[k], hooked.insert(k).inserted else { return }
            var g = g0
            for hook in leaf.leafHooks { if let r = try hook(g) { g = r } }
            leafPending[k] = g
        }
        func finished(_ node: Node) throws {
            for case let t? in node.inputs where t.gradFn == nil {
                let k = ObjectIdentifier(t)
                let left = leafEdges[k, default: 1] - 1
                leafEdges[k] = left
                if left == 0 { try runLeafHooks(t) }
            }
        }

        let callbacks = CallbackQueue.current
        callbacks.stack.append([])
        callbacks.passes.append(CallbackQueue.nextPass())
        callbacks.adopted.append([])
        defer { callbacks.stack.removeLast(); callbacks.passes.removeLast(); callbacks.adopted.removeLast() }

        try withGradMode(createGraph) {
            for (root, g) in roots {
                try require(root.requiresGrad, "backward: element 0 of tensors does not require grad and does not have a gradFn")
                try require(g.shape == root.shape,
                            "backward: gradient has shape \(fmt(g.shape)) but the output has shape \(fmt(root.shape))")
                accumulate(root, g)
            }
            for node in order.reversed() {
                guard var g = pending.removeValue(forKey: ObjectIdentifier(node)) else { try finished(node); continue }
                for (_, hook) in node.preHooks { if let r = try hook(g) { g = r } }
                if let r = node.retainer { retained.append((r, g)) }
                if let r = node.retainer, let ids = captureIDs, ids.contains(ObjectIdentifier(r)) {
                    captured[ObjectIdentifier(r)] = g
                }
                for (t, v) in node.saved where t.storage.version != v {
                    throw EmberError.autograd(
                        "one of the variables needed for gradient computation has been modified by an inplace operation: [\(t.dtype) \(fmt(t.shape))], which is saved by \(node.name), is at version \(t.storage.version); expected version \(v) instead.")
                }
                guard let derivative = node.derivative else { try finished(node); continue }
                let ctx = BackwardContext(grad: g, output: node.output, createGraph: createGraph,
                                          needs: node.inputs.map { $0 != nil })
                let grads = try derivative(ctx)
                for (i, input) in node.inputs.enumerated() {
                    guard let input, i < grads.count, let gi = grads[i] else { continue }
                    accumulate(input, gi)
                }
                try finished(node)
            }
            // Leaves reached only from the roots themselves.
            for leaf in leafOrder { try runLeafHooks(leaf) }
            // Callbacks queued during this pass (`Autograd.queueCallback`), in order.
            var i = 0
            while i < callbacks.stack[callbacks.stack.count - 1].count {
                try callbacks.stack[callbacks.stack.count - 1][i]()
                i += 1
            }
        }

        // Everything succeeded: commit.
        var result: [Tensor?] = []
        if let capture {
            for t in capture {
                result.append(t.gradFn == nil ? leafPending[ObjectIdentifier(t)] : captured[ObjectIdentifier(t)])
            }
        } else {
            let adopted = callbacks.adopted[callbacks.adopted.count - 1]
            for leaf in leafOrder {
                var g = leafPending.removeValue(forKey: ObjectIdentifier(leaf))!
                if leaf.grad == nil && !createGraph && (adopted.contains(ObjectIdentifier(g)) || Engine.solelyOwned(&g)) {
                    leaf.grad = g
                } else {
                    commit(leaf, g, createGraph)
                }
            }
            for (t, g) in retained { commit(t, g, createGraph) }
        }
        if !retainGraph { for node in order { node.release() } }
        return result
    }

    /// Whether nothing but `g` holds the gradient tensor or its memory, and its elements
    /// fill that memory in order: it then becomes the leaf's `.grad` as it is (PyTorch's
    /// AccumulateGrad takes such a gradient over too) instead of being copied.
    private static func solelyOwned(_ g: inout Tensor) -> Bool {
        guard g.gradFn == nil, g.isContiguous, g.layout.offset == 0, g.count * g.dtype.itemSize == g.storage.byteCount else { return false }
        return isKnownUniquelyReferenced(&g) && isKnownUniquelyReferenced(&g.storage)
    }

    /// `t.grad += g`, giving the leaf a gradient of its own (never an alias of another's).
    private static func commit(_ t: Tensor, _ g: Tensor, _ createGraph: Bool) {
        if let prev = t.grad {
            t.grad = createGraph ? prev + g : withNoGrad { prev + g }
        } else {
            t.grad = createGraph ? g : withNoGrad { g.clone() }
        }
    }
}

extension Tensor {
    /// Computes the gradient of this tensor with respect to the graph's leaves and adds it
    /// to their `grad` (`Tensor.backward`).
    ///
    /// - Parameters:
    ///   - gradient: the upstream gradient; may be omitted for a one-element tensor.
    ///   - retainGraph: keep the graph for another backward (default: free it).
    ///   - createGraph: record the backward pass itself, for higher-order derivatives.
    /// - Throws: `EmberError.autograd` (freed graph, tensor modified in place…) or any
    ///   error thrown by a custom function or hook. On error no `grad` is changed.
    public func backward(gradient: Tensor? = nil, retainGraph: Bool = false, createGraph: Bool = false) throws {
        let g: Tensor
        if let gradient {
            g = gradient
        } else {
            try require(count == 1, "backward: grad can be implicitly created only for scalar outputs (shape \(fmt(shape)))")
            g = Tensor.onesLike(self)
        }
        _ = try Engine.run(roots: [(self, g)], retainGraph: retainGraph, createGraph: createGraph)
    }
}

/// Callbacks queued during the backward passes running on this thread (innermost last).
final class CallbackQueue {
    var stack: [[() throws -> Void]] = []
    var passes: [Int] = []
    /// Gradients that hooks handed over to be stored as they are (no copy) in this pass.
    var adopted: [Set<ObjectIdentifier>] = []
    nonisolated(unsafe) private static var counter = 0
    private static let counterLock = Lock()
    static func nextPass() -> Int { counterLock.withLock { counter += 1; return counter } }
    private static let local = ThreadLocal { CallbackQueue() }
    static var current: CallbackQueue { local.value }
}

/// Functional autograd (`torch.autograd.grad`).
public enum Autograd {
    /// Queues `callback` to run at the end of the backward pass running on this thread,
    /// after every derivative and hook and before any `grad` is written
    /// (`Variable._execution_engine.queue_callback`). A callback that throws makes the whole
    /// backward throw, with no gradient committed. Call it from a hook.
    public static func queueCallback(_ callback: @escaping () throws -> Void) {
        let q = CallbackQueue.current
        precondition(!q.stack.isEmpty, "queueCallback: no backward pass is running on this thread")
        q.stack[q.stack.count - 1].append(callback)
    }

    /// Called by a leaf hook on the tensor it returns: when the leaf has no gradient yet,
    /// backward stores this very tensor as `grad` instead of a copy of it. The hook's owner
    /// promises that nothing else writes the tensor until the next backward (data-parallel
    /// training uses it to make gradients views of its communication buckets).
    public static func adoptAsGradient(_ t: Tensor) {
        let q = CallbackQueue.current
        precondition(!q.adopted.isEmpty, "adoptAsGradient: no backward pass is running on this thread")
        q.adopted[q.adopted.count - 1].insert(ObjectIdentifier(t))
    }

    /// Whether a backward pass is running on this thread.
    public static var isInBackward: Bool { !CallbackQueue.current.stack.isEmpty }

    /// A number that identifies the innermost backward pass running on this thread (unique
    /// in the process), or nil outside backward. Hooks use it to tell passes apart.
    public static var currentPass: Int? { CallbackQueue.current.passes.last }

    /// Gradients of `outputs` with respect to `inputs`, without touching any `grad`.
    /// A `nil` entry means the output does not depend on that input.
    public static func grad(of outputs: [Tensor], wrt inputs: [Tensor], gradOutputs: [Tensor]? = nil,
                            retainGraph: Bool? = nil, createGraph: Bool = false) throws -> [Tensor?] {
        var roots: [(Tensor, Tensor)] = []
        for (i, o) in outputs.enumerated() {
            if let go = gradOutputs?[i] { roots.append((o, go)) } else {
                try require(o.count == 1, "grad: grad can be implicitly created only for scalar outputs")
                roots.append((o, Tensor.onesLike(o)))
            }
        }
        for t in inputs where t.gradFn != nil { t.gradFn!.retainer = t }
        return try Engine.run(roots: roots, retainGraph: retainGraph ?? createGraph, createGraph: createGraph,
                              capture: inputs)
    }
}
