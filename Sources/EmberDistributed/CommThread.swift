import Foundation

/// The thread that makes every call into the communication library, in submission order.
///
/// Collectives must be issued in the same order on every rank, and MPI is initialised here
/// with `MPI_THREAD_FUNNELED`, so one thread owns the library. Callers get a `Work` back at
/// once, which is what lets data-parallel training reduce one bucket of gradients while
/// backward computes the next. Point-to-point requests are polled between jobs so that a
/// pending receive never blocks later work.
final class CommThread: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [() -> Void] = []
    private var polls: [() -> Bool] = []
    private var thread: Thread?

    init(name: String) {
        let t = Thread { [self] in self.loop() }  // lives as long as the process
        t.name = name
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Runs `job` on the communication thread after every job submitted before it.
    func submit(_ job: @escaping () -> Void) {
        cond.lock()
        jobs.append(job)
        cond.signal()
        cond.unlock()
    }

    /// Runs `job` on the communication thread and returns its result (blocking).
    func sync<R>(_ job: @escaping () throws -> R) throws -> R {
        let done = NSCondition()
        var result: Result<R, Error>?
        submit {
            let r = Result { try job() }
            done.lock(); result = r; done.signal(); done.unlock()
        }
        done.lock()
        while result == nil { done.wait() }
        done.unlock()
        return try result!.get()
    }

    /// Called on the communication thread: `poll` runs between jobs until it returns true.
    func addPoll(_ poll: @escaping () -> Bool) { polls.append(poll) }

    private func loop() {
        var idleSince: UInt64 = 0
        while true {
            cond.lock()
            // Right after a job, yield-spin briefly for the next one: a futex sleep and
            // wake-up costs more than a small collective on shared memory.
            if jobs.isEmpty && polls.isEmpty && idleSince != 0 {
                while jobs.isEmpty && DispatchTime.now().uptimeNanoseconds - idleSince < 50_000 {
                    cond.unlock(); sched_yield(); cond.lock()
                }
            }
            while jobs.isEmpty && polls.isEmpty { cond.wait() }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            cond.unlock()
            for job in batch { job() }
            idleSince = batch.isEmpty ? 0 : DispatchTime.now().uptimeNanoseconds
            if !polls.isEmpty {
                polls.removeAll { $0() }
                if !polls.isEmpty && batch.isEmpty { usleep(20) }
            }
        }
    }
}

/// A pending collective or point-to-point operation (`torch.distributed.Work`).
public final class Work: @unchecked Sendable {
    private let cond = NSCondition()
    private var done = false
    private var error: Error?
    /// What the operation is, for error messages: `allReduce float32 [1000]`.
    public let description: String
    let group: ProcessGroup

    init(_ description: String, group: ProcessGroup) {
        self.description = description
        self.group = group
    }

    func finish(_ error: Error?) {
        cond.lock()
        self.error = error
        done = true
        cond.broadcast()
        cond.unlock()
    }

    /// Whether the operation has finished (successfully or not).
    public var isCompleted: Bool {
        cond.lock(); defer { cond.unlock() }
        return done
    }

    /// Blocks until the operation has finished, at most the group's timeout.
    /// - Throws: the operation's error, or `DistributedError.timeout`; after a timeout the
    ///   group is unusable (a peer died or hung, or the ranks called different collectives).
    public func wait() throws {
        let deadline = Date().addingTimeInterval(group.timeout)
        cond.lock()
        // Yield-spin a little before sleeping (small collectives finish within microseconds).
        let spinStart = DispatchTime.now().uptimeNanoseconds
        while !done && DispatchTime.now().uptimeNanoseconds - spinStart < 30_000 {
            cond.unlock(); sched_yield(); cond.lock()
        }
        while !done {
            if !cond.wait(until: deadline) && !done {
                cond.unlock()
                let message = "\(description) on rank \(group.rank) of \(group.worldSize) did not finish within \(group.timeout) s: a peer rank died or hung, or the ranks issued different collectives"
                group.markBroken(message)
                throw DistributedError.timeout(message)
            }
        }
        let e = error
        cond.unlock()
        if let e { throw e }
    }
}
