import Foundation

// MARK: - From Swift values

extension Tensor {
    /// A tensor from a flat array and a shape (default: 1-D).
    ///
    ///     let x = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    ///
    /// Swift `Double` values become float32 (the default dtype, as Python floats do in
    /// `torch.tensor`) unless `dtype` says otherwise; `Int` becomes int64.
    public convenience init<T: TensorScalar>(_ values: [T], shape: [Int]? = nil, dtype: DType? = nil,
                                             device: Device = .cpu, requiresGrad: Bool = false) {
        let shape = shape ?? [values.count]
        let d = dtype ?? (T.self == Double.self ? .defaultFloat : T.dtype)
        checked {
            try require(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(fmt(shape))")
            try require(shape.reduce(1, *) == values.count,
                        "Tensor: shape \(fmt(shape)) is invalid for input of size \(values.count)")
        }
        let t = Tensor.fromHost(shape, dtype: d, device: device) { base in
            for (i, v) in values.enumerated() { v.store(to: base, at: i, as: d) }
        }
        self.init(storage: t.storage, layout: t.layout, dtype: d)
        if requiresGrad { self.requiresGrad = true }
    }

    /// A 2-D tensor from nested arrays: `Tensor([[1, 2], [3, 4]] as [[Float]])`.
    public convenience init<T: TensorScalar>(_ rows: [[T]], dtype: DType? = nil, device: Device = .cpu,
                                             requiresGrad: Bool = false) {
        let n = rows.first?.count ?? 0
        checked { try require(rows.allSatisfy { $0.count == n }, "Tensor: nested arrays must be rectangular") }
        self.init(rows.flatMap { $0 }, shape: [rows.count, n], dtype: dtype, device: device, requiresGrad: requiresGrad)
    }

    /// A 3-D tensor from nested arrays.
    public convenience init<T: TensorScalar>(_ planes: [[[T]]], dtype: DType? = nil, device: Device = .cpu,
                                             requiresGrad: Bool = false) {
        let r = planes.first?.count ?? 0, c = planes.first?.first?.count ?? 0
        checked {
            try require(planes.allSatisfy { $0.count == r && $0.allSatisfy { $0.count == c } },
                        "Tensor: nested arrays must be rectangular")
        }
        self.init(planes.flatMap { $0.flatMap { $0 } }, shape: [planes.count, r, c], dtype: dtype, device: device,
                  requiresGrad: requiresGrad)
    }

    /// A zero-dimensional tensor holding `value`.
    public convenience init<T: TensorScalar>(scalar value: T, dtype: DType? = nil, device: Device = .cpu,
                                             requiresGrad: Bool = false) {
        self.init([value], shape: [], dtype: dtype, device: device, requiresGrad: requiresGrad)
    }

    /// A Swift number taking part in an op: a 0-dim tensor that ranks lowest in promotion.
    /// A Swift number as a 0-dimensional operand on `t`'s device, marked as a wrapped
    /// number (it takes part in type promotion like a Python scalar). On the CPU it is
    /// stored as float64; on another device it is written by a fill there (no host-to-device
    /// copy, no synchronisation), in the type a floating-point `t` computes in (the op would
    /// round it to that type anyway), which saves a conversion kernel.
    /// A Swift number as an operand of `t`'s ops: a 0-dim tensor on `t`'s device that ranks
    /// lowest in type promotion, as PyTorch treats a Python number (`x + 2.5` keeps x's dtype).
    public static func number(_ v: Double, like t: Tensor) -> Tensor { wrapped(v, like: t) }
    /// An integer operand of `t`'s ops (`x + 2` keeps an int32 tensor int32).
    public static func number(_ v: Int, like t: Tensor) -> Tensor { wrapped(v, like: t) }
    /// A bool operand of `t`'s ops.
    public static func number(_ v: Bool, like t: Tensor) -> Tensor {
        let s = Tensor(scalar: v, device: t.device)
        s.isWrappedNumber = true
        return s
    }

    static func wrapped(_ v: Double, like t: Tensor) -> Tensor {
        let type: DType = t.device != .cpu && t.dtype.isFloatingPoint ? t.dtype.computeType : .float64
        let s = Tensor(uninitialized: [], dtype: type, device: t.device)
        if type == .float64 && s.storage.isHostAccessible {
            s.hostAddress.storeBytes(of: v, as: Double.self)
        } else {
            t.device.backend.fill(s, v)
        }
        s.isWrappedNumber = true
        return s
    }

    static func wrapped(_ v: Int, like t: Tensor) -> Tensor {
        let s = Tensor(uninitialized: [], dtype: .int64, device: t.device)
        if s.storage.isHostAccessible {
            s.hostAddress.storeBytes(of: Int64(v), as: Int64.self)
        } else if Swift.abs(v) <= 1 << 53 {
            t.device.backend.fill(s, Double(v))
        } else {
            // Beyond 2^53 a fill's double would round: copy the exact value.
            var exact = Int64(v)
            t.device.backend.writeBytes(s, from: &exact, nonBlocking: false)
        }
        s.isWrappedNumber = true
        return s
    }
}

// MARK: - Factories

extension Tensor {
    /// Uninitialised memory (`torch.empty`).
    public static func empty(_ shape: [Int], dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        checked { try require(shape.allSatisfy { $0 >= 0 }, "empty: negative dimension in shape \(fmt(shape))") }
        return Tensor(uninitialized: shape, dtype: dtype, device: device)
    }

    /// A tensor filled with `value` (`torch.full`).
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .defaultFloat, device: Device = .cpu,
                            requiresGrad: Bool = false) -> Tensor {
        let t = empty(shape, dtype: dtype, device: device)
        device.backend.fill(t, value)
        if requiresGrad { t.requiresGrad = true }
        return t
    }

    public static func zeros(_ shape: [Int], dtype: DType = .defaultFloat, device: Device = .cpu,
                             requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, dtype: dtype, device: device, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], dtype: DType = .defaultFloat, device: Device = .cpu,
                            requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, dtype: dtype, device: device, requiresGrad: requiresGrad)
    }

    public static func emptyLike(_ t: Tensor, dtype: DType? = nil) -> Tensor { empty(t.shape, dtype: dtype ?? t.dtype, device: t.device) }
    public static func zerosLike(_ t: Tensor, dtype: DType? = nil) -> Tensor { zeros(t.shape, dtype: dtype ?? t.dtype, device: t.device) }
    public static func onesLike(_ t: Tensor, dtype: DType? = nil) -> Tensor { ones(t.shape, dtype: dtype ?? t.dtype, device: t.device) }
    public static func fullLike(_ t: Tensor, _ value: Double, dtype: DType? = nil) -> Tensor {
        full(t.shape, value, dtype: dtype ?? t.dtype, device: t.device)
    }

    /// Values from `start` up to (not including) `end` by `step` (`torch.arange`).
    /// Integer arguments give int64; otherwise the default float dtype.
    public static func arange(_ start: Double, _ end: Double, step: Double = 1, dtype: DType? = nil,
                              device: Device = .cpu) -> Tensor {
        checked { try require(step != 0, "arange: step must be nonzero") }
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let isInt = start == start.rounded() && end == end.rounded() && step == step.rounded()
        let d = dtype ?? (isInt ? .int64 : .defaultFloat)
        return fromHost([n], dtype: d, device: device) { base in
            for i in 0..<n {
                if d == .int64 { storeInt64(Int64(start) + Int64(i) * Int64(step), base, i, d) } else {
                    storeDouble(start + Double(i) * step, base, i, d)
                }
            }
        }
    }

    /// `arange(0, end)`.
    public static func arange(_ end: Int, dtype: DType? = nil, device: Device = .cpu) -> Tensor {
        arange(0, Double(end), dtype: dtype ?? .int64, device: device)
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive (`torch.linspace`).
    public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .defaultFloat,
                                device: Device = .cpu) -> Tensor {
        checked { try require(steps >= 0, "linspace: number of steps must be non-negative") }
        let step = steps > 1 ? (end - start) / Double(steps - 1) : 0
        let half = steps / 2
        return fromHost([steps], dtype: dtype, device: device) { base in
            for i in 0..<steps {
                // Symmetric evaluation as PyTorch does: from the start for the first half, from the end after.
                let v = steps == 1 ? start : (i < half ? start + step * Double(i) : end - step * Double(steps - 1 - i))
                storeDouble(v, base, i, dtype)
            }
        }
    }

    /// The identity matrix `n × m` (`torch.eye`).
    public static func eye(_ n: Int, _ m: Int? = nil, dtype: DType = .defaultFloat, device: Device = .cpu) -> Tensor {
        let m = m ?? n
        return fromHost([n, m], dtype: dtype, device: device) { base in
            base.initializeMemory(as: UInt8.self, repeating: 0, count: n * m * dtype.itemSize)
            for i in 0..<Swift.min(n, m) { storeDouble(1, base, i * m + i, dtype) }
        }
    }
}

// MARK: - Reading values back

extension Tensor {
    /// Host copy of the elements in row-major order, converted to `T`.
    public func toArray<T: TensorScalar>(_: T.Type = Float.self) -> [T] {
        withHostElements { base in (0..<count).map { T.load(from: base, at: $0, as: dtype) } }
    }

    /// The elements as `Float` (`tolist()` for float tensors).
    public var scalars: [Float] { toArray(Float.self) }

    /// The value of a one-element tensor as `Double`.
    public func item() -> Double {
        checked { try require(count == 1, "item: a Tensor with \(count) elements cannot be converted to Scalar") }
        return toArray(Double.self)[0]
    }

    /// The value of a one-element tensor as `T`.
    public func item<T: TensorScalar>(_: T.Type) -> T {
        checked { try require(count == 1, "item: a Tensor with \(count) elements cannot be converted to Scalar") }
        return toArray(T.self)[0]
    }
}

// MARK: - Conversion, copies

extension Tensor {
    /// A copy in dtype `d` without autograd (kernels' upcasts); `self` when already `d`.
    func cast(_ d: DType) -> Tensor {
        if d == dtype { return self }
        let out = Tensor(uninitialized: shape, dtype: d, device: device)
        device.backend.copy(self, into: out)
        return out
    }

    /// This tensor in dtype `d` (`tensor.to(dtype)`); differentiable between float dtypes.
    public func to(_ d: DType) -> Tensor {
        if d == dtype { return self }
        let out = cast(d)
        if d.isFloatingPoint && anyNeedsGrad(self) {
            let src = dtype
            record(out, "ToCopyBackward", [self]) { c in [c.grad.to(src)] }
        }
        return out
    }

    /// Moves this tensor's data to `device` in place, keeping the object (what `module.to`
    /// does to parameters in PyTorch: `param.data = param.data.to(device)`), so optimizers
    /// and hooks that hold it keep working. Its gradient moves too. For leaves and detached
    /// tensors only; views of it keep the old data.
    public func moveData(to device: Device) {
        if device == self.device { return }
        checked { try require(gradFn == nil, "moveData(to:): tensor of shape \(fmt(shape)) is not a leaf; use to(_:) for tensors in a graph") }
        let moved = withNoGrad { contiguous().to(device) }
        storage = moved.storage
        layout = moved.layout
        storage.bumpVersion()
        if let g = grad { grad = withNoGrad { g.to(device) } }
    }

    /// Converts this leaf's data (and its gradient) to `dtype` in place: the tensor object
    /// stays the same, as PyTorch's `param.data = param.data.to(dtype)` (what `module.half()`
    /// does), so an optimizer made before keeps working with the converted tensor.
    public func convertData(to dtype: DType) {
        if dtype == self.dtype { return }
        checked { try require(gradFn == nil, "convertData(to:): tensor of shape \(fmt(shape)) is not a leaf; use to(_:) for tensors in a graph") }
        checked {
            try require(!requiresGrad || dtype.isFloatingPoint,
                        "convertData(to:): a tensor that requires gradients must stay floating point (got \(dtype))")
        }
        let converted = withNoGrad { contiguous().cast(dtype) }
        storage = converted.storage
        layout = converted.layout
        self.dtype = dtype
        storage.bumpVersion()
        if let g = grad { grad = withNoGrad { g.cast(dtype) } }
    }

    /// This tensor on `device` (`tensor.to(device)`); differentiable.
    ///
    /// To a GPU, the copy is queued and this returns at once (pageable host memory is first
    /// copied into a pinned staging buffer, so the source may change right away). With
    /// `nonBlocking`, a copy from pinned memory (`pinMemory()`, a DataLoader with
    /// `pinMemory`) reads the source directly: it must not change until the GPU has done so.
    /// To the CPU with `nonBlocking`, the result is pinned memory filled asynchronously: read
    /// it after `Ember.CUDA.synchronize()` (as PyTorch's `non_blocking=True`).
    public func to(_ device: Device, nonBlocking: Bool = false) -> Tensor {
        if device == self.device { return self }
        let src = contiguous()
        // Host ↔ device transfers go through the non-CPU side's read/write primitives.
        let out: Tensor
        if device == .cpu {
            out = nonBlocking ? HostMemory.withPinnedAllocations { Tensor(uninitialized: shape, dtype: dtype, device: .cpu) }
                              : Tensor(uninitialized: shape, dtype: dtype, device: .cpu)
            src.device.backend.readBytes(src, into: out.hostAddress, nonBlocking: nonBlocking)
        } else if src.device == .cpu {
            out = Tensor(uninitialized: shape, dtype: dtype, device: device)
            device.backend.writeBytes(out, from: src.hostAddress, nonBlocking: nonBlocking)
        } else {
            return src.to(.cpu).to(device)
        }
        if anyNeedsGrad(self) {
            let from = self.device
            record(out, "ToCopyBackward", [self]) { c in [c.grad.to(from)] }
        }
        return out
    }

    /// A contiguous tensor with the same values: `self` if already contiguous.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        return clone()
    }

    /// A copy with storage of its own (`clone()`); differentiable.
    public func clone() -> Tensor {
        let out = Tensor(uninitialized: shape, dtype: dtype, device: device)
        device.backend.copy(self, into: out)
        if anyNeedsGrad(self) {
            record(out, "CloneBackward", [self]) { c in [c.grad] }
        }
        return out
    }
}

// MARK: - Printing

extension Tensor: CustomStringConvertible {
    /// PyTorch-style text: `tensor([[1., 2.], [3., 4.]])`.
    public var description: String {
        let values = toArray(Double.self)
        let isFloat = dtype.isFloatingPoint
        func f(_ v: Double) -> String {
            if dtype == .bool { return v != 0 ? "True" : "False" }
            if !isFloat { return String(Int64(v)) }
            if v.isNaN { return "nan" }
            if v.isInfinite { return v > 0 ? "inf" : "-inf" }
            if v == v.rounded() && Swift.abs(v) < 1e16 { return String(Int64(v)) + "." }
            return String(format: "%.4f", v)
        }
        var i = 0
        func render(_ d: Int, _ indent: Int) -> String {
            if d == rank { defer { i += 1 }; return f(values[i]) }
            var parts: [String] = []
            let limit = shape[d]
            for _ in 0..<limit { parts.append(render(d + 1, indent + 1)) }
            let sep = d == rank - 1 ? ", " : ",\n" + String(repeating: " ", count: indent + 1)
            return "[" + parts.joined(separator: sep) + "]"
        }
        var s = "tensor(" + render(0, 7)
        if dtype != .float32 && dtype != .int64 && dtype != .bool { s += ", dtype=\(dtype)" }
        if device != .cpu { s += ", device='\(device)'" }
        if gradFn != nil { s += ", gradFn=<\(gradFn!.name)>" } else if requiresGrad { s += ", requiresGrad=true" }
        return s + ")"
    }
}

extension Tensor {
    /// `base ** linspace(start, end, steps)`.
    public static func logspace(_ start: Double, _ end: Double, steps: Int, base: Double = 10, dtype: DType = .defaultFloat,
                                device: Device = .cpu) -> Tensor {
        let exps = linspace(start, end, steps: steps, dtype: .float64, device: device)
        return Tensor.full([], base, dtype: .float64, device: device).pow(exps).to(dtype)
    }
}
