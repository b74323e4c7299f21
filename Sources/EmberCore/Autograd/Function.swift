/// A differentiable function defined by the user (`torch.autograd.Function`).
///
///     let y = try CustomFunction.apply([x], name: "Cube",
///         forward: { $0[0] * $0[0] * $0[0] },
///         backward: { grad, inputs, _ in [grad * 3 * inputs[0] * inputs[0]] })
///
/// `forward` runs without recording; `backward` receives the output's gradient, the
/// inputs and the output, returns one gradient (or nil) per input, and may throw: the
/// error reaches the caller of `backward()`.
public enum CustomFunction {
    public static func apply(
        _ inputs: [Tensor], name: String = "CustomFunction",
        forward: ([Tensor]) throws -> Tensor,
        backward: @escaping (_ grad: Tensor, _ inputs: [Tensor], _ output: Tensor) throws -> [Tensor?]
    ) throws -> Tensor {
        let detached = inputs.map { $0.detach() }
        let out = try withNoGrad { try forward(detached) }.detach()
        if anyNeedsGrad(inputs) {
            record(out, name, inputs, save: detached, saveOutput: true) { c in
                let g = try backward(c.grad, detached, c.output!)
                guard g.count == inputs.count else {
                    throw EmberError.autograd("\(name): backward returned \(g.count) gradients for \(inputs.count) inputs")
                }
                return g
            }
        }
        return out
    }
}
