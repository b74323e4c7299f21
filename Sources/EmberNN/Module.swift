import EmberCore
import Foundation

/// A learnable tensor of a module, found by `Module.parameters()`:
///
///     final class Scale: Module {
///         @Parameter var weight = Tensor.ones([4])
///         override func callAsFunction(_ x: Tensor) -> Tensor { x * weight }
///     }
///
/// The stored tensor requires grad. State-dict names are the property name in snake_case.
@propertyWrapper
public final class Parameter<Value> {
    public var wrappedValue: Value {
        didSet { Parameter.prepare(wrappedValue) }
    }
    /// An explicit state-dict name (default: the property name in snake_case).
    public let name: String?

    public init(wrappedValue: Value, _ name: String? = nil) {
        self.wrappedValue = wrappedValue
        self.name = name
        Parameter.prepare(wrappedValue)
    }

    private static func prepare(_ v: Value) {
        if let t = v as? Tensor, t.isLeaf, !t.requiresGrad { t.requiresGrad = true }
    }
}

/// A non-learnable tensor that is part of a module's state (running statistics…).
@propertyWrapper
public final class Buffer<Value> {
    public var wrappedValue: Value
    public let name: String?
    public init(wrappedValue: Value, _ name: String? = nil) {
        self.wrappedValue = wrappedValue
        self.name = name
    }
}

protocol TensorSlot: AnyObject {
    var slotName: String? { get }
    var tensor: Tensor? { get }
}
extension Parameter: TensorSlot {
    var slotName: String? { name }
    var tensor: Tensor? { wrappedValue as? Tensor }
}
extension Buffer: TensorSlot {
    var slotName: String? { name }
    var tensor: Tensor? { wrappedValue as? Tensor }
}

/// `weightIhL0` → `weight_ih_l0`, `runningMean` → `running_mean`: Swift property names to
/// PyTorch's state-dict names.
func snakeCase(_ s: String) -> String {
    var out = ""
    for ch in s {
        if ch.isUppercase {
            if !out.isEmpty { out.append("_") }
            out.append(contentsOf: ch.lowercased())
        } else {
            out.append(ch)
        }
    }
    return out
}

/// The base class of layers and models (`torch.nn.Module`).
///
/// Parameters (`@Parameter`), buffers (`@Buffer`) and submodules (stored properties of a
/// `Module` type, arrays of modules, optionals) are discovered by reflection and named as
/// PyTorch names them: `features.0.weight`, `bn.running_mean`.
///
///     final class MLP: Module {
///         let fc1 = Linear(784, 256), fc2 = Linear(256, 10)
///         override func callAsFunction(_ x: Tensor) -> Tensor { fc2(fc1(x).relu()) }
///     }
open class Module {
    /// Training mode (dropout active, batch norm uses batch statistics).
    public private(set) var training = true

    public init() {}

    /// The forward pass. Layers with one input and one output override this.
    open func callAsFunction(_ input: Tensor) -> Tensor {
        Ember.misuse("\(type(of: self)) does not take a single tensor: call its own forward method")
    }

    // MARK: discovery

    /// Direct submodules with their names. Containers override this.
    open func namedChildren() -> [(String, Module)] {
        var out: [(String, Module)] = []
        forEachStoredProperty { label, value in
            if let m = value as? Module {
                out.append((snakeCase(label), m))
            } else if let ms = value as? [Module] {
                for (i, m) in ms.enumerated() { out.append(("\(snakeCase(label)).\(i)", m)) }
            }
        }
        return out
    }

    /// Parameters a module holds outside `@Parameter` properties (a count that depends on
    /// its configuration, such as `weight_ih_l0`, `weight_ih_l1`… of a recurrent layer).
    open func dynamicParameters() -> [(String, Tensor)] { [] }

    /// This module's own tensors: (name, tensor, isParameter).
    func ownTensors() -> [(String, Tensor, Bool)] {
        var out: [(String, Tensor, Bool)] = dynamicParameters().map { ($0.0, $0.1, true) }
        forEachStoredProperty { label, value in
            guard let slot = value as? TensorSlot, let t = slot.tensor else { return }
            let name = slot.slotName ?? snakeCase(label.hasPrefix("_") ? String(label.dropFirst()) : label)
            out.append((name, t, slot is Parameter<Tensor> || slot is Parameter<Tensor?>))
        }
        return out
    }

    private func forEachStoredProperty(_ body: (String, Any) -> Void) {
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [Mirror] = []
        while let m = mirror {
            levels.append(m)
            mirror = m.superclassMirror
        }
        for m in levels.reversed() {
            for child in m.children {
                guard let label = child.label else { continue }
                var value = child.value
                // Unwrap optionals (an optional submodule or bias).
                let om = Mirror(reflecting: value)
                if om.displayStyle == .optional {
                    guard let inner = om.children.first?.value else { continue }
                    value = inner
                }
                body(label, value)
            }
        }
    }

    /// Every module in the tree with its dotted prefix (this one is "").
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out = [(prefix, self)]
        for (name, child) in namedChildren() {
            out += child.namedModules(prefix: prefix.isEmpty ? name : prefix + "." + name)
        }
        return out
    }

    /// Parameters with their dotted names, each once.
    public func namedParameters() -> [(String, Tensor)] {
        var seen = Set<ObjectIdentifier>()
        var out: [(String, Tensor)] = []
        for (prefix, m) in namedModules() {
            for (name, t, isParam) in m.ownTensors() where isParam && seen.insert(ObjectIdentifier(t)).inserted {
                out.append((prefix.isEmpty ? name : prefix + "." + name, t))
            }
        }
        return out
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.1) }

    /// Buffers with their dotted names.
    public func namedBuffers() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (prefix, m) in namedModules() {
            for (name, t, isParam) in m.ownTensors() where !isParam {
                out.append((prefix.isEmpty ? name : prefix + "." + name, t))
            }
        }
        return out
    }

    // MARK: modes and gradients

    /// Sets training mode on this module and every submodule; returns `self`.
    @discardableResult
    public func train(_ on: Bool = true) -> Self {
        for (_, m) in namedModules() { m.training = on }
        return self
    }

    /// Evaluation mode (`train(false)`).
    @discardableResult
    public func eval() -> Self { train(false) }

    /// Clears the gradients of every parameter (to nil by default, as PyTorch 2 does).
    public func zeroGrad(setToNone: Bool = true) {
        for p in parameters() {
            if setToNone { p.grad = nil } else if let g = p.grad { withNoGrad { _ = g.zero_() } }
        }
    }

    // MARK: state

    /// Parameters and buffers by dotted name (`state_dict()`), sharing storage with the module.
    public func stateDict() -> StateDict {
        var sd = StateDict()
        for (prefix, m) in namedModules() {
            for (name, t, _) in m.ownTensors() { sd[prefix.isEmpty ? name : prefix + "." + name] = t.detach() }
        }
        return sd
    }

    /// Copies values from `state` into this module's parameters and buffers.
    /// - Throws: `StateDictError.mismatch` naming missing, unexpected and wrongly-shaped keys;
    ///   with `strict: false`, missing and unexpected keys are ignored (shapes still must match).
    public func loadStateDict(_ state: StateDict, strict: Bool = true) throws {
        let own = stateDict()
        let missing = own.keys.filter { state[$0] == nil }
        let unexpected = state.keys.filter { own[$0] == nil }
        var wrong: [String] = []
        for (k, t) in own {
            if let s = state[k], s.shape != t.shape {
                wrong.append("for \(k): copying a param with shape \(s.shape) from checkpoint, the shape in current model is \(t.shape)")
            }
        }
        if !wrong.isEmpty || (strict && (!missing.isEmpty || !unexpected.isEmpty)) {
            throw StateDictError.mismatch(missing: strict ? missing : [], unexpected: strict ? unexpected : [], wrongShape: wrong)
        }
        withNoGrad {
            for (k, t) in own { if let s = state[k] { t.copy_(s) } }
        }
    }

    /// Moves every parameter and buffer to `device` in place: the tensor objects stay the
    /// same (as PyTorch's `module.to`), so an optimizer made before the move keeps working.
    @discardableResult
    public func to(_ device: Device) -> Self {
        for (_, m) in namedModules() {
            for (_, t, _) in m.ownTensors() { t.moveData(to: device) }
        }
        return self
    }

    /// Converts every floating-point parameter and buffer to `dtype` in place (PyTorch's
    /// `module.to(dtype)`, `.half()`, `.double()`): integer and bool buffers stay as they are,
    /// and the tensor objects stay the same, so an optimizer made before keeps working.
    @discardableResult
    public func to(_ dtype: DType) -> Self {
        Ember.check(dtype.isFloatingPoint, "Module.to: expected a floating point dtype, got \(dtype)")
        for (_, m) in namedModules() {
            for (_, t, _) in m.ownTensors() where t.dtype.isFloatingPoint { t.convertData(to: dtype) }
        }
        return self
    }

    /// Number of parameter elements.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }
}
