import EmberCore
import Foundation

/// An error from loading one sample: the sample's index and what its data set threw.
public struct SampleError: Error, CustomStringConvertible {
    public let index: Int
    public let underlying: Error
    public var description: String { "DataLoader: sample \(index) failed: \(underlying)" }
}

/// The worker a sample is being loaded on (`torch.utils.data.get_worker_info()`): its id,
/// the number of workers, and its own seed (`loader seed + id`).
public struct WorkerInfo: Sendable {
    public let id: Int, numWorkers: Int, seed: UInt64
    final class Slot { var info: WorkerInfo? }
    static let local = ThreadLocal { Slot() }
    /// Nil on the iterating thread (no workers).
    public static var current: WorkerInfo? { local.value.info }
}

/// Live worker threads in this process (every loader together): tests check it returns to 0.
public enum DataLoaderStats {
    static let lock = NSLock()
    nonisolated(unsafe) static var live = 0
    public static var liveWorkers: Int { lock.lock(); defer { lock.unlock() }; return live }
}

/// Worker threads that turn batch jobs into batches. Holds no reference to any iterator or
/// loader, so dropping those shuts it down.
final class WorkerPool<Batch>: @unchecked Sendable {
    struct Job { let run: Int, number: Int, indices: [Int], epoch: Int }
    let cond = NSCondition()
    var queue: [Job] = []
    var results: [Int: Result<Batch, Error>] = [:]
    var currentRun = 0
    var stopping = false
    var exited = 0
    let count: Int
    let make: (Job) throws -> Batch

    init(workers: Int, seed: UInt64, make: @escaping (Job) throws -> Batch) {
        count = workers
        self.make = make
        for id in 0..<workers {
            let info = WorkerInfo(id: id, numWorkers: workers, seed: seed &+ UInt64(id))
            DataLoaderStats.lock.lock(); DataLoaderStats.live += 1; DataLoaderStats.lock.unlock()
            let t = Thread { [self] in self.loop(info) }
            t.name = "ember-dataloader-\(id)"
            t.start()
        }
    }

    private func loop(_ info: WorkerInfo) {
        WorkerInfo.local.value.info = info
        defer {
            DataLoaderStats.lock.lock(); DataLoaderStats.live -= 1; DataLoaderStats.lock.unlock()
            cond.lock(); exited += 1; cond.broadcast(); cond.unlock()
        }
        while true {
            cond.lock()
            while queue.isEmpty && !stopping { cond.wait() }
            if stopping { cond.unlock(); return }
            let job = queue.removeFirst()
            cond.unlock()
            let r = Result { try make(job) }
            cond.lock()
            if job.run == currentRun { results[job.number] = r }
            cond.broadcast()
            cond.unlock()
        }
    }

    /// Starts a new run: pending jobs and results of the previous run are dropped.
    func newRun() -> Int {
        cond.lock(); defer { cond.unlock() }
        currentRun += 1
        queue.removeAll()
        results.removeAll()
        return currentRun
    }

    func submit(_ job: Job) {
        cond.lock(); queue.append(job); cond.broadcast(); cond.unlock()
    }

    /// Waits for batch `number` of run `run`.
    func take(_ number: Int) -> Result<Batch, Error> {
        cond.lock(); defer { cond.unlock() }
        while results[number] == nil { cond.wait() }
        return results.removeValue(forKey: number)!
    }

    /// Stops every worker and waits until all have exited.
    func shutdown() {
        cond.lock()
        stopping = true
        queue.removeAll()
        results.removeAll()
        cond.broadcast()
        while exited < count { cond.wait() }
        cond.unlock()
    }
}

/// Batches of a data set, loaded by worker threads (`torch.utils.data.DataLoader`).
///
///     let loader = DataLoader(TensorDataset(x, y), batchSize: 64, shuffle: true, numWorkers: 2, seed: 0)
///     for try await batch in loader { … }            // or:
///     try loader.forEach { batch in … }
///
/// - The batches of an epoch are identical for every `numWorkers` (0, 1, 4…): the order
///   comes from the sampler and every sample's random stream (`SampleRandom.current`) from
///   (seed, epoch, index), never from the worker that loads it.
/// - At most `prefetchFactor × numWorkers` batches are in flight or waiting.
/// - A sample that throws ends the iteration with a `SampleError` naming its index; the
///   other workers' work is dropped and nothing waits forever.
/// - Leaving the loop early, or dropping the loader, stops and joins the workers.
/// - Workers are threads: no process spawning, no `__main__` guard, usable anywhere.
public final class DataLoader<Element, Batch>: AsyncSequence, @unchecked Sendable {
    public let count: Int
    public let batchSize: Int, numWorkers: Int, prefetchFactor: Int, dropLast: Bool, persistentWorkers: Bool
    public let seed: UInt64
    /// Whether batches are made in page-locked memory (`pin_memory`), for asynchronous
    /// copies to a GPU (`to(.cuda(0), nonBlocking: true)`). Without a GPU it changes nothing.
    public let pinMemory: Bool
    let sampler: Sampler
    /// Makes the batch of the given sample indices in the given epoch.
    let fetch: ([Int], Int) throws -> Batch
    /// For a streaming data set: a fresh stream per epoch (then `sampler` is unused).
    let stream: (() -> AnyIterator<Element>)?
    let collate: ([Element]) throws -> Batch
    /// The epoch the next iteration will run (advanced by every `makeBatchIterator`).
    public var epoch = 0
    var pool: WorkerPool<Batch>?
    let poolLock = NSLock()

    /// The one initializer the others call: settings, the batch function and the stream.
    private init(count: Int, batchSize: Int, shuffle: Bool, sampler: Sampler?, numWorkers: Int, prefetchFactor: Int,
                 dropLast: Bool, persistentWorkers: Bool, seed: UInt64?, pinMemory: Bool, collate: @escaping ([Element]) throws -> Batch,
                 stream: (() -> AnyIterator<Element>)?, fetch: @escaping (UInt64) -> ([Int], Int) throws -> Batch) {
        Ember.check(batchSize > 0 && numWorkers >= 0 && prefetchFactor > 0, "DataLoader: batchSize (\(batchSize)) and prefetchFactor (\(prefetchFactor)) must be positive and numWorkers (\(numWorkers)) non-negative")
        Ember.check(sampler == nil || !shuffle, "DataLoader: sampler option is mutually exclusive with shuffle")
        self.count = count
        self.batchSize = batchSize
        self.numWorkers = stream == nil ? numWorkers : Swift.min(numWorkers, 1)
        self.prefetchFactor = prefetchFactor
        self.dropLast = dropLast
        self.persistentWorkers = stream == nil && persistentWorkers
        let s = seed ?? Ember.defaultGenerator.next()
        self.seed = s
        self.sampler = sampler ?? (shuffle ? RandomSampler(count: count, seed: s) : SequentialSampler(count: count))
        self.pinMemory = pinMemory
        if pinMemory {
            // Every CPU tensor the batch function makes lands in pinned memory, whatever the
            // batch type; the copies to the GPU then read it directly.
            self.collate = { items in try HostMemory.withPinnedAllocations { try collate(items) } }
            let f = fetch(s)
            self.fetch = { indices, epoch in try HostMemory.withPinnedAllocations { try f(indices, epoch) } }
        } else {
            self.collate = collate
            self.fetch = fetch(s)
        }
        self.stream = stream
    }

    public convenience init<D: Dataset>(_ dataset: D, batchSize: Int = 1, shuffle: Bool = false, sampler: Sampler? = nil,
                                        numWorkers: Int = 0, prefetchFactor: Int = 2, dropLast: Bool = false,
                                        collate: @escaping ([Element]) throws -> Batch, persistentWorkers: Bool = false,
                                        seed: UInt64? = nil, pinMemory: Bool = false) where D.Element == Element {
        self.init(count: dataset.count, batchSize: batchSize, shuffle: shuffle, sampler: sampler, numWorkers: numWorkers,
                  prefetchFactor: prefetchFactor, dropLast: dropLast, persistentWorkers: persistentWorkers, seed: seed,
                  pinMemory: pinMemory, collate: collate, stream: nil) { s in
            { indices, epoch in
                var items: [Element] = []
                items.reserveCapacity(indices.count)
                for i in indices {
                    let g = Generator(seed: SampleRandom.seed(s, epoch: epoch, index: i))
                    do { items.append(try SampleRandom.with(g) { try dataset.element(at: i) }) } catch { throw SampleError(index: i, underlying: error) }
                }
                return try collate(items)
            }
        }
    }

    /// A loader whose batches are fetched whole: `fetch(indices)` returns the batch of those
    /// samples (one gather instead of per-sample loading and stacking, as PyTorch's
    /// `__getitems__`). Every other behaviour is the same.
    public convenience init(count: Int, batchSize: Int = 1, shuffle: Bool = false, sampler: Sampler? = nil, numWorkers: Int = 0,
                            prefetchFactor: Int = 2, dropLast: Bool = false, persistentWorkers: Bool = false, seed: UInt64? = nil,
                            pinMemory: Bool = false, fetch: @escaping ([Int]) throws -> Batch) where Element == Never {
        self.init(count: count, batchSize: batchSize, shuffle: shuffle, sampler: sampler, numWorkers: numWorkers,
                  prefetchFactor: prefetchFactor, dropLast: dropLast, persistentWorkers: persistentWorkers, seed: seed,
                  pinMemory: pinMemory, collate: { _ in fatalError("unreachable") }, stream: nil) { s in
            { indices, epoch in
                try SampleRandom.with(Generator(seed: SampleRandom.seed(s, epoch: epoch, index: indices.first ?? 0))) { try fetch(indices) }
            }
        }
    }

    /// Batches of a streaming data set, in stream order. With workers, one background
    /// thread reads ahead (a stream is sequential) within the same prefetch bound.
    public convenience init<D: IterableDataset>(iterable dataset: D, batchSize: Int = 1, numWorkers: Int = 0, prefetchFactor: Int = 2,
                                                dropLast: Bool = false, collate: @escaping ([Element]) throws -> Batch,
                                                seed: UInt64? = nil, pinMemory: Bool = false) where D.Element == Element {
        self.init(count: 0, batchSize: batchSize, shuffle: false, sampler: nil, numWorkers: numWorkers, prefetchFactor: prefetchFactor,
                  dropLast: dropLast, persistentWorkers: false, seed: seed, pinMemory: pinMemory, collate: collate,
                  stream: { dataset.makeStream() }) { _ in { _, _ in fatalError("unreachable") } }
    }

    deinit { pool?.shutdown() }

    /// Number of batches per epoch.
    public var batchCount: Int {
        let n = BatchSampler(sampler, batchSize: batchSize, dropLast: dropLast).batches(epoch: 0).count
        return n
    }

    func workerPool() -> WorkerPool<Batch> {
        poolLock.lock(); defer { poolLock.unlock() }
        if let p = pool { return p }
        let p: WorkerPool<Batch>
        if let stream {
            // One reader: job n takes the next batchSize elements of the epoch's stream.
            let collate = self.collate, size = self.batchSize, dropLast = self.dropLast
            let state = StreamState<Element>()
            p = WorkerPool<Batch>(workers: 1, seed: seed) { job in
                if job.number == 0 { state.iterator = stream() }
                var items: [Element] = []
                while items.count < size, let e = state.iterator?.next() { items.append(e) }
                if items.isEmpty || (dropLast && items.count < size) { throw StreamEnd() }
                return try collate(items)
            }
        } else {
            p = WorkerPool<Batch>(workers: numWorkers, seed: seed) { [fetch = self.fetch] job in try fetch(job.indices, job.epoch) }
        }
        if persistentWorkers { pool = p }
        return p
    }

    /// A synchronous iterator over the next epoch: `while let b = try it.next() { … }`.
    public func makeBatchIterator() -> BatchIterator {
        defer { epoch += 1 }
        return BatchIterator(self, epoch: epoch)
    }

    /// Runs `body` on every batch of the next epoch; errors from samples or `body` end it.
    public func forEach(_ body: (Batch) throws -> Void) throws {
        let it = makeBatchIterator()
        while let b = try it.next() { try body(b) }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: makeBatchIterator()) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let base: BatchIterator
        public mutating func next() async throws -> Batch? { try base.next() }
    }

    /// One epoch's iteration. Dropping it (an early `break`) stops its workers.
    public final class BatchIterator {
        let loader: DataLoader
        let batches: [[Int]]
        let epoch: Int
        var yielded = 0, submitted = 0
        var pool: WorkerPool<Batch>?
        var run = 0
        var finished = false

        /// The inline stream of a streaming loader without workers.
        var inlineStream: AnyIterator<Element>?

        init(_ loader: DataLoader, epoch: Int) {
            self.loader = loader
            self.epoch = epoch
            if loader.stream != nil {
                batches = []
                if loader.numWorkers == 0 { inlineStream = loader.stream!() }
            } else {
                batches = BatchSampler(loader.sampler, batchSize: loader.batchSize, dropLast: loader.dropLast).batches(epoch: epoch)
            }
            if loader.numWorkers > 0 {
                let p = loader.workerPool()
                pool = p
                run = p.newRun()
            }
        }

        deinit { close() }

        /// The next batch, nil at the end of the epoch.
        public func next() throws -> Batch? {
            if loader.stream != nil { return try nextFromStream() }
            guard !finished, yielded < batches.count else { close(); return nil }
            guard let pool else {
                yielded += 1
                do { return try loader.fetch(batches[yielded - 1], epoch) } catch { close(); throw error }
            }
            let limit = loader.prefetchFactor * loader.numWorkers
            while submitted < batches.count && submitted - yielded < limit {
                pool.submit(.init(run: run, number: submitted, indices: batches[submitted], epoch: epoch))
                submitted += 1
            }
            return try receive(pool)
        }

        private func nextFromStream() throws -> Batch? {
            if finished { return nil }
            if let it = inlineStream {
                var items: [Element] = []
                while items.count < loader.batchSize, let e = it.next() { items.append(e) }
                if items.isEmpty || (loader.dropLast && items.count < loader.batchSize) { close(); return nil }
                do { return try loader.collate(items) } catch { close(); throw error }
            }
            guard let pool else { return nil }
            // Keep `prefetchFactor` batches requested ahead; the stream's end ends the epoch.
            while submitted - yielded < loader.prefetchFactor {
                pool.submit(.init(run: run, number: submitted, indices: [], epoch: epoch))
                submitted += 1
            }
            return try receive(pool)
        }

        /// The next batch in order from the workers; an error (or the stream's end) closes the epoch.
        private func receive(_ pool: WorkerPool<Batch>) throws -> Batch? {
            switch pool.take(yielded) {
            case .success(let b):
                yielded += 1
                return b
            case .failure(let e):
                close()
                if e is StreamEnd { return nil }
                throw e
            }
        }

        /// Stops this epoch: drops queued work; shuts the workers down unless persistent.
        func close() {
            if finished { return }
            finished = true
            guard let pool else { return }
            if loader.persistentWorkers { _ = pool.newRun() } else { pool.shutdown() }
            self.pool = nil
        }
    }
}

extension DataLoader where Element == [Tensor], Batch == [Tensor] {
    /// Batches of `[Tensor]` elements stacked field by field (the default collate).
    public convenience init<D: Dataset>(_ dataset: D, batchSize: Int = 1, shuffle: Bool = false, sampler: Sampler? = nil,
                                        numWorkers: Int = 0, prefetchFactor: Int = 2, dropLast: Bool = false,
                                        persistentWorkers: Bool = false, seed: UInt64? = nil, pinMemory: Bool = false) where D.Element == [Tensor] {
        self.init(dataset, batchSize: batchSize, shuffle: shuffle, sampler: sampler, numWorkers: numWorkers,
                  prefetchFactor: prefetchFactor, dropLast: dropLast, collate: defaultCollate,
                  persistentWorkers: persistentWorkers, seed: seed, pinMemory: pinMemory)
    }
}

/// The end of a stream (internal signal between the reader thread and the iterator).
struct StreamEnd: Error {}

final class StreamState<Element>: @unchecked Sendable {
    var iterator: AnyIterator<Element>?
}

/// Stacks each field of the samples into a batch (`default_collate` for lists of tensors).
public func defaultCollate(_ items: [[Tensor]]) throws -> [Tensor] {
    guard let first = items.first else { return [] }
    return (0..<first.count).map { f in Tensor.stack(items.map { $0[f] }) }
}
