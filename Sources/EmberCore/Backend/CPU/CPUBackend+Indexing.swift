import EmberCPU
import Foundation

/// Gathers and scatters on the CPU. Index values are checked before anything is written
/// (the op's message names the first bad value), and negative ones count from the end.
extension CPUBackend {
    /// `index` (contiguous int64) with every value in `0..<size`: itself when it already is,
    /// else a copy with negative values wrapped. Stops on a value out of range.
    func checkedIndices(_ index: Tensor, size: Int, _ op: String) -> Tensor {
        let p = index.ptr(Int64.self)
        var fixed: Tensor? = nil
        for i in 0..<index.count {
            let v = p[i]
            if v >= 0 && v < Int64(size) { continue }
            if v < -Int64(size) || v >= Int64(size) {
                misuse(EmberError.invalidArgument("\(op): index \(v) is out of bounds for dimension with size \(size)"))
            }
            if fixed == nil {
                let c = Tensor(uninitialized: index.shape, dtype: .int64)
                c.ptr(Int64.self).update(from: p, count: index.count)
                fixed = c
            }
            fixed!.ptr(Int64.self)[i] = v + Int64(size)
        }
        return fixed ?? index
    }

    public func indexSelect(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        let outer = x.shape[..<dim].reduce(1, *)
        let inner = x.shape[(dim + 1)...].reduce(1, *)
        let n = x.shape[dim], L = index.count
        let item = x.dtype.itemSize
        let checked = checkedIndices(index, size: n, "indexSelect")
        let idx = checked.ptr(Int64.self)
        let src = x.storage.data + x.layout.offset * item
        let dst = out.storage.data + out.layout.offset * item
        let rowBytes = inner * item
        parallelFor(outer * L, grain: max(1, elementwiseGrain / max(inner, 1))) { range in
            for t in range {
                let o = t / L, i = t % L
                let j = Int(idx[i])
                memcpy(dst + (o * L + i) * rowBytes, src + (o * n + j) * rowBytes, rowBytes)
            }
        }
    }

    public func indexAdd(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor) {
        let outer = out.shape[..<dim].reduce(1, *)
        let inner = out.shape[(dim + 1)...].reduce(1, *)
        let n = out.shape[dim], L = index.count
        let checked = checkedIndices(index, size: n, "indexAdd")
        let idx = checked.ptr(Int64.self)
        func run<T: CPUNumber>(_: T.Type) {
            let o = out.ptr(T.self), s = src.ptr(T.self)
            parallelFor(outer, grain: 1) { range in  // rows of different `o` never collide
                for oi in range {
                    for i in 0..<L {
                        let d = o + (oi * n + Int(idx[i])) * inner, sp = s + (oi * L + i) * inner
                        for k in 0..<inner { d[k] = T.add(d[k], sp[k]) }
                    }
                }
            }
        }
        numericSwitch(out.dtype, "indexAdd", { run(Float.self) }, { run(Double.self) }, { run(Int64.self) },
                      { run(Int32.self) }, { run(UInt8.self) }, { run(Bool.self) })
        out.storage.bumpVersion()
    }

    public func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        var xs = x.strides
        let dimStride = xs[dim]
        xs[dim] = 0
        let checked = checkedIndices(index, size: x.shape[dim], "gather")
        let p = StridedPlan(shape: index.shape, out.strides, checked.strides, xs)
        let idx = checked.ptr(Int64.self)
        func run<T>(_: T.Type) {
            let o = out.ptr(T.self), s = x.ptr(T.self)
            let so = p.innerStride(0), si = p.innerStride(1), sx = p.innerStride(2), n = p.inner
            p.forEachRow(0..<p.rows) { off in
                for e in 0..<n {
                    o[off[0] + e * so] = s[off[2] + e * sx + Int(idx[off[1] + e * si]) * dimStride]
                }
            }
        }
        switch x.dtype.itemSize {
        case 1: run(UInt8.self)
        case 2: run(UInt16.self)
        case 4: run(UInt32.self)
        default: run(UInt64.self)
        }
    }

    public func scatter(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor, accumulate: Bool) {
        var os = out.strides
        let dimStride = os[dim]
        os[dim] = 0
        let checked = checkedIndices(index, size: out.shape[dim], accumulate ? "scatterAdd" : "scatter")
        let p = StridedPlan(shape: index.shape, checked.strides, src.strides, os)
        let idx = checked.ptr(Int64.self)
        let si = p.innerStride(0), ss = p.innerStride(1), so = p.innerStride(2), n = p.inner
        func run<T>(_: T.Type, _ combine: (T, T) -> T) {
            let o = out.ptr(T.self), s = src.ptr(T.self)
            p.forEachRow(0..<p.rows) { off in
                for e in 0..<n {
                    let dst = o + off[2] + e * so + Int(idx[off[0] + e * si]) * dimStride
                    dst.pointee = combine(dst.pointee, s[off[1] + e * ss])
                }
            }
        }
        if accumulate {
            func add<T: CPUNumber>(_: T.Type) { run(T.self) { T.add($0, $1) } }
            numericSwitch(out.dtype, "scatterAdd", { add(Float.self) }, { add(Double.self) }, { add(Int64.self) },
                          { add(Int32.self) }, { add(UInt8.self) }, { add(Bool.self) })
        } else {
            switch out.dtype.itemSize {
            case 1: run(UInt8.self) { $1 }
            case 2: run(UInt16.self) { $1 }
            case 4: run(UInt32.self) { $1 }
            default: run(UInt64.self) { $1 }
            }
        }
        out.storage.bumpVersion()
    }

    public func maskedSelect(_ x: Tensor, _ mask: Tensor) -> Tensor {
        let p = StridedPlan(shape: x.shape, x.strides, mask.strides)
        let m = mask.ptr(Bool.self)
        var count = 0
        let sm = p.innerStride(1), n = p.inner
        p.forEachRow(0..<p.rows) { off in
            for e in 0..<n where m[off[1] + e * sm] { count += 1 }
        }
        let out = Tensor(uninitialized: [count], dtype: x.dtype)
        let item = x.dtype.itemSize
        let src = x.storage.data + x.layout.offset * item
        var w = out.storage.data
        let sx = p.innerStride(0)
        p.forEachRow(0..<p.rows) { off in
            for e in 0..<n where m[off[1] + e * sm] {
                memcpy(w, src + (off[0] + e * sx) * item, item)
                w += item
            }
        }
        return out
    }
}
