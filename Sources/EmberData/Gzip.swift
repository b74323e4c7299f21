import EmberCore

/// A gzip (RFC 1952) / DEFLATE (RFC 1951) decoder in Swift, so that reading `.gz` data
/// sets needs no zlib at build or run time. Checks each member's CRC-32 and length.
public enum Gzip {
    /// True when `bytes` starts with the gzip magic number.
    public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b }

    /// Decompresses every member of a gzip file.
    /// - Parameter limit: refuse outputs larger than this many bytes.
    public static func decompress(_ data: [UInt8], limit: Int = 1 << 34) throws -> [UInt8] {
        var out: [UInt8] = []
        if data.count >= 4 {  // the last member's trailer holds its size (mod 2^32): a good first guess
            let n = data.count
            let size = Int(data[n - 4]) | Int(data[n - 3]) << 8 | Int(data[n - 2]) << 16 | Int(data[n - 1]) << 24
            out.reserveCapacity(Swift.min(size, limit, 1 << 31))
        }
        var pos = 0
        repeat {
            pos = try member(data, pos, &out, limit)
        } while pos < data.count && data.count - pos >= 2 && data[pos] == 0x1f && data[pos + 1] == 0x8b
        return out
    }

    private static func member(_ d: [UInt8], _ start: Int, _ out: inout [UInt8], _ limit: Int) throws -> Int {
        var p = start
        func need(_ n: Int) throws { if p + n > d.count { throw DataError.corrupt("gzip: truncated header") } }
        try need(10)
        guard d[p] == 0x1f, d[p + 1] == 0x8b else { throw DataError.format("gzip: bad magic number") }
        guard d[p + 2] == 8 else { throw DataError.format("gzip: unknown compression method \(d[p + 2])") }
        let flags = d[p + 3]
        p += 10
        if flags & 4 != 0 {  // FEXTRA
            try need(2)
            let n = Int(d[p]) | Int(d[p + 1]) << 8
            p += 2
            try need(n)
            p += n
        }
        for bit in [UInt8(8), 16] where flags & bit != 0 {  // FNAME, FCOMMENT: zero-terminated
            while true {
                try need(1)
                p += 1
                if d[p - 1] == 0 { break }
            }
        }
        if flags & 2 != 0 { try need(2); p += 2 }  // FHCRC
        let begin = out.count
        var inflater = Inflater(d, p)
        try inflater.run(&out, limit)
        p = inflater.bytePosition
        if p + 8 > d.count { throw DataError.corrupt("gzip: truncated trailer") }
        let crc = UInt32(d[p]) | UInt32(d[p + 1]) << 8 | UInt32(d[p + 2]) << 16 | UInt32(d[p + 3]) << 24
        let size = UInt32(d[p + 4]) | UInt32(d[p + 5]) << 8 | UInt32(d[p + 6]) << 16 | UInt32(d[p + 7]) << 24
        let produced = out[begin...]
        if UInt32(truncatingIfNeeded: produced.count) != size { throw DataError.corrupt("gzip: length mismatch") }
        if CRC32.checksum(produced) != crc { throw DataError.corrupt("gzip: CRC-32 mismatch") }
        return p + 8
    }
}

/// CRC-32 (IEEE, reflected), table-driven.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}

/// A canonical Huffman code as a direct lookup table over `maxBits` bits (LSB-first):
/// entry = symbol << 4 | length.
private struct Huffman {
    var table: [UInt16]
    var maxBits: Int

    init(lengths: [Int]) throws {
        maxBits = max(1, lengths.max() ?? 1)
        table = [UInt16](repeating: 0, count: 1 << maxBits)
        var counts = [Int](repeating: 0, count: 16)
        for l in lengths where l > 0 { counts[l] += 1 }
        var next = [Int](repeating: 0, count: 16)
        var code = 0
        for bits in 1...15 {
            code = (code + counts[bits - 1]) << 1
            next[bits] = code
        }
        var used = 0
        for (symbol, len) in lengths.enumerated() where len > 0 {
            let c = next[len]
            next[len] += 1
            if c >= 1 << len { throw DataError.corrupt("deflate: over-subscribed Huffman code") }
            var rev = 0
            for i in 0..<len where c & (1 << i) != 0 { rev |= 1 << (len - 1 - i) }
            var i = rev
            while i < table.count {
                table[i] = UInt16(symbol << 4 | len)
                i += 1 << len
            }
            used += 1
        }
        if used == 0 { throw DataError.corrupt("deflate: empty Huffman code") }
    }
}

private struct Inflater {
    let d: [UInt8]
    var pos: Int
    var bits: UInt64 = 0
    var count = 0

    init(_ d: [UInt8], _ start: Int) {
        self.d = d
        pos = start
    }

    /// The byte after the last one consumed (after aligning to a byte).
    var bytePosition: Int { pos - count / 8 }

    @inline(__always) mutating func fill(_ n: Int) throws {
        while count < n {
            guard pos < d.count else {
                throw DataError.corrupt("deflate: unexpected end of data")
            }
            bits |= UInt64(d[pos]) << UInt64(count)
            pos += 1
            count += 8
        }
    }

    @inline(__always) mutating func take(_ n: Int) throws -> Int {
        if n == 0 { return 0 }
        try fill(n)
        let v = Int(bits & ((1 << UInt64(n)) - 1))
        bits >>= UInt64(n)
        count -= n
        return v
    }

    @inline(__always) mutating func decode(_ h: Huffman) throws -> Int {
        // Fill as many bits as are available up to maxBits (the stream may end early).
        while count < h.maxBits && pos < d.count {
            bits |= UInt64(d[pos]) << UInt64(count)
            pos += 1
            count += 8
        }
        let e = Int(h.table[Int(bits & ((1 << UInt64(h.maxBits)) - 1))])
        let len = e & 15
        if len == 0 || len > count { throw DataError.corrupt("deflate: invalid Huffman code") }
        bits >>= UInt64(len)
        count -= len
        return e >> 4
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                           4097, 6145, 8193, 12289, 16385, 24577]
    static let distExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    static let fixedLit = try! Huffman(lengths: (0..<288).map { $0 < 144 ? 8 : ($0 < 256 ? 9 : ($0 < 280 ? 7 : 8)) })
    static let fixedDist = try! Huffman(lengths: [Int](repeating: 5, count: 30))

    mutating func run(_ out: inout [UInt8], _ limit: Int) throws {
        var last = false
        while !last {
            last = try take(1) == 1
            switch try take(2) {
            case 0:
                // Stored: skip to a byte boundary, LEN, NLEN, bytes.
                _ = try take(count % 8)
                let len = try take(16), nlen = try take(16)
                if len != (~nlen & 0xffff) { throw DataError.corrupt("deflate: stored block length check failed") }
                // Return whole buffered bytes to the stream.
                pos -= count / 8
                bits = 0
                count = 0
                if pos + len > d.count { throw DataError.corrupt("deflate: truncated stored block") }
                if out.count + len > limit { throw DataError.corrupt("deflate: output exceeds \(limit) bytes") }
                out.append(contentsOf: d[pos..<(pos + len)])
                pos += len
            case 1:
                try block(&out, Inflater.fixedLit, Inflater.fixedDist, limit)
            case 2:
                let (lit, dist) = try dynamicTables()
                try block(&out, lit, dist, limit)
            default:
                throw DataError.corrupt("deflate: invalid block type")
            }
        }
    }

    mutating func dynamicTables() throws -> (Huffman, Huffman) {
        let hlit = try take(5) + 257, hdist = try take(5) + 1, hclen = try take(4) + 4
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var clens = [Int](repeating: 0, count: 19)
        for i in 0..<hclen { clens[order[i]] = try take(3) }
        let ch = try Huffman(lengths: clens)
        var lengths: [Int] = []
        while lengths.count < hlit + hdist {
            let sym = try decode(ch)
            switch sym {
            case 0...15: lengths.append(sym)
            case 16:
                guard let prev = lengths.last else { throw DataError.corrupt("deflate: repeat with no previous length") }
                lengths += [Int](repeating: prev, count: 3 + (try take(2)))
            case 17: lengths += [Int](repeating: 0, count: 3 + (try take(3)))
            default: lengths += [Int](repeating: 0, count: 11 + (try take(7)))
            }
        }
        if lengths.count > hlit + hdist { throw DataError.corrupt("deflate: too many code lengths") }
        return (try Huffman(lengths: Array(lengths[..<hlit])), try Huffman(lengths: Array(lengths[hlit...])))
    }

    mutating func block(_ out: inout [UInt8], _ lit: Huffman, _ dist: Huffman, _ limit: Int) throws {
        while true {
            let sym = try decode(lit)
            if sym < 256 {
                out.append(UInt8(sym))
                continue
            }
            if sym == 256 { return }
            let li = sym - 257
            guard li < 29 else { throw DataError.corrupt("deflate: invalid length symbol") }
            let length = Inflater.lengthBase[li] + (try take(Inflater.lengthExtra[li]))
            let ds = try decode(dist)
            guard ds < 30 else { throw DataError.corrupt("deflate: invalid distance symbol") }
            let distance = Inflater.distBase[ds] + (try take(Inflater.distExtra[ds]))
            if distance > out.count { throw DataError.corrupt("deflate: distance beyond the start of the output") }
            if out.count + length > limit { throw DataError.corrupt("deflate: output exceeds \(limit) bytes") }
            // Byte by byte: a slice of `out` appended to itself would copy the whole buffer.
            let from = out.count - distance
            for i in 0..<length { out.append(out[from + i]) }
        }
    }
}
