import EmberCore
import Foundation

/// A training checkpoint in one safetensors file: the model's state dict under `model.`,
/// the optimizer's per-parameter state under `optimizer.state.<i>.`, and the optimizer's
/// hyper-parameters plus any caller values (epoch, schedule position…) as metadata.
public struct Checkpoint {
    public var model: StateDict
    public var optimizer: OptimizerState?
    public var values: [String: String]

    public init(model: StateDict, optimizer: OptimizerState? = nil, values: [String: String] = [:]) {
        self.model = model
        self.optimizer = optimizer
        self.values = values
    }

    /// Writes atomically (temporary file + rename): a crash mid-save keeps the previous file.
    public func save(to path: String) throws {
        var sd = StateDict()
        for (k, t) in model { sd["model." + k] = t }
        var meta = values
        meta["format"] = "ember-checkpoint-1"
        if let optimizer {
            for (i, s) in optimizer.state { for (k, t) in s { sd["optimizer.state.\(i).\(k)"] = t } }
            let groups = optimizer.groups.map { ["options": $0.options, "params": $0.params] as [String: Any] }
            let json = try JSONSerialization.data(withJSONObject: groups, options: [.sortedKeys])
            meta["optimizer.param_groups"] = String(decoding: json, as: UTF8.self)
        }
        try SafeTensors.save(sd, to: path, metadata: meta)
    }

    /// Reads a checkpoint written by `save(to:)`.
    public static func load(_ path: String) throws -> Checkpoint {
        let (sd, meta) = try SafeTensors.load(path)
        guard meta["format"] == "ember-checkpoint-1" else { throw DataError.format("\(path) is not an Ember checkpoint") }
        var model = StateDict()
        var opt: OptimizerState? = nil
        for (k, t) in sd where k.hasPrefix("model.") { model[String(k.dropFirst(6))] = t }
        if let g = meta["optimizer.param_groups"] {
            guard let groups = try? JSONSerialization.jsonObject(with: Data(g.utf8)) as? [[String: Any]] else {
                throw DataError.corrupt("checkpoint: optimizer.param_groups is not valid JSON")
            }
            var o = OptimizerState()
            for group in groups {
                guard let options = group["options"] as? [String: Any], let params = group["params"] as? [Any] else {
                    throw DataError.corrupt("checkpoint: malformed parameter group")
                }
                o.groups.append((options.compactMapValues { ($0 as? NSNumber)?.doubleValue }, params.compactMap { ($0 as? NSNumber)?.intValue }))
            }
            for (k, t) in sd where k.hasPrefix("optimizer.state.") {
                let rest = k.dropFirst("optimizer.state.".count)
                guard let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]) else {
                    throw DataError.corrupt("checkpoint: bad optimizer state key \(k)")
                }
                o.state[i, default: [:]][String(rest[rest.index(after: dot)...])] = t
            }
            opt = o
        }
        var values = meta
        values["format"] = nil
        values["optimizer.param_groups"] = nil
        return Checkpoint(model: model, optimizer: opt, values: values)
    }
}
