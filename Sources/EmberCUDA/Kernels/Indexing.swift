import EmberCore

// Gathers and scatters on the GPU. Index values are checked in the kernels, not on the
// host: a negative one counts from the end; one out of range is skipped and reported
// (`DeviceCheck`) at the next synchronisation. Accumulating kernels add atomically.

extension KernelSource {
    public static func indexingModule(_ d: DType) -> String {
        let st = storage(d), dd = d.description
        func ok(_ k: String, _ size: String, _ code: String) -> String { "\(name("indexOK", dd))(&\(k), \(size), check, \(code))" }
        return prelude + "\n" + checkHelpers(d) + """
        // out[o, i, in] = x[o, index[i], in]
        extern "C" __global__ void \(name("indexSelect", dd))(long long n, long long L, long long dimSize, long long inner, \(st)* out, const \(st)* x, const long long* index, long long* check) {
            \(gridLoop) {
                long long in = i % inner, r = i / inner, li = r % L, o = r / L, k = index[li];
                if (!\(ok("k", "dimSize", "\(DeviceCheck.indexSelect.rawValue)"))) continue;
                out[i] = x[(o * dimSize + k) * inner + in];
            }
        }
        // out[o, index[i], in] += src[o, i, in]
        extern "C" __global__ void \(name("indexAdd", dd))(long long n, long long L, long long dimSize, long long inner, \(st)* out, const \(st)* src, const long long* index, long long* check) {
            \(gridLoop) {
                long long in = i % inner, r = i / inner, li = r % L, o = r / L, k = index[li];
                if (!\(ok("k", "dimSize", "\(DeviceCheck.indexAdd.rawValue)"))) continue;
                \(atomicAdd(d, "out[(o * dimSize + k) * inner + in]", "src[i]"));
            }
        }
        // gather/scatter over a contiguous index tensor; g: [index shape] with strides of x (st[1]) / out (st[0]) / src (st[2])
        extern "C" __global__ void \(name("gather", dd))(Geo g, int dim, long long size, \(st)* out, const \(st)* x, const long long* index, long long* check) {
            for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += (long long)gridDim.x * blockDim.x) {
                long long o[4]; ember_offsets(g, i, o);
                long long k = index[i];
                if (!\(ok("k", "size", "\(DeviceCheck.gather.rawValue)"))) continue;
                out[o[0]] = x[o[1] + k * g.st[3][dim]];
            }
        }
        extern "C" __global__ void \(name("scatter", dd))(Geo g, int dim, int accumulate, long long size, \(st)* out, const \(st)* src, const long long* index, long long* check) {
            for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < g.n; i += (long long)gridDim.x * blockDim.x) {
                long long o[4]; ember_offsets(g, i, o);
                long long k = index[i];
                if (!\(ok("k", "size", "accumulate ? \(DeviceCheck.scatterAdd.rawValue) : \(DeviceCheck.scatter.rawValue)"))) continue;
                long long p = o[0] + k * g.st[3][dim];
                if (accumulate) { \(atomicAdd(d, "out[p]", "src[o[2]]")); } else { out[p] = src[o[2]]; }
            }
        }

        """
    }
}

extension CUDABackend {
    /// indexSelect / indexAdd: `full` is the tensor indexed along `dim` (the other operand
    /// has `index.count` slices there).
    private func indexKernel(_ kernel: String, full: Tensor, dim: Int, out: Tensor, src: Tensor, _ index: Tensor) {
        let outer = full.shape[..<dim].reduce(1, *), inner = full.shape[(dim + 1)...].reduce(1, *)
        let L = index.count, n = outer * L * inner
        if n == 0 { return }
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().add(Int64(n)).add(Int64(L)).add(Int64(full.shape[dim])).add(Int64(inner))
            .add(address(out)).add(address(src)).add(address(index)).add(check)
        dev.launch(self.kernel(.indexing, full.dtype, KernelSource.name(kernel, full.dtype.description)), items: n, args)
    }

    func indexSelect(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        indexKernel("indexSelect", full: x, dim: dim, out: out, src: x, index)
    }

    func indexAdd(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor) {
        indexKernel("indexAdd", full: out, dim: dim, out: out, src: contiguous(src), index)
    }

    func gather(_ x: Tensor, dim: Int, _ index: Tensor, _ out: Tensor) {
        let idx = contiguous(index)
        // Geo over index's shape: st[0] = out, st[1] = x with dim's stride zeroed, st[3] = x's strides.
        var xs = x.strides
        let full = xs
        xs[dim] = 0
        let g = geo(idx.shape, [(out.strides, 0), (xs, 0), ([], 0), (full, 0)])
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().addWords(g).add(Int32(dim)).add(Int64(x.shape[dim])).add(address(out)).add(address(x))
            .add(address(idx)).add(check)
        dev.launch(kernel(.indexing, x.dtype, KernelSource.name("gather", x.dtype.description)), items: idx.count, args)
    }

    func scatter(_ out: Tensor, dim: Int, _ index: Tensor, _ src: Tensor, accumulate: Bool) {
        let idx = contiguous(index)
        var os = out.strides
        let full = os
        os[dim] = 0
        let g = geo(idx.shape, [(os, 0), ([], 0), (src.strides, 0), (full, 0)])
        let check = dev.checkBuffer()
        let args = KernelArgs.forThisThread().addWords(g).add(Int32(dim)).add(Int32(accumulate ? 1 : 0)).add(Int64(out.shape[dim]))
            .add(address(out)).add(address(src)).add(address(idx)).add(check)
        dev.launch(kernel(.indexing, out.dtype, KernelSource.name("scatter", out.dtype.description)), items: idx.count, args)
    }

    func maskedSelect(_ x: Tensor, _ mask: Tensor) -> Tensor {
        // Positions are found on the host (one small copy), the values gathered on the GPU.
        let m = mask.to(.cpu).contiguous().toArray(Bool.self)
        let positions = m.enumerated().filter { $0.element }.map { Int64($0.offset) }
        let flat = x.contiguous().reshape([-1])
        let out = Tensor.empty([positions.count], dtype: x.dtype, device: x.device)
        if positions.isEmpty { return out }
        indexSelect(flat, dim: 0, Tensor(positions, device: x.device), out)
        return out
    }
}
