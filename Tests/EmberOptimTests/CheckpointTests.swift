import EmberTestSupport
import Foundation
import XCTest
@testable import Ember

/// A training checkpoint (model, optimizer state, values) round-trips through one
/// safetensors file, and saving again replaces it atomically.
final class CheckpointTests: XCTestCase {
    func testCheckpointRoundTripAndAtomicReplace() throws {
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("model.safetensors").path
        let net = FashionModels.mlp()
        let opt = Adam(net.parameters(), lr: 1e-3)
        try crossEntropy(net(Tensor.randn([4, 28, 28])), Tensor([1, 2, 3, 4])).backward()
        opt.step()
        try Checkpoint(model: net.stateDict(), optimizer: opt.stateDict(), values: ["epoch": "3"]).save(to: path)
        let ck = try Checkpoint.load(path)
        XCTAssertEqual(ck.values["epoch"], "3")
        let net2 = FashionModels.mlp()
        try net2.loadStateDict(ck.model)
        for (a, b) in zip(net.parameters(), net2.parameters()) { XCTAssertEqual(a.scalars, b.scalars) }
        let opt2 = Adam(net2.parameters(), lr: 5)
        try opt2.loadStateDict(ck.optimizer!)
        XCTAssertEqual(opt2.paramGroups[0].lr, 1e-3)
        XCTAssertEqual(opt2.stateDict().state[0]!["exp_avg"]!.scalars, opt.stateDict().state[0]!["exp_avg"]!.scalars)
        // Saving again replaces the file and leaves no temporary behind.
        try Checkpoint(model: net.stateDict(), values: ["epoch": "4"]).save(to: path)
        XCTAssertEqual(try Checkpoint.load(path).values["epoch"], "4")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"])
        XCTAssertThrowsError(try Checkpoint(model: net.stateDict()).save(to: dir.appendingPathComponent("missing/dir/x").path))
    }
}
