/// Runs backward passes in three steps: sort the graph once (`order`), walk it in reverse
/// running each derivative (`propagate`), and only when every derivative, hook and
/// callback has succeeded, write the gradients (`PassState.commit`). The engine takes no
/// lock and keeps no state between passes, so a thrown error can neither deadlock nor
/// poison the next pass. Hooks, callbacks and gradient adoption live in `PassState`.
enum Engine {
    /// Gradients flowing into the graph from `roots`; returns the gradients of `capture`
    /// (for `Autograd.grad`) or accumulates into leaves when `capture` is nil.
    static func run(roots: [(Tensor, Tensor)], retainGraph: Bool, createGraph: Bool,
                    capture: [Tensor]? = nil) throws -> [Tensor?] {
        let nodes = try order(from: roots.map(\.0))
        let pass = PassState(nodes: nodes, capture: capture)
        try PassState.running(pass) {
            try withGradMode(createGraph) { try propagate(roots, nodes, pass, createGraph: createGraph) }
        }
        let result = pass.commit(capture, createGraph: createGraph)
        if !retainGraph { for node in nodes { node.release() } }
        return result
    }

    /// The nodes reachable from `roots`, each after every node it feeds (iterative DFS).
    static func order(from roots: [Tensor]) throws -> [Node] {
        var order: [Node] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Node, Int)] = []
        for root in roots {
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
        return order
    }

    /// Seeds the roots' gradients and runs every node's derivative in reverse order.
    private static func propagate(_ roots: [(Tensor, Tensor)], _ order: [Node], _ pass: PassState, createGraph: Bool) throws {
        for (root, g) in roots {
            try require(root.requiresGrad, "backward: element 0 of tensors does not require grad and does not have a gradFn")
            try require(g.shape == root.shape,
                        "backward: gradient has shape \(fmt(g.shape)) but the output has shape \(fmt(root.shape))")
            pass.accumulate(root, g)
        }
        for node in order.reversed() {
            guard var g = pass.takeGradient(of: node) else { try pass.finished(node); continue }
            for (_, hook) in node.preHooks { if let r = try hook(g) { g = r } }
            pass.reached(node, with: g)
            for (t, v) in node.saved where t.storage.version != v {
                throw EmberError.autograd(
                    "one of the variables needed for gradient computation has been modified by an inplace operation: [\(t.dtype) \(fmt(t.shape))], which is saved by \(node.name), is at version \(t.storage.version); expected version \(v) instead.")
            }
            guard let derivative = node.derivative else { try pass.finished(node); continue }
            let grads = try derivative(BackwardContext(grad: g, output: node.output, createGraph: createGraph,
                                                       needs: node.inputs.map { $0 != nil }))
            for (i, input) in node.inputs.enumerated() {
                guard let input, i < grads.count, let gi = grads[i] else { continue }
                pass.accumulate(input, gi)
            }
            try pass.finished(node)
        }
        try pass.finishLeaves()
        try pass.runCallbacks()
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

/// Functional autograd (`torch.autograd.grad`) and what hooks may ask of the running pass.
public enum Autograd {
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

    /// Queues `callback` to run at the end of the backward pass running on this thread,
    /// after every derivative and hook and before any `grad` is written
    /// (`Variable._execution_engine.queue_callback`). A callback that throws makes the whole
    /// backward throw, with no gradient committed. Call it from a hook.
    public static func queueCallback(_ callback: @escaping () throws -> Void) {
        let pass = PassState.current
        checked { try require(pass != nil, "queueCallback: no backward pass is running on this thread") }
        pass!.callbacks.append(callback)
    }

    /// Called by a leaf hook on the tensor it returns: when the leaf has no gradient yet,
    /// backward stores this very tensor as `grad` instead of a copy of it. The hook's owner
    /// promises that nothing else writes the tensor until the next backward (data-parallel
    /// training uses it to make gradients views of its communication buckets).
    public static func adoptAsGradient(_ t: Tensor) {
        let pass = PassState.current
        checked { try require(pass != nil, "adoptAsGradient: no backward pass is running on this thread") }
        pass!.adopted.insert(ObjectIdentifier(t))
    }

    /// Whether a backward pass is running on this thread.
    public static var isInBackward: Bool { PassState.current != nil }

    /// A number that identifies the innermost backward pass running on this thread (unique
    /// in the process), or nil outside backward. Hooks use it to tell passes apart.
    public static var currentPass: Int? { PassState.current?.number }
}
