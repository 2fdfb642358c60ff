import mpmath as mp
mp.mp.dps = 60
def split(v):
    hi = float(v); lo = float(v - mp.mpf(hi)); return hi, lo
def trunc_bits(v, bits):
    e = mp.floor(mp.log(abs(v), 2))
    scale = mp.mpf(2) ** (bits - 1 - e)
    return float(mp.floor(v * scale) / scale)
pio2 = mp.pi / 2
p1 = float(pio2); p2 = float(pio2 - p1); p3 = float(pio2 - p1 - p2)
print("PIO2_1", repr(p1), "PIO2_2", repr(p2), "PIO2_3", repr(p3))
for name, v in [("PI", mp.pi), ("PIO4", mp.pi/4), ("PI3O4", 3*mp.pi/4)]:
    print(name, [repr(x) for x in split(v)])
lh = trunc_bits(mp.log(2), 42); print("LN2_HI", repr(lh), "LN2_LO", repr(float(mp.log(2) - lh)))
l10 = mp.log10(2); lh = trunc_bits(l10, 42); print("LOG10_2_HI", repr(lh), "LOG10_2_LO", repr(float(l10 - lh)))
print("LOG2E", repr(float(1/mp.log(2))), "LOG10E", repr(float(1/mp.log(10))))
print("TAN_PI_8", repr(float(mp.tan(mp.pi/8))), "TAN_3PI_8", repr(float(mp.tan(3*mp.pi/8))))
print("FRAC_2_PI", repr(float(2/mp.pi)))
print("SQRT2", repr(float(mp.sqrt(2))))
# cbrt binomial coefficients of (1+e)^(-1/3)
print([str(mp.binomial(mp.mpf(-1)/3, n)) for n in range(10)])
