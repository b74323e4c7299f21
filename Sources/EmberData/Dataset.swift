import EmberCore
import Foundation

/// A random-access data set: a count and the element at an index (`torch.utils.data.Dataset`).
/// `element(at:)` may throw (a missing file, a corrupt record): the DataLoader reports the
/// error with the sample's index.
public protocol Dataset<Element> {
    associatedtype Element
    var count: Int { get }
    func element(at index: Int) throws -> Element
}

/// A streaming data set that yields elements in order (`IterableDataset`).
public protocol IterableDataset<Element> {
    associatedtype Element
    /// A fresh pass over the data.
    func makeStream() -> AnyIterator<Element>
}

/// Slices of tensors along their first dimension (`TensorDataset`).
public struct TensorDataset: Dataset {
    public let tensors: [Tensor]
    public init(_ tensors: Tensor...) { self.init(tensors) }
    public init(_ tensors: [Tensor]) {
        Ember.check(!tensors.isEmpty && tensors.allSatisfy { $0.shape.first == tensors[0].shape.first },
                     "TensorDataset: size mismatch between tensors \(tensors.map(\.shape))")
        self.tensors = tensors
    }
    public var count: Int { tensors[0].shape[0] }
    public func element(at index: Int) throws -> [Tensor] { tensors.map { $0[index] } }
}

/// The elements of `base` at `indices` (`Subset`).
public struct Subset<Base: Dataset>: Dataset {
    public let base: Base
    public let indices: [Int]
    public init(_ base: Base, indices: [Int]) {
        Ember.check(indices.allSatisfy { $0 >= 0 && $0 < base.count }, "Subset: index out of range for a data set of \(base.count)")
        self.base = base
        self.indices = indices
    }
    public var count: Int { indices.count }
    public func element(at index: Int) throws -> Base.Element { try base.element(at: indices[index]) }
}

/// Several data sets one after another (`ConcatDataset`).
public struct ConcatDataset<Element>: Dataset {
    let parts: [any Dataset<Element>]
    let ends: [Int]
    public init(_ parts: [any Dataset<Element>]) {
        self.parts = parts
        var acc = 0
        ends = parts.map { acc += $0.count; return acc }
    }
    public var count: Int { ends.last ?? 0 }
    public func element(at index: Int) throws -> Element {
        let part = ends.firstIndex { index < $0 }!
        return try parts[part].element(at: index - (part == 0 ? 0 : ends[part - 1]))
    }
}

/// Splits a data set into random, non-overlapping subsets of the given lengths (`random_split`).
public func randomSplit<D: Dataset>(_ dataset: D, lengths: [Int], seed: UInt64) -> [Subset<D>] {
    Ember.check(lengths.reduce(0, +) == dataset.count, "randomSplit: lengths \(lengths) do not sum to the data set's \(dataset.count)")
    let perm = Tensor.randperm(dataset.count, generator: Generator(seed: seed)).toArray(Int.self)
    var start = 0
    return lengths.map { n in
        defer { start += n }
        return Subset(dataset, indices: Array(perm[start..<(start + n)]))
    }
}

/// A data set whose elements pass through `transform` (which may draw random numbers from
/// `SampleRandom.current`, the per-sample stream the DataLoader provides).
public struct TransformedDataset<Base: Dataset, Element>: Dataset {
    public let base: Base
    public let transform: (Base.Element) throws -> Element
    public init(_ base: Base, _ transform: @escaping (Base.Element) throws -> Element) {
        self.base = base
        self.transform = transform
    }
    public var count: Int { base.count }
    public func element(at index: Int) throws -> Element { try transform(try base.element(at: index)) }
}

extension Dataset {
    /// This data set with `transform` applied to every element.
    public func map<T>(_ transform: @escaping (Element) throws -> T) -> TransformedDataset<Self, T> {
        TransformedDataset(self, transform)
    }
}

extension FashionMNIST: Dataset {
    /// `[image float32 [1, 28, 28] in 0…1, label int64 []]`.
    public func element(at index: Int) throws -> [Tensor] {
        [(images[index].to(.float32) / 255).unsqueeze(0), labels[index]]
    }
}

/// Numeric columns of a CSV file as a float32 tensor `[rows, columns]`.
public enum CSV {
    /// Parses CSV text: comma-separated numbers, optional header line, blank lines skipped.
    /// - Throws: `DataError.format` naming the line and column of the first bad value, or
    ///   rows of different lengths.
    public static func parse(_ text: String, header: Bool = false, dtype: DType = .float32) throws -> (columns: [String], values: Tensor) {
        var lines = text.split(omittingEmptySubsequences: true) { $0 == "\n" || $0 == "\r\n" }.map { $0.trimmingCharacters(in: .whitespaces) }
        lines.removeAll { $0.isEmpty }
        var names: [String] = []
        if header, !lines.isEmpty { names = lines.removeFirst().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        var values: [Double] = []
        var width: Int? = names.isEmpty ? nil : names.count
        for (i, line) in lines.enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if let w = width, fields.count != w {
                throw DataError.format("CSV line \(i + (header ? 2 : 1)): \(fields.count) fields, expected \(w)")
            }
            width = fields.count
            for (j, f) in fields.enumerated() {
                guard let v = Double(f.trimmingCharacters(in: .whitespaces)) else {
                    throw DataError.format("CSV line \(i + (header ? 2 : 1)), column \(j + 1): '\(f)' is not a number")
                }
                values.append(v)
            }
        }
        let w = width ?? 0
        return (names, Tensor(values, shape: [lines.count, w], dtype: dtype))
    }

    public static func read(_ path: String, header: Bool = false) throws -> (columns: [String], values: Tensor) {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.io("cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw DataError.format("\(path) is not UTF-8 text") }
        return try parse(text, header: header)
    }
}

/// Rows of a CSV file: features from `featureColumns`, the target from `targetColumn`.
public struct CSVDataset: Dataset {
    public let features: Tensor, targets: Tensor?
    public init(path: String, header: Bool = true, targetColumn: Int? = nil) throws {
        let (_, v) = try CSV.read(path, header: header)
        if let t = targetColumn {
            guard t >= 0 && t < v.shape[1] else { throw DataError.format("CSV: target column \(t) out of range (\(v.shape[1]) columns)") }
            let keep = (0..<v.shape[1]).filter { $0 != t }
            features = v.indexSelect(1, Tensor(keep))
            targets = v.select(1, t)
        } else {
            features = v
            targets = nil
        }
    }
    public var count: Int { features.shape[0] }
    public func element(at index: Int) throws -> [Tensor] { [features[index]] + (targets.map { [$0[index]] } ?? []) }
}
