/// An ordered map from dotted names to tensors (`state_dict()`).
public struct StateDict: Sequence {
    public private(set) var keys: [String] = []
    private var values: [String: Tensor] = [:]

    public init() {}
    public init(_ pairs: [(String, Tensor)]) { for (k, v) in pairs { self[k] = v } }

    public subscript(_ key: String) -> Tensor? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }

    public var count: Int { keys.count }
    public func makeIterator() -> AnyIterator<(String, Tensor)> {
        var i = 0
        return AnyIterator {
            guard i < keys.count else { return nil }
            defer { i += 1 }
            return (keys[i], values[keys[i]]!)
        }
    }
}

/// Errors from loading state into modules and optimizers.
public enum StateDictError: Error, Equatable, CustomStringConvertible {
    case mismatch(missing: [String], unexpected: [String], wrongShape: [String])

    public var description: String {
        switch self {
        case .mismatch(let missing, let unexpected, let wrongShape):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("Missing key(s) in state_dict: " + missing.map { "\"\($0)\"" }.joined(separator: ", ")) }
            if !unexpected.isEmpty { parts.append("Unexpected key(s) in state_dict: " + unexpected.map { "\"\($0)\"" }.joined(separator: ", ")) }
            if !wrongShape.isEmpty { parts.append("size mismatch: " + wrongShape.joined(separator: "; ")) }
            return "Error(s) in loading state_dict: " + parts.joined(separator: ". ")
        }
    }
}
