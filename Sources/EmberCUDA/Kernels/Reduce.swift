import EmberCore

// Reductions and softmax on the GPU: sum, prod, max, min, argmax, argmin over any set of
// dimensions (a block per output with a shared-memory tree, or a thread per output when
// there are many outputs of few elements each), and softmax / log-softmax rows.

extension KernelSource {
    /// Reductions of one dtype: sum, prod, max, min, argmax, argmin over the reduced
    /// dimensions of each output element, one block per output with a shared-memory tree.
    /// `gk` maps an output index to the input's base offset; `gr` walks the reduced elements.
    public static func reduceModule(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        let acc = d.isFloatingPoint ? (d == .float64 ? "double" : "float") : "long long"
        var s = prelude + "\n"
        let float = d.isFloatingPoint
        /// (identity, combine(a, b)) of a value reduction; arg reductions compare with `better`.
        func reduction(_ op: ReduceOp) -> (identity: String, combine: String)? {
            switch op {
            case .sum: ("0", "a + b")
            case .prod: ("1", "a * b")
            case .max: (float ? "-EMBER_INF" : "(-9223372036854775807LL - 1)", float ? "(a != a || a > b ? a : b)" : "(a > b ? a : b)")
            case .min: (float ? "EMBER_INF" : "9223372036854775807LL", float ? "(a != a || a < b ? a : b)" : "(a < b ? a : b)")
            case .argmax, .argmin: nil
            }
        }
        func better(_ op: ReduceOp) -> String? {
            switch op {
            case .argmax: ">"
            case .argmin: "<"
            case .sum, .prod, .max, .min: nil
            }
        }
        let ops = ReduceOp.allCases.compactMap { op in reduction(op).map { (op.name, $0.identity, $0.combine) } }
        let argOps = ReduceOp.allCases.compactMap { op in better(op).map { (op.name, $0) } }
        for (n, identity, combine) in ops {
            let outStore = store(d, "r")
            s += """
            extern "C" __global__ void \(name(ReductionKernel.tree.rawValue, n, d.description))(Geo gk, Geo gr, \(st)* out, const \(st)* in) {
                __shared__ \(acc) part[256];
                long long k = blockIdx.x;
                if (k >= gk.n) return;
                long long base[4]; ember_offsets(gk, k, base);
                \(acc) r = \(identity);
                for (long long j = threadIdx.x; j < gr.n; j += blockDim.x) {
                    long long o[4]; ember_offsets(gr, j, o);
                    \(acc) a = r, b = (\(acc))\(load(d, "in[base[1] + o[1]]"));
                    r = \(combine);
                }
                part[threadIdx.x] = r;
                __syncthreads();
                for (int w = blockDim.x / 2; w > 0; w >>= 1) {
                    if (threadIdx.x < w) { \(acc) a = part[threadIdx.x], b = part[threadIdx.x + w]; part[threadIdx.x] = \(combine); }
                    __syncthreads();
                }
                if (threadIdx.x == 0) { r = part[0]; out[base[0]] = \(outStore); }
            }

            """
        }
        // One thread per output, the reduced elements in a serial loop: for many outputs over
        // few elements each (column sums such as bias gradients), where neighbouring threads
        // read neighbouring addresses.
        for (n, identity, combine) in ops {
            s += """
            extern "C" __global__ void \(name(ReductionKernel.perOutput.rawValue, n, d.description))(Geo gk, Geo gr, \(st)* out, const \(st)* in) {
                for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < gk.n; k += (long long)gridDim.x * blockDim.x) {
                    long long base[4]; ember_offsets(gk, k, base);
                    \(acc) r = \(identity);
                    for (long long j = 0; j < gr.n; j++) {
                        long long o[4]; ember_offsets(gr, j, o);
                        \(acc) a = r, b = (\(acc))\(load(d, "in[base[1] + o[1]]"));
                        r = \(combine);
                    }
                    out[base[0]] = \(store(d, "r"));
                }
            }

            """
        }
        for (n, better) in argOps {
            let nanFirst = d.isFloatingPoint ? "(b != b && a == a) || " : ""
            s += """
            extern "C" __global__ void \(name(ReductionKernel.perOutput.rawValue, n, d.description))(Geo gk, Geo gr, long long* out, const \(st)* in) {
                for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < gk.n; k += (long long)gridDim.x * blockDim.x) {
                    long long base[4]; ember_offsets(gk, k, base);
                    \(t) best = 0; long long at = -1;
                    for (long long j = 0; j < gr.n; j++) {
                        long long o[4]; ember_offsets(gr, j, o);
                        \(t) a = best, b = \(load(d, "in[base[1] + o[1]]"));
                        if (at < 0 || \(nanFirst)(a == a && b \(better) a)) { best = b; at = j; }
                    }
                    out[base[0]] = at;
                }
            }

            """
        }
        for (n, better) in argOps {
            let nanFirst = d.isFloatingPoint ? "(b != b && a == a) || " : ""
            s += """
            extern "C" __global__ void \(name(ReductionKernel.tree.rawValue, n, d.description))(Geo gk, Geo gr, long long* out, const \(st)* in) {
                __shared__ \(t) val[256];
                __shared__ long long idx[256];
                long long k = blockIdx.x;
                if (k >= gk.n) return;
                long long base[4]; ember_offsets(gk, k, base);
                \(t) best = 0; long long at = -1;
                for (long long j = threadIdx.x; j < gr.n; j += blockDim.x) {
                    long long o[4]; ember_offsets(gr, j, o);
                    \(t) a = best, b = \(load(d, "in[base[1] + o[1]]"));
                    if (at < 0 || \(nanFirst)(a == a && b \(better) a)) { best = b; at = j; }
                }
                val[threadIdx.x] = best; idx[threadIdx.x] = at;
                __syncthreads();
                for (int w = blockDim.x / 2; w > 0; w >>= 1) {
                    if (threadIdx.x < w) {
                        \(t) a = val[threadIdx.x], b = val[threadIdx.x + w];
                        long long ia = idx[threadIdx.x], ib = idx[threadIdx.x + w];
                        bool take = ib >= 0 && (ia < 0 || \(nanFirst)(a == a && (b \(better) a || (b == a && ib < ia))));
                        if (take) { val[threadIdx.x] = b; idx[threadIdx.x] = ib; }
                    }
                    __syncthreads();
                }
                if (threadIdx.x == 0) out[base[0]] = idx[0];
            }

            """
        }
        s += scanKernels(d) + sortKernel(d)
        if d.isFloatingPoint {
            s += rowStats(d) + """
            // One block per row: softmax (or log-softmax) over n contiguous values.
            extern "C" __global__ void \(name("softmax", d.description))(long long rows, long long n, int logMode, \(st)* out, const \(st)* x) {
                __shared__ \(t) red[256];
                long long row = blockIdx.x; if (row >= rows) return;
                const \(st)* xr = x + row * n; \(st)* orow = out + row * n;
                \(t) m, sum;
                \(name("rowStats", d.description))(xr, n, red, &m, &sum);
                for (long long j = threadIdx.x; j < n; j += blockDim.x) {
                    \(t) v = \(load(d, "xr[j]")) - m;
                    orow[j] = \(store(d, "logMode ? v - ember_log(sum) : ember_exp(v) / sum"));
                }
            }

            """
        }
        return s
    }

    /// Inclusive scans (`ScanOp`) along one dimension: one block per line; each thread
    /// scans a contiguous chunk, the chunk totals are scanned in shared memory, and a second
    /// pass writes every element. float32 accumulates in double, as the CPU does.
    static func scanKernels(_ d: DType) -> String {
        let st = storage(d)
        let acc = d.isFloatingPoint ? "double" : "long long"
        var s = """
        __device__ __forceinline__ double ember_lae(double a, double b) {
            double hi = a > b ? a : b, lo = a > b ? b : a;
            if (a != a || b != b) return a + b;
            if (lo == -EMBER_INF || hi == EMBER_INF) return hi;
            return hi + log1p(exp(lo - hi));
        }

        """
        for op in ScanOp.allCases {
            let (identity, combine): (String, String)
            switch op {
            case .sum: (identity, combine) = ("0", "a + b")
            case .prod: (identity, combine) = ("1", "a * b")
            case .logSumExp:
                guard d.isFloatingPoint else { continue }
                (identity, combine) = ("-EMBER_INF", "ember_lae(a, b)")
            case .max:
                (identity, combine) = d.isFloatingPoint ? ("-EMBER_INF", "(a != a || a >= b ? a : b)") : ("(-9223372036854775807LL - 1)", "(a >= b ? a : b)")
            case .min:
                (identity, combine) = d.isFloatingPoint ? ("EMBER_INF", "(a != a || a <= b ? a : b)") : ("9223372036854775807LL", "(a <= b ? a : b)")
            }
            s += """
            extern "C" __global__ void \(name("scan", op.name, d.description))(Geo gk, long long n, long long sx, long long so, \(st)* out, const \(st)* in) {
                __shared__ \(acc) part[256];
                long long line = blockIdx.x;
                if (line >= gk.n) return;
                long long base[4]; ember_offsets(gk, line, base);
                long long chunk = (n + blockDim.x - 1) / blockDim.x;
                long long lo = threadIdx.x * chunk, hi = lo + chunk < n ? lo + chunk : n;
                \(acc) r = \(identity);
                for (long long j = lo; j < hi; j++) { \(acc) a = r, b = (\(acc))\(load(d, "in[base[1] + j * sx]")); r = \(combine); }
                part[threadIdx.x] = r;
                __syncthreads();
                if (threadIdx.x == 0) {
                    \(acc) run = \(identity);
                    for (int t = 0; t < blockDim.x; t++) { \(acc) a = run, b = part[t]; part[t] = run; run = \(combine); }
                }
                __syncthreads();
                r = part[threadIdx.x];
                for (long long j = lo; j < hi; j++) {
                    \(acc) a = r, b = (\(acc))\(load(d, "in[base[1] + j * sx]"));
                    r = \(combine);
                    out[base[0] + j * so] = \(store(d, "r"));
                }
            }

            """
        }
        return s
    }

    /// Stable sorts along one dimension: one block per line, a bitonic network over the
    /// line padded to a power of two in global scratch, ordered by (value, position) so
    /// that equal values keep their order; NaN is greatest, padding after everything.
    static func sortKernel(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        let nan = d.isFloatingPoint
        return """
        __device__ __forceinline__ bool \(name("sortAfter", d.description))(const \(t)* v, const long long* p, long long a, long long b, int desc) {
            bool pa = p[a] < 0, pb = p[b] < 0;
            if (pa != pb) return pa;
            if (pa) return false;
            \(t) x = v[a], y = v[b];
            bool nx = \(nan ? "x != x" : "false"), ny = \(nan ? "y != y" : "false");
            if (nx != ny) return desc ? ny : nx;
            if (!nx && x != y) return desc ? x < y : x > y;
            return p[a] > p[b];
        }
        extern "C" __global__ void \(name("sort", d.description))(Geo gk, long long n, long long np2, long long sx, long long so, int desc,
                                                               \(st)* values, long long* indices, const \(st)* in, \(t)* sv, long long* sp) {
            long long line = blockIdx.x;
            if (line >= gk.n) return;
            long long base[4]; ember_offsets(gk, line, base);
            \(t)* v = sv + line * np2; long long* p = sp + line * np2;
            for (long long i = threadIdx.x; i < np2; i += blockDim.x) {
                if (i < n) { v[i] = \(load(d, "in[base[1] + i * sx]")); p[i] = i; } else { v[i] = 0; p[i] = -1; }
            }
            __syncthreads();
            for (long long k = 2; k <= np2; k <<= 1) {
                for (long long j = k >> 1; j > 0; j >>= 1) {
                    for (long long i = threadIdx.x; i < np2; i += blockDim.x) {
                        long long l = i ^ j;
                        if (l > i) {
                            bool up = (i & k) == 0;
                            bool swap = up ? \(name("sortAfter", d.description))(v, p, i, l, desc) : \(name("sortAfter", d.description))(v, p, l, i, desc);
                            if (swap) { \(t) tv = v[i]; v[i] = v[l]; v[l] = tv; long long tp = p[i]; p[i] = p[l]; p[l] = tp; }
                        }
                    }
                    __syncthreads();
                }
            }
            for (long long i = threadIdx.x; i < n; i += blockDim.x) {
                values[base[0] + i * so] = \(store(d, "v[i]"));
                indices[base[0] + i * so] = p[i];
            }
        }

        """
    }

    /// A row's maximum m (0 when the row is all -inf) and Σ exp(x − m), by the whole block
    /// (softmax here, cross-entropy's log-sum-exp in `Losses`).
    static func rowStats(_ d: DType) -> String {
        let t = compute(d), st = storage(d)
        return """
        __device__ void \(name("rowStats", d.description))(const \(st)* xr, long long n, \(t)* red, \(t)* mOut, \(t)* sumOut) {
            \(t) m = -EMBER_INF;
            for (long long j = threadIdx.x; j < n; j += blockDim.x) { \(t) v = \(load(d, "xr[j]")); m = v > m || v != v ? v : m; }
            red[threadIdx.x] = m; __syncthreads();
            for (int w = blockDim.x / 2; w > 0; w >>= 1) { if (threadIdx.x < w) { \(t) a = red[threadIdx.x], b = red[threadIdx.x + w]; red[threadIdx.x] = b > a || b != b ? b : a; } __syncthreads(); }
            m = red[0]; if (m == -EMBER_INF) m = 0; __syncthreads();
            \(t) sum = 0;
            for (long long j = threadIdx.x; j < n; j += blockDim.x) sum += ember_exp(\(load(d, "xr[j]")) - m);
            red[threadIdx.x] = sum; __syncthreads();
            for (int w = blockDim.x / 2; w > 0; w >>= 1) { if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w]; __syncthreads(); }
            *mOut = m; *sumOut = red[0];
        }

        """
    }
}

/// How a reduction runs: a block per output (a shared-memory tree, `reduce_*`), or a
/// thread per output with the reduced elements in a serial loop (`reduceEach_*`).
enum ReductionKernel: String {
    case tree = "reduce", perOutput = "reduceEach"

    /// One thread per output when there are many outputs of few elements (column sums such
    /// as bias gradients, where neighbouring threads read neighbouring addresses), else one
    /// block per output with as many threads as the elements use.
    static func plan(outputs: Int, reduced: Int) -> (kernel: ReductionKernel, grid: Int, block: Int) {
        if reduced <= 16 || (reduced <= 1024 && outputs >= 1024) {
            let block = 256
            return (.perOutput, max(1, min((outputs + block - 1) / block, 65535 * 8)), block)
        }
        var block = 32
        while block < 256 && block < reduced { block *= 2 }
        return (.tree, max(1, outputs), block)
    }
}

extension CUDABackend {
    func reduce(_ op: ReduceOp, _ x: Tensor, dims: [Int], _ out: Tensor) {
        let d = x.dtype
        let kept = (0..<x.rank).filter { !dims.contains($0) }
        // gk: output index → (out offset, input base offset); gr: reduced index → input offset.
        let outStrides = kept.map { out.strides[$0] }, inKept = kept.map { x.strides[$0] }
        let gk = geo(kept.map { x.shape[$0] }, [(outStrides, 0), (inKept, 0)])
        let gr = geo(dims.map { x.shape[$0] }, [([], 0), (dims.map { x.strides[$0] }, 0)])
        let args = KernelArgs.forThisThread().addWords(gk).addWords(gr).add(address(out)).add(address(x))
        let (kernel, grid, block) = ReductionKernel.plan(outputs: out.count, reduced: dims.map { x.shape[$0] }.reduce(1, *))
        dev.launch(self.kernel(.reduce, d, KernelSource.name(kernel.rawValue, op.name, d.description)), grid: grid, block: block, args)
    }

    func scan(_ op: ScanOp, _ x: Tensor, dim: Int, _ out: Tensor) {
        if x.count == 0 { return }
        let others = (0..<x.rank).filter { $0 != dim }
        let gk = geo(others.map { x.shape[$0] }, [(others.map { out.strides[$0] }, 0), (others.map { x.strides[$0] }, 0)])
        let n = x.rank == 0 ? 1 : x.shape[dim]
        let sx = x.rank == 0 ? 0 : x.strides[dim], so = x.rank == 0 ? 0 : out.strides[dim]
        var block = 32
        while block < 256 && block * 8 < n { block *= 2 }
        let args = KernelArgs.forThisThread().addWords(gk).add(Int64(n)).add(Int64(sx)).add(Int64(so)).add(address(out)).add(address(x))
        dev.launch(kernel(.reduce, x.dtype, KernelSource.name("scan", op.name, x.dtype.description)),
                   grid: x.count / n, block: block, args)
    }

    func sort(_ x: Tensor, dim: Int, descending: Bool, _ values: Tensor, _ indices: Tensor) {
        if x.count == 0 { return }
        let others = (0..<x.rank).filter { $0 != dim }
        let gk = geo(others.map { x.shape[$0] }, [(others.map { values.strides[$0] }, 0), (others.map { x.strides[$0] }, 0)])
        let n = x.rank == 0 ? 1 : x.shape[dim]
        var np2 = 1
        while np2 < n { np2 <<= 1 }
        let lines = x.count / n
        // Scratch for the padded lines (8 bytes holds every compute type), freed in stream order.
        let scratchValues = Tensor(storage: allocate(bytes: Swift.max(8, lines * np2 * 8), device: values.device), shape: [lines * np2], dtype: .int64)
        let scratchPositions = Tensor(storage: allocate(bytes: Swift.max(8, lines * np2 * 8), device: values.device), shape: [lines * np2], dtype: .int64)
        let sx = x.rank == 0 ? 0 : x.strides[dim], so = x.rank == 0 ? 0 : values.strides[dim]
        let args = KernelArgs.forThisThread().addWords(gk).add(Int64(n)).add(Int64(np2)).add(Int64(sx)).add(Int64(so))
            .add(Int32(descending ? 1 : 0)).add(address(values)).add(address(indices)).add(address(x))
            .add(address(scratchValues)).add(address(scratchPositions))
        dev.launch(kernel(.reduce, x.dtype, KernelSource.name("sort", x.dtype.description)), grid: lines, block: min(256, max(32, np2 / 2)), args)
    }

    func softmax(_ x: Tensor, _ out: Tensor, log: Bool) {
        let n = x.shape.last ?? 1, rows = x.count / max(n, 1)
        if rows == 0 { return }
        let args = KernelArgs.forThisThread().add(Int64(rows)).add(Int64(n)).add(Int32(log ? 1 : 0)).add(address(out)).add(address(x))
        dev.launch(kernel(.reduce, x.dtype, KernelSource.name("softmax", x.dtype.description)), grid: rows, block: 256, args)
    }
}
