import EmberCore
import Foundation

// Reading the fixtures' JSON values, and comparing Ember's results with PyTorch's: the
// tolerances every check uses, by dtype.

/// A JSON number, or "inf"/"-inf"/"nan".
public func number(_ v: Any) -> Double {
    if let s = v as? String { return s == "nan" ? .nan : (s == "inf" ? .infinity : -.infinity) }
    if let b = v as? Bool { return b ? 1 : 0 }
    return (v as! NSNumber).doubleValue
}
public func numbers(_ v: Any?) -> [Double] { (v as! [Any]).map(number) }

public func dtypeNamed(_ s: String) -> DType { DType.allCases.first { $0.description == s }! }

/// A tensor from a fixture's `{"shape", "dtype", "data"}`.
public func fixtureTensor(_ v: Any?) -> Tensor {
    let d = v as! [String: Any]
    let shape = (d["shape"] as! [Any]).map { Int(number($0)) }
    return Tensor(numbers(d["data"]), shape: shape, dtype: dtypeNamed(d["dtype"] as! String))
}

/// Tolerances by dtype (relative, absolute).
public func tolerance(_ d: DType) -> (Double, Double) {
    switch d {
    case .float64: (1e-9, 1e-10)
    case .float32: (2e-4, 2e-5)
    case .float16: (2e-3, 1e-3)
    case .bfloat16: (1.6e-2, 1e-2)
    default: (0, 0)
    }
}

/// Compares values; returns a description of the first mismatch, or nil.
public func mismatch(_ got: [Double], _ want: [Double], _ d: DType, scale: Double = 1) -> String? {
    if got.count != want.count { return "count \(got.count) != \(want.count)" }
    let (rtol, atol) = tolerance(d)
    for i in 0..<got.count {
        let g = got[i], w = want[i]
        if g.isNaN && w.isNaN { continue }
        if g == w { continue }
        if Swift.abs(g - w) > atol * scale + rtol * Swift.abs(w) {
            return "element \(i): got \(g), expected \(w) (got \(Array(got.prefix(6))), expected \(Array(want.prefix(6))))"
        }
    }
    return nil
}
