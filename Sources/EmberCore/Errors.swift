/// Errors Ember throws. Everything that touches the outside world (files, libraries,
/// devices, user callbacks in backward) throws one of these.
public enum EmberError: Error, Equatable, CustomStringConvertible {
    /// Autograd could not run: the graph was freed, a saved tensor was modified in place,
    /// a tensor does not require grad…
    case autograd(String)
    /// A file or I/O failure.
    case io(String)
    /// An operation rejected its arguments (the throwing validation layer behind the
    /// preconditions of the math ops).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .autograd(let m): "autograd error: \(m)"
        case .io(let m): "I/O error: \(m)"
        case .invalidArgument(let m): m
        }
    }
}

/// Errors reading or writing files and data: the file could not be read or written (`io`),
/// its bytes are damaged (`corrupt`), or it is not in the expected format (`format`).
public enum DataError: Error, Equatable, CustomStringConvertible {
    case io(String)
    case corrupt(String)
    case format(String)

    public var description: String {
        switch self {
        case .io(let m): "I/O error: \(m)"
        case .corrupt(let m): "corrupt data: \(m)"
        case .format(let m): "format error: \(m)"
        }
    }
}

/// Stops the program with the message of a misused math op, like Swift's own array
/// bounds checks. Ops validate through throwing functions and come here on failure.
@inline(never)
func misuse(_ error: Error) -> Never {
    fatalError("\(error)")
}

/// Runs a validation and turns its error into a precondition failure.
@inline(__always)
func checked<R>(_ body: () throws -> R) -> R {
    do { return try body() } catch { misuse(error) }
}

/// Throws `invalidArgument` with `message` when `condition` is false.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw EmberError.invalidArgument(message()) }
}

/// A shape as PyTorch prints it: `[2, 3]`.
func fmt(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
