import EmberCore
import EmberCUDA
import EmberData
import EmberNN
import EmberOptim
import EmberTestSupport
import XCTest

/// The GPU tests' guard: Ember's kernel cache goes to a temporary directory first (the
/// tests write nothing outside directories they create), then whether a GPU is usable.
var gpuAvailable: Bool {
    useTemporaryCaches()
    return Ember.CUDA.isAvailable
}
