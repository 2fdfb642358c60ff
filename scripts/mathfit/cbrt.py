import struct, numpy as np
def f2b(x): return struct.unpack('<Q', struct.pack('<d', x))[0]
def b2f(b): return struct.unpack('<d', struct.pack('<Q', b))[0]
xs = np.exp(np.linspace(0, np.log(8), 200001))
hx = np.array([f2b(x) >> 32 for x in xs], dtype=np.int64)
k = np.rint(hx / 3).astype(np.int64)
for tweak in [0, 30000, 34000, 34669, 36000, 40000]:
    B = (682 << 20) - tweak
    t = np.array([b2f(int(kk + B) << 32) for kk in k])
    e = t**3 / xs - 1
    print(tweak, e.min(), e.max())
