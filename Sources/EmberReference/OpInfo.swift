import EmberCore
import Foundation

// PyTorch's own OpInfo sample inputs as fixtures (`Scripts/make_opinfo_fixtures.py`): a
// manifest (`opinfo.json`: each case's op, positional and keyword arguments with tensors as
// references) and the tensors (`opinfo.safetensors`). Each case becomes an `OpCase` that
// `runOpCase` runs through `opInfoTable`, on any device.

/// One argument of a PyTorch call, as the OpInfo fixtures record it.
public indirect enum OpArg: CustomStringConvertible {
    case tensor(Int), int(Int), double(Double), bool(Bool), string(String), dtype(DType), list([OpArg]), none
    /// A `torch.memory_format` (Ember has one layout per shape: it changes strides, not values).
    case memoryFormat(String)

    init(json v: Any?) {
        guard let d = v as? [String: Any], let (k, x) = d.first else { self = .none; return }
        switch k {
        case "t": self = .tensor(Int(number(x)))
        case "i": self = .int(Int(number(x)))
        case "f": self = .double(number(x))
        case "b": self = .bool(x as! Bool)
        case "s": self = .string(x as! String)
        case "d": self = .dtype(dtypeNamed(x as! String))
        case "m": self = .memoryFormat(x as! String)
        case "l": self = .list((x as! [Any]).map { OpArg(json: $0 is NSNull ? nil : $0) })
        default: self = .none
        }
    }

    public var description: String {
        switch self {
        case .tensor(let i): "tensor #\(i)"
        case .int(let v): "\(v)"
        case .double(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let s): "'\(s)'"
        case .dtype(let d): "\(d)"
        case .list(let l): "[" + l.map(\.description).joined(separator: ", ") + "]"
        case .memoryFormat(let f): "torch.\(f)"
        case .none: "None"
        }
    }
}

/// A sample's call `op(input, *args, **kwargs)` with its tensors built; adapters read the
/// arguments by position or keyword (as PyTorch binds them). Every argument a sample
/// passes must be read: one that is not fails the case, so no adapter silently drops an
/// option PyTorch applied.
public final class OpCall {
    public let tensors: [Tensor]
    /// The device the case runs on (factories have no input tensor to take it from).
    public let device: Device
    let args: [OpArg]
    let kwargs: [String: OpArg]
    private var read = Set<String>()
    /// The OpInfo entry's variant (`"singular"` of `linalg.pinv`; empty for the plain entry).
    public let variant: String
    /// The name of the sample's `output_process_fn_grad` when the fixture recorded processed
    /// outputs (`"fn_U"` of an SVD sample): the adapter applies the same function.
    public let process: String?

    public init(_ tensors: [Tensor], _ params: Params, device: Device = .cpu) {
        self.tensors = tensors
        self.device = device
        variant = params.string("variant") ?? ""
        process = params.string("process")
        args = (params.d["args"] as? [Any] ?? []).map { OpArg(json: $0 is NSNull ? nil : $0) }
        kwargs = (params.d["kwargs"] as? [String: Any] ?? [:]).mapValues { OpArg(json: $0 is NSNull ? nil : $0) }
    }

    /// Positional argument `i` (0 is the sample's input) or keyword `name`.
    public func arg(_ i: Int?, _ name: String? = nil) -> OpArg? {
        if let i, i < args.count {
            read.insert("#\(i)")
            if case .none = args[i] { return nil }
            return args[i]
        }
        if let name, let v = kwargs[name] {
            read.insert(name)
            if case .none = v { return nil }
            return v
        }
        return nil
    }

    /// Arguments the sample passed that the adapter did not read (None values aside).
    public var unread: [String] {
        var out: [String] = []
        for (i, a) in args.enumerated() where !read.contains("#\(i)") {
            if case .none = a { continue }
            out.append("argument \(i) (\(a))")
        }
        for (k, v) in kwargs.sorted(by: { $0.key < $1.key }) where !read.contains(k) {
            if case .none = v { continue }
            out.append("\(k)=\(v)")
        }
        return out
    }

    /// The sample's input.
    public var input: Tensor { tensor(0)! }

    public func tensor(_ i: Int?, _ name: String? = nil) -> Tensor? {
        guard let a = arg(i, name) else { return nil }
        if case .tensor(let k) = a { return tensors[k] }
        fatalError("argument \(name ?? "#\(i!)") is \(a), not a tensor")
    }
    /// A list of tensors (`cat`'s input).
    public func tensorList(_ i: Int?, _ name: String? = nil) -> [Tensor] {
        guard let a = arg(i, name) else { return [] }
        switch a {
        case .list(let l): return l.map { if case .tensor(let k) = $0 { tensors[k] } else { fatalError("\($0) in a tensor list") } }
        case .tensor(let k): return [tensors[k]]
        default: fatalError("argument \(name ?? "#\(i!)") is \(a), not a tensor list")
        }
    }
    /// A tensor, or a number as a wrapped operand of `like` (PyTorch's Python scalars).
    public func operand(_ i: Int?, _ name: String? = nil, like: Tensor) -> Tensor? {
        guard let a = arg(i, name) else { return nil }
        switch a {
        case .tensor(let k): return tensors[k]
        case .int(let v): return Tensor.number(v, like: like)
        case .double(let v): return Tensor.number(v, like: like)
        case .bool(let v): return Tensor.number(v, like: like)
        default: fatalError("argument \(name ?? "#\(i!)") is \(a), not a tensor or number")
        }
    }
    public func double(_ i: Int?, _ name: String? = nil) -> Double? {
        guard let a = arg(i, name) else { return nil }
        switch a {
        case .int(let v): return Double(v)
        case .double(let v): return v
        case .bool(let v): return v ? 1 : 0
        default: fatalError("argument \(name ?? "#\(i!)") is \(a), not a number")
        }
    }
    public func int(_ i: Int?, _ name: String? = nil) -> Int? {
        guard let a = arg(i, name) else { return nil }
        switch a {
        case .int(let v): return v
        case .bool(let v): return v ? 1 : 0
        case .list(let l) where l.count == 1: if case .int(let v) = l[0] { return v }
        default: break
        }
        fatalError("argument \(name ?? "#\(i!)") is \(a), not an integer")
    }
    /// An integer list; a single integer is a list of one.
    public func ints(_ i: Int?, _ name: String? = nil) -> [Int]? {
        guard let a = arg(i, name) else { return nil }
        switch a {
        case .int(let v): return [v]
        case .list(let l): return l.map { if case .int(let v) = $0 { v } else { fatalError("\($0) in an integer list") } }
        default: fatalError("argument \(name ?? "#\(i!)") is \(a), not an integer list")
        }
    }
    /// The integers of positional arguments from `i` on (`x.repeat(2, 3)`), or the list there.
    public func intsFrom(_ i: Int, _ name: String? = nil) -> [Int]? {
        if i < args.count, case .list = args[i] { return ints(i) }
        if i >= args.count { return ints(nil, name) }
        return (i..<args.count).map { int($0)! }
    }
    public func bool(_ i: Int?, _ name: String? = nil) -> Bool? {
        guard let a = arg(i, name) else { return nil }
        if case .bool(let v) = a { return v }
        fatalError("argument \(name ?? "#\(i!)") is \(a), not a bool")
    }
    public func string(_ i: Int?, _ name: String? = nil) -> String? {
        guard let a = arg(i, name) else { return nil }
        if case .string(let v) = a { return v }
        fatalError("argument \(name ?? "#\(i!)") is \(a), not a string")
    }
    /// Reads a `memory_format` argument: the values Ember computes are the same in every
    /// layout, so it only needs to be a memory format.
    public func memoryFormat(_ i: Int?, _ name: String? = nil) {
        guard let a = arg(i, name) else { return }
        if case .memoryFormat = a { return }
        fatalError("argument \(name ?? "#\(i!)") is \(a), not a memory format")
    }
    public func dtype(_ i: Int?, _ name: String? = nil) -> DType? {
        guard let a = arg(i, name) else { return nil }
        if case .dtype(let v) = a { return v }
        fatalError("argument \(name ?? "#\(i!)") is \(a), not a dtype")
    }
}

/// The OpInfo fixtures: `opinfo.json` and `opinfo.safetensors` in one directory.
public struct OpInfoFixtures {
    public let cases: [OpCase]
    /// Per op, the samples the generator left out and why (they make the op partial).
    public let skipped: [String: [String]]
    public let torchVersion: String

    /// The op names of a manifest, without building any case.
    public static func opNames(besides opsPath: String) throws -> [String] {
        let url = URL(fileURLWithPath: opsPath).deletingLastPathComponent().appendingPathComponent("opinfo.json")
        guard let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
              let raw = root["cases"] as? [[String: Any]] else { throw EmberError.io("\(url.path) is not an OpInfo fixture manifest") }
        var seen = Set<String>(), names: [String] = []
        for c in raw { if let op = c["op"] as? String, seen.insert(op).inserted { names.append(op) } }
        return names
    }

    /// The cases of op `only` (all when nil).
    public init(manifest: URL, tensors: URL, only: String? = nil) throws {
        let data = try Data(contentsOf: manifest)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let raw = root["cases"] as? [[String: Any]] else {
            throw EmberError.io("\(manifest.path) is not an OpInfo fixture manifest")
        }
        // The tensors are packed in one flat blob per dtype; a case names one as
        // [dtype, offset, shape].
        let (store, _) = try SafeTensors.load(tensors.path)
        var blobs: [String: (values: [Double], dtype: DType)] = [:]
        func values(_ ref: Any?) throws -> (data: [Double], shape: [Int], dtype: DType) {
            guard let r = ref as? [Any], r.count == 3, let key = r[0] as? String, let shape = r[2] as? [Any] else {
                throw EmberError.io("opinfo.json: \(ref ?? "nil") is not a tensor reference [dtype, offset, shape]")
            }
            if blobs[key] == nil {
                guard let t = store[key] else { throw EmberError.io("opinfo.safetensors has no \(key) blob") }
                blobs[key] = (t.toArray(Double.self), t.dtype)
            }
            let blob = blobs[key]!, dims = shape.map { Int(number($0)) }
            let offset = Int(number(r[1])), count = dims.reduce(1, *)
            guard offset >= 0, offset + count <= blob.values.count else { throw EmberError.io("opinfo.json: \(r) lies outside the \(key) blob") }
            return (Array(blob.values[offset..<(offset + count)]), dims, blob.dtype)
        }
        var cases: [OpCase] = []
        for c in raw {
            if let only, c["op"] as? String != only { continue }
            let names = c["inputs"] as! [Any], gradFlags = c["grad_inputs"] as! [Bool]
            let inputs = try zip(names, gradFlags).map { n, g in
                let v = try values(n)
                return FixtureInput(data: v.data, baseShape: v.shape, shape: v.shape, dtype: v.dtype, recipe: "contig",
                                    raw: !g || !v.dtype.isFloatingPoint)
            }
            let outputs = try (c["outputs"] as! [Any]).map { try values($0) }
            func optionalList(_ key: String) throws -> [[Double]?]? {
                guard let l = c[key] as? [Any] else { return nil }
                return try l.map { $0 is NSNull ? nil : try values($0).data }
            }
            // Gradients come per leaf; the runner reads them per input (nil where no leaf).
            var grads: [[Double]?]? = nil
            if let perLeaf = try optionalList("grads") {
                var it = perLeaf.makeIterator()
                grads = inputs.map { $0.raw ? nil : it.next()! }
            }
            let double = try optionalList("double_grads")
            // Upstream gradients and second-order directions are the generator's `pattern`,
            // recorded by salt.
            func patterns(_ key: String, shapes: [[Int]]) -> [[Double]?]? {
                guard let l = c[key] as? [Any] else { return nil }
                return zip(l, shapes).map { s, shape in s is NSNull ? nil : OpInfoFixtures.pattern(count: shape.reduce(1, *), salt: Int(number(s))) }
            }
            let upstream = patterns("upstream", shapes: outputs.map(\.shape))
            let doubleV = patterns("double_v", shapes: inputs.filter { !$0.raw }.map(\.baseShape))
            cases.append(OpCase(name: c["name"] as! String, op: c["op"] as! String, table: .opInfo,
                                params: Params(d: ["args": c["args"] as Any, "kwargs": c["kwargs"] as Any,
                                                   "variant": c["variant"] as Any, "process": c["process"] as Any]),
                                inputs: inputs, outputs: outputs, upstream: upstream, grads: grads,
                                doubleV: doubleV, doubleGrads: double?.map { $0! }))
        }
        self.cases = cases
        skipped = root["skipped"] as? [String: [String]] ?? [:]
        torchVersion = root["torch"] as? String ?? "?"
    }

    /// `Scripts/make_opinfo_fixtures.py`'s `pattern`: `((i·7919 + salt·104729) mod 2003) / 1001.5 − 1`
    /// (exact up to the one rounded division, so both sides get the same numbers).
    public static func pattern(count: Int, salt: Int) -> [Double] {
        (0..<count).map { i in Double((i * 7919 + salt * 104729) % 2003) / 1001.5 - 1.0 }
    }

    /// The fixtures beside `ops.json` (the directory of `opsPath`).
    public init(besides opsPath: String, only: String? = nil) throws {
        let dir = URL(fileURLWithPath: opsPath).deletingLastPathComponent()
        try self.init(manifest: dir.appendingPathComponent("opinfo.json"), tensors: dir.appendingPathComponent("opinfo.safetensors"),
                      only: only)
    }
}
