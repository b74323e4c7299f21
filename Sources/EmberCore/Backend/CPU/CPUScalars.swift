import EmberCPU
import RealModule

/// Element types the CPU kernels are specialised for.
protocol CPUElement {
    init(fromDouble v: Double)
    var asDouble: Double { get }
    init(fromInt64 v: Int64)
    var asInt64: Int64 { get }
    static var isIntegral: Bool { get }
}

/// Element types with arithmetic.
protocol CPUNumber: CPUElement, Comparable {
    static var zero: Self { get }
    static var one: Self { get }
    static func add(_ a: Self, _ b: Self) -> Self
    static func sub(_ a: Self, _ b: Self) -> Self
    static func mul(_ a: Self, _ b: Self) -> Self
    static func div(_ a: Self, _ b: Self) -> Self
    static func power(_ a: Self, _ b: Self) -> Self
    /// NaN-propagating maximum / minimum (PyTorch's `maximum`, `max`).
    static func maxP(_ a: Self, _ b: Self) -> Self
    static func minP(_ a: Self, _ b: Self) -> Self
    /// C's `fmod` (the dividend's sign), Python's `%` (the divisor's sign) and `//`, as
    /// PyTorch computes them (integer division by zero gives 0).
    static func fmod(_ a: Self, _ b: Self) -> Self
    static func remainder(_ a: Self, _ b: Self) -> Self
    static func floorDivide(_ a: Self, _ b: Self) -> Self
    var isNaNValue: Bool { get }
}

extension CPUNumber where Self: BinaryFloatingPoint & Real {
    static var zero: Self { 0 }
    static var one: Self { 1 }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a + b }
    @inline(__always) static func sub(_ a: Self, _ b: Self) -> Self { a - b }
    @inline(__always) static func mul(_ a: Self, _ b: Self) -> Self { a * b }
    @inline(__always) static func div(_ a: Self, _ b: Self) -> Self { a / b }
    @inline(__always) static func power(_ a: Self, _ b: Self) -> Self {
        if b == 2 { return a * a }
        if a < 0 && b == b.rounded() {  // integral exponent of a negative base
            let r = Self.pow(-a, b)
            return Int64(b) % 2 == 0 ? r : -r
        }
        return Self.pow(a, b)
    }
    @inline(__always) static func maxP(_ a: Self, _ b: Self) -> Self { (a > b || a.isNaN) ? a : b }
    @inline(__always) static func minP(_ a: Self, _ b: Self) -> Self { (a < b || a.isNaN) ? a : b }
    @inline(__always) static func fmod(_ a: Self, _ b: Self) -> Self { a.truncatingRemainder(dividingBy: b) }
    @inline(__always) static func remainder(_ a: Self, _ b: Self) -> Self {
        var m = a.truncatingRemainder(dividingBy: b)
        if m != 0 && (b < 0) != (m < 0) { m += b }
        return m
    }
    /// PyTorch's `div_floor_floating`.
    @inline(__always) static func floorDivide(_ a: Self, _ b: Self) -> Self {
        if b == 0 { return a / b }
        let m = a.truncatingRemainder(dividingBy: b)
        var d = (a - m) / b
        if m != 0 && (b < 0) != (m < 0) { d -= 1 }
        if d == 0 { return Self(signOf: a / b, magnitudeOf: 0) }
        var f = d.rounded(.down)
        if d - f > 0.5 { f += 1 }
        return f
    }
    var isNaNValue: Bool { isNaN }
    static var isIntegral: Bool { false }
}

extension Float: CPUNumber {
    init(fromDouble v: Double) { self = Float(v) }
    var asDouble: Double { Double(self) }
    init(fromInt64 v: Int64) { self = Float(v) }
    var asInt64: Int64 { isFinite ? Int64(self) : 0 }
}
extension Double: CPUNumber {
    init(fromDouble v: Double) { self = v }
    var asDouble: Double { self }
    init(fromInt64 v: Int64) { self = Double(v) }
    var asInt64: Int64 { isFinite ? Int64(self) : 0 }
}

extension CPUNumber where Self: FixedWidthInteger {
    static var zero: Self { 0 }
    static var one: Self { 1 }
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a &+ b }
    @inline(__always) static func sub(_ a: Self, _ b: Self) -> Self { a &- b }
    @inline(__always) static func mul(_ a: Self, _ b: Self) -> Self { a &* b }
    @inline(__always) static func div(_ a: Self, _ b: Self) -> Self { b == 0 ? 0 : a / b }
    @inline(__always) static func power(_ a: Self, _ b: Self) -> Self {
        if b < 0 { return a == 1 ? 1 : 0 }
        var r: Self = 1, base = a, e = b
        while e > 0 {
            if e & 1 == 1 { r = r &* base }
            base = base &* base
            e >>= 1
        }
        return r
    }
    @inline(__always) static func maxP(_ a: Self, _ b: Self) -> Self { Swift.max(a, b) }
    @inline(__always) static func minP(_ a: Self, _ b: Self) -> Self { Swift.min(a, b) }
    @inline(__always) static func fmod(_ a: Self, _ b: Self) -> Self { b == 0 ? 0 : a.remainderReportingOverflow(dividingBy: b).partialValue }
    @inline(__always) static func remainder(_ a: Self, _ b: Self) -> Self {
        if b == 0 { return 0 }
        var m = a.remainderReportingOverflow(dividingBy: b).partialValue
        if m != 0 && (b < 0) != (m < 0) { m = m &+ b }
        return m
    }
    @inline(__always) static func floorDivide(_ a: Self, _ b: Self) -> Self {
        if b == 0 { return 0 }
        let q = a.dividedReportingOverflow(by: b).partialValue
        if (a < 0) != (b < 0) && a.remainderReportingOverflow(dividingBy: b).partialValue != 0 { return q &- 1 }
        return q
    }
    var isNaNValue: Bool { false }
    static var isIntegral: Bool { true }
    init(fromDouble v: Double) { self = v.isFinite ? Self(truncatingIfNeeded: Int64(v)) : 0 }
    var asDouble: Double { Double(self) }
    init(fromInt64 v: Int64) { self = Self(truncatingIfNeeded: v) }
    var asInt64: Int64 { Int64(self) }
}
extension Int64: CPUNumber {}
extension Int32: CPUNumber {}
extension UInt8: CPUNumber {}

extension Bool: CPUNumber {
    static var zero: Bool { false }
    static var one: Bool { true }
    static func add(_ a: Bool, _ b: Bool) -> Bool { a || b }
    static func sub(_ a: Bool, _ b: Bool) -> Bool { a != b }
    static func mul(_ a: Bool, _ b: Bool) -> Bool { a && b }
    static func div(_ a: Bool, _ b: Bool) -> Bool { a && b }
    static func power(_ a: Bool, _ b: Bool) -> Bool { a || !b }
    static func maxP(_ a: Bool, _ b: Bool) -> Bool { a || b }
    static func minP(_ a: Bool, _ b: Bool) -> Bool { a && b }
    static func fmod(_ a: Bool, _ b: Bool) -> Bool { false }
    static func remainder(_ a: Bool, _ b: Bool) -> Bool { false }
    static func floorDivide(_ a: Bool, _ b: Bool) -> Bool { a && b }
    var isNaNValue: Bool { false }
    static var isIntegral: Bool { true }
    public static func < (a: Bool, b: Bool) -> Bool { !a && b }
    init(fromDouble v: Double) { self = v != 0 }
    var asDouble: Double { self ? 1 : 0 }
    init(fromInt64 v: Int64) { self = v != 0 }
    var asInt64: Int64 { self ? 1 : 0 }
}

/// IEEE half stored as its bits.
struct HalfBits: CPUElement {
    var bits: UInt16
    init(fromDouble v: Double) { bits = HalfConversion.floatToHalf(Float(v)) }
    var asDouble: Double { Double(HalfConversion.halfToFloat(bits)) }
    init(fromInt64 v: Int64) { self.init(fromDouble: Double(v)) }
    var asInt64: Int64 { Int64(asDouble) }
    static var isIntegral: Bool { false }
}

/// bfloat16 stored as its bits.
struct BFloatBits: CPUElement {
    var bits: UInt16
    init(fromDouble v: Double) { bits = HalfConversion.floatToBFloat(Float(v)) }
    var asDouble: Double { Double(HalfConversion.bfloatToFloat(bits)) }
    init(fromInt64 v: Int64) { self.init(fromDouble: Double(v)) }
    var asInt64: Int64 { Int64(asDouble) }
    static var isIntegral: Bool { false }
}
