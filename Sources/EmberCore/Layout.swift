/// Shape, element strides and starting offset of a tensor over its storage.
/// Views (reshape, permute, slice, expand) only make a new `Layout`; broadcasting is stride 0.
public struct Layout: Equatable, Sendable {
    public var shape: [Int]
    public var strides: [Int]
    public var offset: Int

    public init(shape: [Int], strides: [Int], offset: Int = 0) {
        self.shape = shape
        self.strides = strides
        self.offset = offset
    }

    /// A row-major contiguous layout.
    public init(contiguous shape: [Int]) {
        self.shape = shape
        self.strides = Layout.contiguousStrides(shape)
        self.offset = 0
    }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        var d = shape.count - 1
        while d >= 0 {
            s[d] = acc
            acc *= max(shape[d], 1)
            d -= 1
        }
        return s
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    /// Row-major contiguous (size-1 dimensions may have any stride).
    public var isContiguous: Bool {
        var expected = 1
        var d = shape.count - 1
        while d >= 0 {
            if shape[d] != 1 {
                if strides[d] != expected { return false }
                expected *= shape[d]
            }
            d -= 1
        }
        return true
    }

    /// Exactly the strides `Layout(contiguous: shape)` would have (size-1 dims included).
    var hasRowMajorStrides: Bool {
        var expected = 1
        var d = shape.count - 1
        while d >= 0 {
            if strides[d] != expected { return false }
            expected *= Swift.max(shape[d], 1)
            d -= 1
        }
        return true
    }

    /// This layout broadcast to `target` (PyTorch rules: align right; size 1 stretches with stride 0).
    func broadcast(to target: [Int]) -> Layout? {
        let extra = target.count - shape.count
        if extra < 0 { return nil }
        var st = [Int](repeating: 0, count: target.count)
        for d in 0..<shape.count {
            let td = d + extra
            if shape[d] == target[td] {
                st[td] = shape[d] == 1 ? 0 : strides[d]
            } else if shape[d] == 1 {
                st[td] = 0
            } else {
                return nil
            }
        }
        return Layout(shape: target, strides: st, offset: offset)
    }

    /// The strides a view of shape `newShape` over this layout would have, or nil when the
    /// memory cannot be viewed that way without a copy (PyTorch's `computeStride`).
    func viewStrides(_ newShape: [Int]) -> [Int]? {
        if count == 0 || isContiguous { return Layout.contiguousStrides(newShape) }
        var newStrides = [Int](repeating: 0, count: newShape.count)
        var viewD = newShape.count - 1
        var chunkBase = strides.last ?? 1
        var tensorNumel = 1
        var viewNumel = 1
        var td = shape.count - 1
        while td >= 0 {
            tensorNumel *= shape[td]
            if td == 0 || (shape[td - 1] != 1 && strides[td - 1] != tensorNumel * chunkBase) {
                while viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] == 1) {
                    newStrides[viewD] = viewNumel * chunkBase
                    viewNumel *= newShape[viewD]
                    viewD -= 1
                }
                if viewNumel != tensorNumel { return nil }
                if td > 0 {
                    chunkBase = strides[td - 1]
                    tensorNumel = 1
                    viewNumel = 1
                }
            }
            td -= 1
        }
        if viewD != -1 { return nil }
        return newStrides
    }
}

/// Resolves a possibly negative dimension index against `rank`.
func normalizeDim(_ dim: Int, _ rank: Int, op: String) throws -> Int {
    let r = max(rank, 1)
    try require(dim >= -r && dim < r,
                "\(op): dimension out of range (expected to be in range of [\(-r), \(r - 1)], but got \(dim))")
    return dim < 0 ? dim + r : dim
}

/// The broadcast shape of two shapes, or an error naming the op and both shapes.
func broadcastShapes(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        if da == db || db == 1 {
            out[i] = da
        } else if da == 1 {
            out[i] = db
        } else {
            throw EmberError.invalidArgument(
                "\(op): shapes \(fmt(a)) and \(fmt(b)) cannot be broadcast together (size \(da) vs \(db) at dimension \(i))")
        }
    }
    return out
}
