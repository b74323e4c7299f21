import Foundation

/// The safetensors format, compatible both ways with Python's `safetensors` package:
/// an 8-byte little-endian header length, a JSON header (`__metadata__` first, then tensors
/// ordered by dtype — widest kinds first, as the reference implementation sorts them — and
/// name), padded with spaces to a multiple of 8, then the tensors' little-endian bytes.
public enum SafeTensors {
    /// Largest header accepted when reading (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    static func code(_ d: DType) -> String {
        switch d {
        case .bool: "BOOL"
        case .uint8: "U8"
        case .int32: "I32"
        case .int64: "I64"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .float32: "F32"
        case .float64: "F64"
        }
    }

    /// Rank of each dtype in the reference implementation's enum (it sorts by this, descending).
    static func rank(_ d: DType) -> Int {
        switch d {
        case .bool: 0
        case .uint8: 1
        case .float16: 7
        case .bfloat16: 8
        case .int32: 9
        case .float32: 11
        case .float64: 13
        case .int64: 14
        }
    }

    static func dtype(_ code: String) -> DType? { DType.allCases.first { SafeTensors.code($0) == code } }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// The file's bytes.
    public static func serialize(_ tensors: StateDict, metadata: [String: String]? = nil) -> [UInt8] {
        let entries = tensors.map { ($0.0, $0.1.to(.cpu).contiguous()) }
            .sorted { rank($0.1.dtype) != rank($1.1.dtype) ? rank($0.1.dtype) > rank($1.1.dtype) : $0.0 < $1.0 }
        var header = "{"
        var parts: [String] = []
        if let metadata, !metadata.isEmpty {
            parts.append("\"__metadata__\":{" + metadata.sorted { $0.key < $1.key }
                .map { jsonString($0.key) + ":" + jsonString($0.value) }.joined(separator: ",") + "}")
        }
        var offset = 0
        for (name, t) in entries {
            let n = t.count * t.dtype.itemSize
            parts.append(jsonString(name) + ":{\"dtype\":\"\(code(t.dtype))\",\"shape\":[" + t.shape.map(String.init).joined(separator: ",")
                         + "],\"data_offsets\":[\(offset),\(offset + n)]}")
            offset += n
        }
        header += parts.joined(separator: ",") + "}"
        var h = Array(header.utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        var out: [UInt8] = []
        out.reserveCapacity(8 + h.count + offset)
        var len = UInt64(h.count).littleEndian
        withUnsafeBytes(of: &len) { out += $0 }
        out += h
        for (_, t) in entries {
            out += UnsafeRawBufferPointer(start: t.storage.data + t.layout.offset * t.dtype.itemSize, count: t.count * t.dtype.itemSize)
        }
        return out
    }

    /// Parses a file's bytes. Throws `DataError` for anything malformed: a header longer than
    /// the file or than `maxHeaderBytes`, bad JSON, unknown dtypes, offsets outside the data
    /// or inconsistent with the shape. Nothing is allocated before it is validated.
    public static func deserialize(_ bytes: [UInt8]) throws -> (tensors: StateDict, metadata: [String: String]) {
        guard bytes.count >= 8 else { throw DataError.corrupt("safetensors: file shorter than its 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderBytes), n <= UInt64(bytes.count - 8) else {
            throw DataError.corrupt("safetensors: header length \(n) exceeds the file (\(bytes.count) bytes) or the limit")
        }
        let headerEnd = 8 + Int(n)
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])), let header = obj as? [String: Any] else {
            throw DataError.corrupt("safetensors: the header is not a JSON object")
        }
        let dataSize = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        var sd = StateDict()
        var spans: [(Int, Int)] = []
        for name in header.keys.sorted() {
            let value = header[name]!
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw DataError.corrupt("safetensors: __metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw DataError.corrupt("safetensors: metadata value for \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any], let code = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offsAny = info["data_offsets"] as? [Any], offsAny.count == 2 else {
                throw DataError.corrupt("safetensors: malformed entry for \(name)")
            }
            guard let dtype = dtype(code) else { throw DataError.format("safetensors: unsupported dtype \(code) for \(name)") }
            let shape = try shapeAny.map { v -> Int in
                guard let i = (v as? NSNumber)?.intValue, i >= 0 else { throw DataError.corrupt("safetensors: bad shape for \(name)") }
                return i
            }
            let offs = try offsAny.map { v -> Int in
                guard let i = (v as? NSNumber)?.intValue, i >= 0 else { throw DataError.corrupt("safetensors: bad offsets for \(name)") }
                return i
            }
            var count = 1
            for s in shape {
                let (c, o) = count.multipliedReportingOverflow(by: s)
                guard !o, c <= dataSize else { throw DataError.corrupt("safetensors: shape \(shape) of \(name) exceeds the data") }
                count = c
            }
            guard offs[0] <= offs[1], offs[1] <= dataSize, offs[1] - offs[0] == count * dtype.itemSize else {
                throw DataError.corrupt("safetensors: offsets \(offs) of \(name) do not fit its shape \(shape) (\(dtype)) or the \(dataSize) data bytes")
            }
            spans.append((offs[0], offs[1]))
            let t = Tensor.empty(shape, dtype: dtype)
            bytes.withUnsafeBytes { src in
                t.storage.data.copyMemory(from: src.baseAddress! + headerEnd + offs[0], byteCount: offs[1] - offs[0])
            }
            sd[name] = t
        }
        // Empty tensors take no bytes: they overlap nothing (the reference writer gives them
        // the offset of the next tensor).
        spans = spans.filter { $0.0 < $0.1 }
        spans.sort { $0.0 < $1.0 }
        for i in spans.indices.dropFirst() where spans[i].0 < spans[i - 1].1 {
            throw DataError.corrupt("safetensors: tensors overlap in the data section")
        }
        return (sd, metadata)
    }

    /// Writes atomically: the bytes go to a temporary file beside `path`, which then replaces
    /// `path` in one rename, so a crash mid-save leaves the previous file intact.
    public static func save(_ tensors: StateDict, to path: String, metadata: [String: String]? = nil) throws {
        try writeAtomically(serialize(tensors, metadata: metadata), to: path)
    }

    public static func load(_ path: String) throws -> (tensors: StateDict, metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.io("cannot read \(path)") }
        return try deserialize([UInt8](data))
    }
}

/// Writes `bytes` to a temporary file in `path`'s directory and renames it over `path`.
func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
    do {
        try Data(bytes).write(to: tmp)
        #if os(Windows)
        if FileManager.default.fileExists(atPath: path) {
            _ = try FileManager.default.replaceItemAt(url, withItemAt: tmp)
        } else {
            try FileManager.default.moveItem(at: tmp, to: url)
        }
        #else
        // rename(2) replaces the destination atomically.
        if rename(tmp.path, path) != 0 { throw DataError.io("rename failed (errno \(errno))") }
        #endif
    } catch {
        try? FileManager.default.removeItem(at: tmp)
        throw DataError.io("cannot write \(path): \(error.localizedDescription)")
    }
}
