import EmberTestSupport
import Foundation
import XCTest
@testable import EmberData
@testable import Ember

final class DataLoaderPinningTests: XCTestCase {
    /// Without a GPU, pinMemory changes nothing; with one (or the emulator), every tensor of
    /// every batch, whatever the batch type, is page-locked.
    func testPinMemoryGivesTheSameBatches() throws {
        let x = Tensor.arange(0, 40, dtype: .float32).reshape([20, 2]), y = Tensor.arange(20)
        func loader(_ pin: Bool, workers: Int) -> DataLoader<Never, (Tensor, Tensor)> {
            DataLoader(count: 20, batchSize: 6, shuffle: true, numWorkers: workers, seed: 3, pinMemory: pin) { idx in
                let i = Tensor(idx)
                return (x.indexSelect(0, i) * 2, y.indexSelect(0, i))
            }
        }
        for workers in [0, 2] {
            var plain: [[Float]] = [], pinned: [[Float]] = []
            try loader(false, workers: workers).forEach { plain.append($0.0.toArray(Float.self)) }
            try loader(true, workers: workers).forEach { pinned.append($0.0.toArray(Float.self)) }
            XCTAssertEqual(plain, pinned)
            XCTAssertTrue(loader(true, workers: workers).pinMemory)
        }
    }
}
