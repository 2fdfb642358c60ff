from remez import *
eps = mp.mpf('1e-40')
zmax = (mp.pi/4 * (1 + mp.mpf('1e-6')))**2
def sinS(z):
    s = mp.sqrt(z); return (mp.sin(s) - s) / (z * s)
for N in [6, 7, 8]:
    c, e = remez(sinS, eps, zmax, list(range(N)), grid=1200)
    print("sin N", N, mp.nstr(mp.log(e, 2), 4))
def cosC(z):
    s = mp.sqrt(z); return (mp.cos(s) - 1 + z/2) / (z * z)
for N in [6, 7, 8]:
    c, e = remez(cosC, eps, zmax, list(range(N)), grid=1200)
    print("cos N", N, mp.nstr(mp.log(e, 2), 4))
rmax = mp.log(2)/2 * (1 + mp.mpf('1e-6'))
def expE(r):
    if abs(r) < mp.mpf('1e-30'):
        r = mp.mpf('1e-30')
    return (mp.exp(r) - 1 - r) / (r * r)
for N in [9, 10, 11]:
    c, e = remez(expE, -rmax, rmax, list(range(N)), grid=1200)
    print("exp N", N, mp.nstr(mp.log(e, 2), 4))
smax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1))**2 * (1 + mp.mpf('1e-6'))
def logL(z):
    s = mp.sqrt(z); return (2 * mp.atanh(s) / s - 2) / z
for N in [5, 6, 7]:
    c, e = remez(logL, eps, smax, list(range(N)), grid=1200)
    print("log N", N, mp.nstr(mp.log(e, 2), 4))
