import EmberCore
import Foundation

/// PyTorch reference fixtures written by `Scripts/make_fixtures.py` (`ops.json`), shared by
/// the CPU tests and the GPU check (`ember gpu-check`), which runs the same cases on a GPU.
public struct Fixtures {
    public let root: [String: Any]

    public init(url: URL) throws {
        let data = try Data(contentsOf: url)
        guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw EmberError.io("\(url.path) is not a fixture file")
        }
        root = obj
    }

    public var cases: [OpCase] { (root["cases"] as! [[String: Any]]).map(OpCase.init) }
    public var promotion: [[String: Any]] { root["promotion"] as! [[String: Any]] }
    public var creation: [String: Any] { root["creation"] as! [String: Any] }
    public var halfs: [String: Any] { root["halfs"] as! [String: Any] }
}

public struct Params {
    public let d: [String: Any]
    public init(d: [String: Any]) { self.d = d }
    public func double(_ k: String) -> Double? { d[k].map(number) }
    public func int(_ k: String) -> Int? { d[k].map { Int(number($0)) } }
    public func ints(_ k: String) -> [Int]? { (d[k] as? [Any]).map { $0.map { Int(number($0)) } } }
    public func bool(_ k: String) -> Bool { (d[k] as? Bool) ?? false }
    public func string(_ k: String) -> String? { d[k] as? String }
    public func has(_ k: String) -> Bool { d[k] != nil }
}

public struct FixtureInput {
    public init(data: [Double], baseShape: [Int], shape: [Int], dtype: DType, recipe: String, raw: Bool) {
        self.data = data
        self.baseShape = baseShape
        self.shape = shape
        self.dtype = dtype
        self.recipe = recipe
        self.raw = raw
    }

    public let data: [Double]
    public let baseShape: [Int]
    public let shape: [Int]
    public let dtype: DType
    public let recipe: String
    public let raw: Bool

    /// The leaf (with `requiresGrad` for float inputs) and the view the op receives, on `device`.
    public func build(_ data: [Double]? = nil, device: Device = .cpu) -> (leaf: Tensor?, view: Tensor) {
        let host = Tensor(data ?? self.data, shape: baseShape, dtype: dtype)
        let base = device == .cpu ? host : host.to(device)
        let differentiable = dtype.isFloatingPoint && !raw
        if differentiable { base.requiresGrad = true }
        let view: Tensor
        switch recipe {
        case "contig": view = base
        case "t": view = base.transpose(-1, -2)
        case "slice": view = base.slice(-1, step: 2)
        default: view = base.expand(shape)  // "expand:[...]"
        }
        return (differentiable ? base : nil, view)
    }
}

public struct OpCase {
    /// Which op table a case's `op` names: Ember's own fixture ops (`opTable`) or PyTorch's
    /// OpInfo names (`opInfoTable`).
    public enum Table: Sendable { case core, opInfo }

    public let name: String
    public let op: String
    public let table: Table
    public let params: Params
    public let inputs: [FixtureInput]
    public let outputs: [(data: [Double], shape: [Int], dtype: DType)]
    public let upstream: [[Double]?]?
    public let grads: [[Double]?]?
    public let doubleV: [[Double]?]?
    public let doubleGrads: [[Double]]?

    public init(name: String, op: String, table: Table, params: Params, inputs: [FixtureInput],
                outputs: [(data: [Double], shape: [Int], dtype: DType)], upstream: [[Double]?]?, grads: [[Double]?]?,
                doubleV: [[Double]?]?, doubleGrads: [[Double]]?) {
        self.name = name
        self.op = op
        self.table = table
        self.params = params
        self.inputs = inputs
        self.outputs = outputs
        self.upstream = upstream
        self.grads = grads
        self.doubleV = doubleV
        self.doubleGrads = doubleGrads
    }

    public init(_ d: [String: Any]) {
        name = d["name"] as! String
        op = d["op"] as! String
        table = .core
        params = Params(d: d["params"] as? [String: Any] ?? [:])
        inputs = (d["inputs"] as! [[String: Any]]).map {
            FixtureInput(data: numbers($0["data"]), baseShape: ($0["base_shape"] as! [Any]).map { Int(number($0)) },
                         shape: ($0["shape"] as! [Any]).map { Int(number($0)) }, dtype: dtypeNamed($0["dtype"] as! String),
                         recipe: $0["recipe"] as! String, raw: ($0["raw"] as? Bool) ?? false)
        }
        outputs = (d["outputs"] as! [[String: Any]]).map {
            (numbers($0["data"]), ($0["shape"] as! [Any]).map { Int(number($0)) }, dtypeNamed($0["dtype"] as! String))
        }
        upstream = (d["upstream"] as? [Any])?.map { $0 is NSNull ? nil : numbers($0) }
        grads = (d["grads"] as? [Any])?.map { $0 is NSNull ? nil : numbers($0) }
        doubleV = (d["double_v"] as? [Any])?.map { $0 is NSNull ? nil : numbers($0) }
        doubleGrads = (d["double_grads"] as? [Any])?.map(numbers)
    }
}

