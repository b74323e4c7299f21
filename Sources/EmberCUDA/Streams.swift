import EmberCore
import Foundation

extension Ember.CUDA {
    /// A queue of GPU work (`torch.cuda.Stream`). Work on different streams may run
    /// concurrently; work on one stream runs in order. Each device has a default stream,
    /// which every thread uses unless it enters `withStream`.
    ///
    /// Memory follows PyTorch's rules: a tensor allocated while a stream is current belongs to
    /// that stream, and its memory is reused, once the tensor is freed, only by later work on
    /// that stream. A tensor that work on another stream reads or writes must be marked
    /// with `tensor.recordStream(s)`, or that stream must be waited for before it is freed.
    public final class Stream: @unchecked Sendable, Equatable, CustomStringConvertible {
        public let device: Int
        let handle: OpaquePointer
        private let owned: Bool

        /// A new stream on GPU `device` that does not wait for the default stream
        /// (`CU_STREAM_NON_BLOCKING`).
        public init(device: Int = 0) {
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            var s: OpaquePointer?
            d.driver.must(d.driver.cuStreamCreate(&s, 1), "cuStreamCreate")
            self.device = device
            handle = s!
            owned = true
            d.streamCreated(handle)
        }

        init(wrapping handle: OpaquePointer, device: Int) {
            self.device = device
            self.handle = handle
            owned = false
        }

        deinit {
            guard owned else { return }
            // Its queued work finishes first; its cached memory goes to the default stream.
            let d = Ember.CUDA.device(device)
            d.streamDestroyed(handle)
            _ = d.driver.cuStreamDestroy(handle)
        }

        /// The stream this thread queues work for `device` on (`torch.cuda.current_stream`).
        public static func current(device: Int = 0) -> Stream {
            Stream(wrapping: Ember.CUDA.device(device).stream, device: device)
        }

        /// The device's default stream (`torch.cuda.default_stream`).
        public static func defaultStream(device: Int = 0) -> Stream {
            Stream(wrapping: Ember.CUDA.device(device).defaultStream, device: device)
        }

        /// Blocks until all work queued on this stream has finished.
        public func synchronize() {
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            d.driver.must(d.driver.cuStreamSynchronize(handle), "cuStreamSynchronize")
            d.verifyChecks()
        }

        /// Whether all work queued so far on this stream has finished (`query`).
        public var isIdle: Bool {
            let e = Event(device: device)
            e.record(on: self)
            return e.isComplete
        }

        /// Makes work queued on this stream from now on wait for `event` (`wait_event`).
        public func wait(_ event: Event) {
            Ember.check(event.device == device, "Stream.wait: the event is on cuda:\(event.device), the stream on cuda:\(device)")
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            d.driver.must(d.driver.cuStreamWaitEvent(handle, event.handle, 0), "cuStreamWaitEvent")
        }

        /// Makes work queued on this stream from now on wait for everything queued so far on
        /// `other` (`wait_stream`).
        public func wait(for other: Stream) {
            let e = Event(device: other.device)
            e.record(on: other)
            wait(e)
        }

        /// An event recorded now on this stream (`record_event`).
        public func recordEvent(timing: Bool = false) -> Event {
            let e = Event(device: device, timing: timing)
            e.record(on: self)
            return e
        }

        public static func == (a: Stream, b: Stream) -> Bool { a.handle == b.handle && a.device == b.device }

        public var description: String {
            handle == Ember.CUDA.device(device).defaultStream ? "Stream(cuda:\(device), default)" : "Stream(cuda:\(device), \(handle))"
        }
    }

    /// A marker in a stream's work (`torch.cuda.Event`): record it, wait for it from the host
    /// or from another stream, and measure the GPU time between two of them.
    public final class Event: @unchecked Sendable {
        public let device: Int
        let handle: OpaquePointer
        /// Whether `elapsedMilliseconds` works for this event (`enable_timing`).
        public let timing: Bool
        private var recorded = false

        public init(device: Int = 0, timing: Bool = false) {
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            var e: OpaquePointer?
            d.driver.must(d.driver.cuEventCreate(&e, timing ? 0 : 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate")
            self.device = device
            self.timing = timing
            handle = e!
        }

        deinit {
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            _ = d.driver.cuEventDestroy(handle)
        }

        /// Records the event after the work queued so far on `stream` (default: this
        /// thread's current stream).
        public func record(on stream: Stream? = nil) {
            let s = stream ?? Stream.current(device: device)
            Ember.check(s.device == device, "Event.record: the event is on cuda:\(device), the stream on cuda:\(s.device)")
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            d.driver.must(d.driver.cuEventRecord(handle, s.handle), "cuEventRecord")
            recorded = true
        }

        /// Whether the work before the event has finished (true for an event never recorded).
        public var isComplete: Bool {
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            let rc = d.driver.cuEventQuery(handle)
            if rc == 600 { return false }  // CUDA_ERROR_NOT_READY
            d.driver.must(rc, "cuEventQuery")
            return true
        }

        /// Blocks until the work before the event has finished.
        public func synchronize() {
            let d = Ember.CUDA.device(device)
            d.makeCurrent()
            d.driver.must(d.driver.cuEventSynchronize(handle), "cuEventSynchronize")
            d.verifyChecks()
        }

        /// Makes work queued on `stream` (default: the current stream) from now on wait for
        /// this event.
        public func wait(on stream: Stream? = nil) { (stream ?? Stream.current(device: device)).wait(self) }

        /// Milliseconds of GPU time from this event to `end` (`elapsed_time`); both must be
        /// timing events, recorded, and `end` complete.
        public func elapsedMilliseconds(to end: Event) -> Double {
            Ember.check(timing && end.timing, "Event.elapsedMilliseconds: both events must be created with timing: true")
            Ember.check(recorded && end.recorded, "Event.elapsedMilliseconds: both events must be recorded first")
            let d = Ember.CUDA.device(device)
            end.synchronize()
            var ms: Float = 0
            d.driver.must(d.driver.cuEventElapsedTime(&ms, handle, end.handle), "cuEventElapsedTime")
            return Double(ms)
        }
    }

    /// Runs `body` with `stream` as this thread's current stream for its device, then
    /// restores the previous one (`with torch.cuda.stream(s)`). Nothing is synchronised: to
    /// order the work with other streams, use `wait(for:)` or events.
    public static func withStream<R>(_ stream: Stream, _ body: () throws -> R) rethrows -> R {
        let t = CUDAThreadState.current
        let old = t.streams[stream.device]
        t.streams[stream.device] = stream.handle
        defer { t.streams[stream.device] = old }
        return try withExtendedLifetime(stream) { try body() }
    }
}

extension Tensor {
    /// Marks this GPU tensor's memory as used by work queued on `stream`, so that when the
    /// tensor is freed its memory is not reused before that work is done (`record_stream`).
    /// Needed for a tensor allocated on one stream and used on another.
    public func recordStream(_ stream: Ember.CUDA.Stream) {
        Ember.check(device == .cuda(stream.device), "recordStream: the tensor is on \(device), the stream on cuda:\(stream.device)")
        let base = UInt64(UInt(bitPattern: storage.data))
        Ember.CUDA.device(stream.device).recordUse(base, by: stream.handle)
    }
}
