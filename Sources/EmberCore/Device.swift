/// Where a tensor's storage lives.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let i): "cuda:\(i)"
        }
    }

    /// The backend that runs primitives for this device.
    var backend: Backend {
        switch self {
        case .cpu: return CPUBackend.shared
        case .cuda:
            guard let b = BackendRegistry.backend(for: self) else {
                fatalError("Ember: no backend is loaded for device \(self); import the CUDA module and check Ember.CUDA.isAvailable")
            }
            return b
        }
    }
}

/// Backends other than the CPU register themselves here when their module first loads a device.
public enum BackendRegistry {
    nonisolated(unsafe) private static var table: [Device: Backend] = [:]
    private static let lock = Lock()

    public static func register(_ backend: Backend, for device: Device) {
        lock.withLock { table[device] = backend }
    }

    public static func backend(for device: Device) -> Backend? {
        lock.withLock { table[device] }
    }
}
