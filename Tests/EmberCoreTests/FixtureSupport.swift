import Foundation
import XCTest
@testable import EmberCore
import EmberTestSupport

/// PyTorch reference fixtures written by `Scripts/make_fixtures.py`.
struct Fixtures {
    let root: [String: Any]
    static let shared: Fixtures = {
        guard let url = Bundle.module.url(forResource: "ops", withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            fatalError("cannot load Fixtures/ops.json")
        }
        return Fixtures(root: obj)
    }()

    var cases: [OpCase] { (root["cases"] as! [[String: Any]]).map(OpCase.init) }
    var promotion: [[String: Any]] { root["promotion"] as! [[String: Any]] }
    var creation: [String: Any] { root["creation"] as! [String: Any] }
    var halfs: [String: Any] { root["halfs"] as! [String: Any] }
}

struct Params {
    let d: [String: Any]
    func double(_ k: String) -> Double? { d[k].map(number) }
    func int(_ k: String) -> Int? { d[k].map { Int(number($0)) } }
    func ints(_ k: String) -> [Int]? { (d[k] as? [Any]).map { $0.map { Int(number($0)) } } }
    func bool(_ k: String) -> Bool { (d[k] as? Bool) ?? false }
    func string(_ k: String) -> String? { d[k] as? String }
    func has(_ k: String) -> Bool { d[k] != nil }
}

struct FixtureInput {
    let data: [Double]
    let baseShape: [Int]
    let shape: [Int]
    let dtype: DType
    let recipe: String
    let raw: Bool

    /// The leaf (with `requiresGrad` for float inputs) and the view the op receives.
    func build(_ data: [Double]? = nil) -> (leaf: Tensor?, view: Tensor) {
        let base = Tensor(data ?? self.data, shape: baseShape, dtype: dtype)
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

struct OpCase {
    let name: String
    let op: String
    let params: Params
    let inputs: [FixtureInput]
    let outputs: [(data: [Double], shape: [Int], dtype: DType)]
    let upstream: [[Double]?]?
    let grads: [[Double]?]?
    let doubleV: [[Double]?]?
    let doubleGrads: [[Double]]?

    init(_ d: [String: Any]) {
        name = d["name"] as! String
        op = d["op"] as! String
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

