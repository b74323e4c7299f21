import EmberCore
import EmberNN
import Foundation

/// Data-parallel training (`torch.nn.parallel.DistributedDataParallel`).
///
/// Each rank runs the same model on its own share of every batch; during backward the
/// gradients are averaged across ranks, so every rank's optimizer takes the same step.
///
///     let ddp = try DistributedDataParallel(model, group: group)
///     let loss = crossEntropy(ddp(x), y)
///     try loss.backward()          // gradients arrive averaged over all ranks
///     optimizer.step()
///
/// - Construction checks that every rank has the same parameters (names' count, shapes and
///   dtypes) and copies rank 0's parameters and buffers to all ranks.
/// - Gradients are packed, in reverse order of registration (roughly the order backward
///   produces them), into buckets of at most `bucketCapMB` megabytes (the first one 1 MB so
///   that communication starts early). A hook on each parameter copies its gradient into its
///   bucket as soon as the gradient is final; a full bucket is reduced on the communication
///   thread while backward goes on. Buckets start in index order on every rank.
/// - Parameters that get no gradient in a backward pass stop the pass with an error naming
///   them, unless `findUnusedParameters` is set, in which case their slots are reduced as
///   zeros and a parameter that no rank used keeps no gradient.
/// - `noSync { … }` runs forward/backward without communication: gradients accumulate
///   locally and the next synchronised backward averages the accumulated sum.
public final class DistributedDataParallel<M: Module>: Module {
    /// The wrapped model (its state dict names appear under `module.` as in PyTorch).
    public let module: M
    public let group: ProcessGroup
    public let findUnusedParameters: Bool
    /// Broadcast buffers (batch-norm statistics) from rank 0 before each forward.
    public let broadcastBuffers: Bool
    /// Gradients are views of the communication buckets (no copy after the reduction; a
    /// gradient kept across steps is overwritten by the next backward), as PyTorch's
    /// `gradient_as_bucket_view=True`.
    public let gradientAsBucketView: Bool

    private let params: [(name: String, tensor: Tensor)]
    private var buckets: [Bucket] = []
    private var slot: [ObjectIdentifier: (bucket: Int, offset: Int, index: Int)] = [:]
    private var sync = true
    private var pass: Int?
    private var nextLaunch = 0
    private var hadPrevious: Set<Int> = []
    private var hooked: Set<Int> = []

    final class Bucket {
        let dtype: DType
        var members: [Int] = []          // indices into params
        var offsets: [Int] = []
        var count = 0
        var flat: Tensor!
        var pending = 0
        var work: Work?
        init(dtype: DType) { self.dtype = dtype }
    }

    /// Wraps `module` (`DistributedDataParallel(module)`).
    public init(_ module: M, group: ProcessGroup? = nil, bucketCapMB: Double = 25,
                findUnusedParameters: Bool = false, broadcastBuffers: Bool = true,
                gradientAsBucketView: Bool = true) throws {
        guard let g = group ?? Distributed.defaultGroup else {
            throw DistributedError.rendezvous("DistributedDataParallel needs a process group: call Distributed.initProcessGroup() first")
        }
        self.module = module
        self.group = g
        self.findUnusedParameters = findUnusedParameters
        self.broadcastBuffers = broadcastBuffers
        self.gradientAsBucketView = gradientAsBucketView
        params = module.namedParameters().filter { $0.1.requiresGrad }.map { ($0.0, $0.1) }
        super.init()
        try verifyAcrossRanks()
        try withNoGrad {
            var works: [Work] = []
            for (_, p) in module.namedParameters() { works.append(g.broadcastAsync(p, from: 0)) }
            for (_, b) in module.namedBuffers() { works.append(g.broadcastAsync(b, from: 0)) }
            for w in works { try w.wait() }
        }
        makeBuckets(capBytes: Int(bucketCapMB * 1_048_576))
        for (i, (_, p)) in params.enumerated() {
            p.registerHook { [weak self] grad in try self?.gradientReady(i, grad) }
        }
    }

    public override func namedChildren() -> [(String, Module)] { [("module", module)] }

    public override func callAsFunction(_ input: Tensor) -> Tensor {
        syncBuffersIfNeeded()
        return module(input)
    }

    /// Runs a forward pass of any shape through the wrapped module (buffers synchronised
    /// first, like `callAsFunction`).
    public func forward<R>(_ body: (M) throws -> R) rethrows -> R {
        syncBuffersIfNeeded()
        return try body(module)
    }

    /// Runs `body` (forward and backward) without averaging gradients (`no_sync`).
    public func noSync<R>(_ body: () throws -> R) rethrows -> R {
        let old = sync
        sync = false
        defer { sync = old }
        return try body()
    }

    /// The buckets' parameter names, in reduction order (for inspection and tests).
    public var bucketParameterNames: [[String]] { buckets.map { $0.members.map { params[$0].name } } }

    // MARK: - Setup

    private func verifyAcrossRanks() throws {
        func describe(_ i: Int) -> String {
            "\(params[i].name) \(params[i].tensor.dtype) [\(params[i].tensor.shape.map(String.init).joined(separator: ", "))]"
        }
        var hashes: [Int64] = [Int64(params.count)]
        for i in params.indices { hashes.append(fingerprint(describe(i))) }
        // Counts first, then per-parameter fingerprints up to the smallest count.
        let dev = group.device
        let counts = try group.allGather(Tensor([Int64(params.count)]).to(dev)).map { Int($0.item(Int64.self)) }
        let n = counts.min()!
        let all = try group.allGather(Tensor(Array(hashes.prefix(n + 1))).to(dev))
        let rows = all.map { $0.toArray(Int64.self) }
        guard let i = (1...max(n, 1)).first(where: { k in k <= n && rows.contains { $0[k] != rows[0][k] } }) else {
            if Set(counts).count > 1 {
                throw DistributedError.mismatch(
                    "DistributedDataParallel: the ranks' models have different numbers of parameters: "
                    + counts.enumerated().map { "rank \($0.offset): \($0.element)" }.joined(separator: ", "))
            }
            return
        }
        let width = 256
        var me = [UInt8](repeating: 0, count: width)
        for (k, b) in describe(i - 1).utf8.prefix(width - 1).enumerated() { me[k] = b }
        let gathered = try group.allGather(Tensor(me).to(dev))
        let lines = gathered.enumerated().map { r, t -> String in
            let bytes = t.toArray(UInt8.self).prefix { $0 != 0 }
            return "rank \(r): \(String(decoding: bytes, as: UTF8.self))"
        }
        throw DistributedError.mismatch(
            "DistributedDataParallel: parameter \(i - 1) differs across ranks: " + lines.joined(separator: "; "))
    }

    private func makeBuckets(capBytes: Int) {
        var current: Bucket?
        var cap = min(capBytes, 1_048_576)
        var bytes = 0
        for i in params.indices.reversed() {
            let p = params[i].tensor
            let size = p.count * p.dtype.itemSize
            if let c = current, c.dtype != p.dtype || (bytes + size > cap && !c.members.isEmpty) {
                buckets.append(c)
                current = nil
                cap = capBytes
            }
            if current == nil { current = Bucket(dtype: p.dtype); bytes = 0 }
            let b = current!
            slot[ObjectIdentifier(p)] = (buckets.count, b.count, b.members.count)
            b.members.append(i)
            b.offsets.append(b.count)
            b.count += p.count
            bytes += size
        }
        if let c = current { buckets.append(c) }
        for b in buckets { b.flat = Tensor.zeros([b.count], dtype: b.dtype, device: group.device) }
    }

    private func syncBuffersIfNeeded() {
        guard broadcastBuffers && group.worldSize > 1 else { return }
        let buffers = module.namedBuffers()
        guard !buffers.isEmpty else { return }
        do {
            try withNoGrad {
                let works = buffers.map { group.broadcastAsync($0.1, from: 0) }
                for w in works { try w.wait() }
            }
        } catch {
            fatalError("DistributedDataParallel: broadcasting buffers failed: \(error)")
        }
    }

    // MARK: - Backward

    /// 1 / world size: gradients are scaled on their way into the buckets.
    private var scale: Double { 1 / Double(group.worldSize) }

    private func view(_ i: Int) -> Tensor {
        let p = params[i].tensor
        let s = slot[ObjectIdentifier(p)]!
        return buckets[s.bucket].flat[s.offset..<(s.offset + p.count)].view(p.shape)
    }

    private func gradientReady(_ i: Int, _ grad: Tensor) throws -> Tensor? {
        guard sync else { return nil }
        if pass != Autograd.currentPass {
            pass = Autograd.currentPass
            nextLaunch = 0
            hadPrevious = []
            hooked = []
            for b in buckets { b.pending = b.members.count; b.work = nil }
            Autograd.queueCallback { [weak self] in try self?.finishBackward() }
        }
        guard hooked.insert(i).inserted else { return nil }
        let p = params[i].tensor
        let v = view(i)
        // Each gradient enters its bucket already divided by the world size (one pass), so
        // the bucket's sum over ranks is the average.
        withNoGrad {
            if let prev = p.grad {
                hadPrevious.insert(i)
                v.copy_(prev + grad, scaledBy: scale)
            } else {
                v.copy_(grad, scaledBy: scale)
            }
        }
        let b = buckets[slot[ObjectIdentifier(p)]!.bucket]
        b.pending -= 1
        launchReady()
        if gradientAsBucketView { Autograd.adoptAsGradient(v) }
        return v
    }

    /// Starts every bucket whose gradients are all in, in index order.
    private func launchReady() {
        while nextLaunch < buckets.count && buckets[nextLaunch].pending == 0 {
            let b = buckets[nextLaunch]
            b.work = group.allReduceAsync(b.flat, op: .sum, verifying: false)
            nextLaunch += 1
        }
    }

    private func finishBackward() throws {
        defer { pass = nil }
        let missing = params.indices.filter { !hooked.contains($0) }
        if !missing.isEmpty {
            guard findUnusedParameters else {
                // Reduce nothing: the other ranks' buckets time out or fail the same way.
                throw DistributedError.backend(
                    "DistributedDataParallel: parameters got no gradient in this backward pass: "
                    + missing.prefix(8).map { params[$0].name }.joined(separator: ", ")
                    + (missing.count > 8 ? " … (\(missing.count) in all)" : "")
                    + ". Make every parameter take part in the loss, or pass findUnusedParameters: true")
            }
            withNoGrad {
                for i in missing {
                    let v = view(i)
                    if let prev = params[i].tensor.grad { hadPrevious.insert(i); v.copy_(prev, scaledBy: scale) } else { v.fill_(0) }
                    buckets[slot[ObjectIdentifier(params[i].tensor)]!.bucket].pending -= 1
                }
            }
        }
        // Every rank issues the remaining buckets in index order, then (when unused
        // parameters are allowed) the bitmap of which parameters any rank used.
        launchReady()
        Ember.check(nextLaunch == buckets.count, "DistributedDataParallel: a bucket was not started")
        var usedAnywhere: [Bool] = Array(repeating: true, count: params.count)
        if findUnusedParameters {
            var flags = [Int32](repeating: 0, count: params.count)
            for i in hooked { flags[i] = 1 }
            let used = Tensor(flags).to(group.device)
            try group.allReduceAsync(used, op: .max, verifying: false).wait()
            usedAnywhere = used.to(.cpu).toArray(Int32.self).map { $0 != 0 }
        }
        for b in buckets { try b.work?.wait() }
        withNoGrad {
            for i in hadPrevious where hooked.contains(i) { params[i].tensor.grad = nil }
            for i in missing where usedAnywhere[i] || hadPrevious.contains(i) {
                params[i].tensor.grad = gradientAsBucketView ? view(i) : view(i).clone()
            }
        }
    }
}

