from remez import *
eps = mp.mpf('1e-40')
def asinP(z):
    s = mp.sqrt(z); return (mp.asin(s) - s) / (z * s)
for N in [10, 11, 12]:
    c, e = remez(asinP, eps, 0.25, list(range(N)), grid=1500)
    print("asin N", N, mp.nstr(mp.log(e, 2), 4))
def atanQ(z):
    s = mp.sqrt(z); return (mp.atan(s) - s) / (z * s)
t8 = mp.tan(mp.pi/8)**2 * (1 + mp.mpf('1e-6'))
for N in [9, 10, 11]:
    c, e = remez(atanQ, eps, t8, list(range(N)), grid=1500)
    print("atan N", N, mp.nstr(mp.log(e, 2), 4))
