import XCTest
import Ember

final class ReadmeDataTests: XCTestCase {
    func testDataLoaderTour() async throws {
        guard let train = try? FashionMNIST(train: true) else { throw XCTSkip("dataset-fashion-mnist is not installed") }
        let augment = Transforms.compose([Transforms.randomCrop(size: 28, padding: 4), Transforms.randomHorizontalFlip()])
        let data = Subset(train, indices: Array(0..<256)).map { [augment($0[0]), $0[1]] }
        let loader = DataLoader(data, batchSize: 64, shuffle: true, numWorkers: 2, seed: 0)
        var n = 0
        for try await batch in loader {
            XCTAssertEqual(batch[0].shape, [64, 1, 28, 28])
            XCTAssertEqual(batch[1].shape, [64])
            n += 1
        }
        XCTAssertEqual(n, 4)
        try loader.forEach { _ in n += 1 }
        XCTAssertEqual(n, 8)
    }
}
