// `einsum`: any equation PyTorch accepts (implicit or explicit output, `...`, repeated
// indices within an operand, broadcasting of size-1 dimensions), computed as diagonals, sums
// of indices that appear once, and pairwise batched matrix products left to right.

extension Tensor {
    /// Einstein summation over `operands` as `equation` says (`torch.einsum`).
    public static func einsum(_ equation: String, _ operands: [Tensor]) -> Tensor {
        let eq = equation.filter { !$0.isWhitespace }
        let sides = eq.components(separatedBy: "->")
        let terms = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        checked {
            try require(sides.count <= 2, "einsum(): more than one '->' in equation \(equation)")
            try require(terms.count == operands.count,
                        "einsum(): more operands were provided than specified in the equation (\(operands.count) operands, equation \(equation))")
        }
        // Labels: letters as their scalar values, ellipsis dimensions as −1, −2, … from the right.
        func labels(_ term: String, rank: Int?) -> [Int] {
            var out: [Int] = []
            var rest = Substring(term)
            var ellipsisAt: Int? = nil
            while let c = rest.first {
                if rest.hasPrefix("...") {
                    checked { try require(ellipsisAt == nil, "einsum(): found more than one '...' in the equation \(equation)") }
                    ellipsisAt = out.count
                    rest = rest.dropFirst(3)
                    continue
                }
                checked { try require(c.isLetter && c.isASCII, "einsum(): invalid subscript given at index \(out.count) in the equation string, subscripts must be in [a-zA-Z]: \(equation)") }
                out.append(Int(c.asciiValue!))
                rest = rest.dropFirst()
            }
            if let at = ellipsisAt {
                let k = (rank ?? out.count) - out.count
                checked { try require(k >= 0, "einsum(): the number of subscripts in the equation (\(out.count)) is more than the number of dimensions (\(rank ?? 0)) for operand") }
                out.insert(contentsOf: (0..<k).map { -(k - $0) }, at: at)
            }
            return out
        }
        var ops: [(t: Tensor, labels: [Int])] = []
        // How often each letter appears in the inputs (a repeated one is not in an implicit output).
        var counts: [Int: Int] = [:]
        for (term, x) in zip(terms, operands) {
            var l = labels(term, rank: x.rank)
            for c in l where c >= 0 { counts[c, default: 0] += 1 }
            checked {
                try require(l.count == x.rank,
                            "einsum(): the number of subscripts in the equation (\(l.count)) does not match the number of dimensions (\(x.rank)) for operand and no ellipsis was given")
            }
            var t = x
            // A label repeated within an operand: its diagonal.
            while let (i, j) = firstRepeat(l) {
                t = t.diagonal(offset: 0, dim1: i, dim2: j)
                let label = l[i]
                l.remove(at: j)
                l.remove(at: i)
                l.append(label)
            }
            ops.append((t, l))
        }
        let ellipsisRank = ops.map { $0.labels.filter { $0 < 0 }.count }.max() ?? 0
        let output: [Int]
        if sides.count == 2 {
            output = labels(sides[1], rank: sides[1].filter { $0 != "." }.count + ellipsisRank)
            checked {
                try require(Set(output).count == output.count, "einsum(): output subscript appears more than once in the output: \(equation)")
                let all = Set(ops.flatMap(\.labels))
                for l in output where l >= 0 {
                    try require(all.contains(l), "einsum(): output subscript \(Character(UnicodeScalar(UInt8(l)))) does not appear in the equation for any input operand")
                }
            }
        } else {
            output = (0..<ellipsisRank).map { -(ellipsisRank - $0) } + counts.filter { $0.value == 1 }.keys.sorted()
        }
        // Sizes per label (1 broadcasts).
        var size: [Int: Int] = [:]
        for (t, l) in ops {
            for (d, x) in l.enumerated() {
                let s = t.shape[d], have = size[x] ?? 1
                checked {
                    try require(s == 1 || have == 1 || s == have,
                                "einsum(): operands do not broadcast with remapped shapes (original->remapped): subscript \(x >= 0 ? String(Character(UnicodeScalar(UInt8(x)))) : "...") has sizes \(have) and \(s)")
                }
                size[x] = Swift.max(have, s)
            }
        }
        /// Sums the labels of operand `k` that no other operand and not the output has.
        func sumPrivate(_ k: Int) {
            let others = Set(ops.enumerated().filter { $0.offset != k }.flatMap(\.element.labels) + output)
            let (t, l) = ops[k]
            let dims = l.indices.filter { !others.contains(l[$0]) }
            if dims.isEmpty { return }
            ops[k] = (t.sum(dims: dims), l.enumerated().filter { !dims.contains($0.offset) }.map(\.element))
        }
        for k in ops.indices { sumPrivate(k) }
        while ops.count > 1 {
            let (a, la) = ops.removeFirst()
            let (b, lb) = ops.removeFirst()
            let later = Set(ops.flatMap(\.labels) + output)
            let batch = la.filter { lb.contains($0) && later.contains($0) }
            let contracted = la.filter { lb.contains($0) && !later.contains($0) }
            let aOnly = la.filter { !lb.contains($0) }, bOnly = lb.filter { !la.contains($0) }
            func arrange(_ t: Tensor, _ l: [Int], _ order: [Int]) -> Tensor {
                let p = t.permute(order.map { x in l.firstIndex(of: x)! })
                return p.expand(order.map { size[$0]! })
            }
            let n = { (ls: [Int]) in ls.reduce(1) { $0 * size[$1]! } }
            let am = arrange(a, la, batch + aOnly + contracted).contiguous().reshape([n(batch), n(aOnly), n(contracted)])
            let bm = arrange(b, lb, batch + contracted + bOnly).contiguous().reshape([n(batch), n(contracted), n(bOnly)])
            let r = am.bmm(bm).reshape((batch + aOnly + bOnly).map { size[$0]! })
            ops.insert((r, batch + aOnly + bOnly), at: 0)
            sumPrivate(0)
        }
        let (t, l) = ops[0]
        let r = t.permute(output.map { x in l.firstIndex(of: x)! })
        return r.expand(output.map { size[$0]! })
    }

    private static func firstRepeat(_ l: [Int]) -> (Int, Int)? {
        for i in l.indices { for j in (i + 1)..<l.count where l[i] == l[j] { return (i, j) } }
        return nil
    }
}
