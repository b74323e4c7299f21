/// Bit-exact conversions between IEEE half (binary16), bfloat16 and Float, written with
/// integer operations so that they compile on every platform (no `Float16` type needed).
public enum HalfConversion {
    /// binary16 bits → Float.
    @inlinable
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1f
        var mant = UInt32(h & 0x3ff)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // Subnormal: normalise.
            var e: UInt32 = 127 - 15 + 1
            while mant & 0x400 == 0 { mant <<= 1; e -= 1 }
            mant &= 0x3ff
            return Float(bitPattern: sign | (e << 23) | (mant << 13))
        }
        if exp == 31 {
            return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13))
        }
        return Float(bitPattern: sign | ((exp + 127 - 15) << 23) | (mant << 13))
    }

    /// Float → binary16 bits, round to nearest even.
    @inlinable
    public static func floatToHalf(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xff)
        let mant = x & 0x7f_ffff
        if exp == 0xff {  // inf or nan
            return sign | 0x7c00 | (mant != 0 ? 0x200 : 0)
        }
        let e = exp - 127 + 15
        if e >= 31 { return sign | 0x7c00 }  // overflow → inf
        if e <= 0 {
            if e < -10 { return sign }  // underflow → ±0
            let m = mant | 0x80_0000
            let shift = UInt32(14 - e)
            var r = m >> shift
            let rem = m & ((1 << shift) - 1)
            let half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && (r & 1) == 1) { r += 1 }
            return sign | UInt16(r)
        }
        var r = (UInt32(e) << 10) | (mant >> 13)
        let rem = mant & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1) { r += 1 }  // may carry into exponent: correct
        return sign | UInt16(r)
    }

    /// bfloat16 bits → Float.
    @inlinable
    public static func bfloatToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Float → bfloat16 bits, round to nearest even (NaN stays NaN).
    @inlinable
    public static func floatToBFloat(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if f.isNaN { return UInt16(x >> 16) | 0x40 }
        let rounding = 0x7fff + ((x >> 16) & 1)
        return UInt16((x &+ rounding) >> 16)
    }
}
