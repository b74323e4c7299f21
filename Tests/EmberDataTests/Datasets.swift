import EmberTestSupport
import Foundation
import XCTest
@testable import EmberData
@testable import Ember

struct Boom: Error, Equatable {}

/// Images with an augmentation that draws from the per-sample random stream.
struct Augmented: Dataset {
    let images = Tensor.randn([40, 1, 8, 8], generator: Generator(seed: 3))
    var count: Int { 40 }
    let transform = Transforms.compose([Transforms.randomCrop(size: 8, padding: 2), Transforms.randomHorizontalFlip(),
                                        Transforms.normalize(mean: [0.1], std: [0.9])])
    func element(at i: Int) throws -> [Tensor] { [transform(images[i]), Tensor(scalar: i)] }
}

/// Throws at `failAt`; records which worker loaded what.
final class Probe: Dataset, @unchecked Sendable {
    let n: Int, failAt: Int?, delay: UInt32
    let lock = NSLock()
    var workers: [Int: UInt64] = [:]
    /// Which worker loaded each sample.
    var loadedBy: [Int: Int] = [:]
    init(_ n: Int, failAt: Int? = nil, delay: UInt32 = 0) {
        self.n = n
        self.failAt = failAt
        self.delay = delay
    }
    var count: Int { n }
    func element(at i: Int) throws -> [Tensor] {
        if delay > 0 { usleep(delay) }
        if i == failAt { throw Boom() }
        if let w = WorkerInfo.current { lock.lock(); workers[w.id] = w.seed; loadedBy[i] = w.id; lock.unlock() }
        return [Tensor.full([16], Double(i))]
    }
}
