import EmberCore
import Foundation

/// Reads IDX files (the MNIST format), raw or gzip-compressed: big-endian magic
/// `0x00 0x00 type rank`, `rank` big-endian UInt32 sizes, then the values.
public enum IDX {
    /// Parses IDX bytes into a tensor (uint8, int32, float32 or float64 by the type code).
    /// Dimensions are checked against the bytes actually present before anything is
    /// allocated, so a hostile header cannot request absurd sizes.
    public static func parse(_ raw: [UInt8]) throws -> Tensor {
        let bytes = Gzip.isGzip(raw) ? try Gzip.decompress(raw) : raw
        guard bytes.count >= 4 else { throw DataError.format("IDX: file shorter than its magic number") }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw DataError.format("IDX: wrong magic number \(bytes[0..<4].map { String(format: "%02x", $0) }.joined())")
        }
        let (dtype, size): (DType, Int)
        switch bytes[2] {
        case 0x08: (dtype, size) = (.uint8, 1)
        case 0x0C: (dtype, size) = (.int32, 4)
        case 0x0D: (dtype, size) = (.float32, 4)
        case 0x0E: (dtype, size) = (.float64, 8)
        default: throw DataError.format("IDX: unsupported type code 0x\(String(bytes[2], radix: 16))")
        }
        let rank = Int(bytes[3])
        guard rank >= 1 else { throw DataError.format("IDX: rank 0") }
        let header = 4 + 4 * rank
        guard bytes.count >= header else { throw DataError.corrupt("IDX: truncated header (\(bytes.count) bytes, rank \(rank))") }
        var shape: [Int] = []
        var count = 1
        for d in 0..<rank {
            let o = 4 + 4 * d
            let n = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            shape.append(n)
            let (c, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow, c <= bytes.count else {
                throw DataError.corrupt("IDX: dimensions \(shape) need more data than the \(bytes.count) bytes present")
            }
            count = c
        }
        guard bytes.count - header == count * size else {
            throw DataError.corrupt("IDX: dimensions \(shape) need \(count * size) bytes of data, the file has \(bytes.count - header)")
        }
        let t = Tensor.empty(shape, dtype: dtype)
        bytes.withUnsafeBufferPointer { src in
            let base = src.baseAddress! + header
            if size == 1 {
                t.storage.data.copyMemory(from: base, byteCount: count)
            } else {
                // Big-endian values to host order.
                for i in 0..<count {
                    var v: UInt64 = 0
                    for b in 0..<size { v = v << 8 | UInt64(base[i * size + b]) }
                    switch size {
                    case 4: t.storage.data.storeBytes(of: UInt32(v), toByteOffset: i * 4, as: UInt32.self)
                    default: t.storage.data.storeBytes(of: v, toByteOffset: i * 8, as: UInt64.self)
                    }
                }
            }
        }
        return t
    }

    /// Reads and parses an IDX file (`.gz` or raw).
    public static func read(_ path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.io("cannot read \(path)")
        }
        return try parse([UInt8](data))
    }
}

/// Fashion-MNIST: 60 000 training and 10 000 test images of 28×28 clothing items in 10 classes.
/// Images are uint8 `[N, 28, 28]`, labels int64 `[N]`.
public struct FashionMNIST {
    /// Where Debian's `dataset-fashion-mnist` package installs the files.
    public static let debianRoot = "/usr/share/datasets/fashion-mnist"
    /// The command that installs the data set on Debian and Ubuntu.
    public static let installHint = "sudo apt-get install dataset-fashion-mnist"
    public static let classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                 "Ankle boot"]

    public let images: Tensor
    public let labels: Tensor

    /// Loads the training or test split from `root` (IDX files, gzip or raw).
    public init(root: String = FashionMNIST.debianRoot, train: Bool = true) throws {
        let prefix = train ? "train" : "t10k"
        func find(_ kind: String) throws -> String {
            for name in ["\(prefix)-\(kind)-ubyte.gz", "\(prefix)-\(kind)-ubyte", "\(prefix)-\(kind).ubyte.gz"] {
                let p = (root as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: p) { return p }
            }
            throw DataError.io("Fashion-MNIST file \(prefix)-\(kind)-ubyte[.gz] not found in \(root). "
                               + "On Debian or Ubuntu install it with: \(FashionMNIST.installHint) (or pass --data DIR with the four IDX files)")
        }
        images = try IDX.read(try find("images-idx3"))
        labels = try IDX.read(try find("labels-idx1")).to(.int64)
        guard images.rank == 3, labels.rank == 1, images.shape[0] == labels.shape[0] else {
            throw DataError.format("Fashion-MNIST: images \(images.shape) and labels \(labels.shape) do not match")
        }
    }

    public var count: Int { labels.count }
}
