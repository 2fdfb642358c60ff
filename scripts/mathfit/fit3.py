from remez import *
eps = mp.mpf('1e-30')
def run(name, g, w, a, b, powers):
    c, e = remez(g, a, b, powers, w=w, grid=1500)
    print(name, len(powers), "log2 err", mp.nstr(mp.log(e, 2), 4))
    return c
sq = mp.sqrt
for N in [10, 11]:
    run("asin", lambda z: (mp.asin(sq(z)) - sq(z)) / sq(z), lambda z: sq(z) / mp.asin(sq(z)), eps, 0.25, list(range(1, N + 1)))
t8 = mp.tan(mp.pi/8)**2 * (1 + mp.mpf('1e-6'))
for N in [9, 10]:
    run("atan", lambda z: (mp.atan(sq(z)) - sq(z)) / sq(z), lambda z: sq(z) / mp.atan(sq(z)), eps, t8, list(range(1, N + 1)))
zmax = (mp.pi/4 * (1 + mp.mpf('1e-6')))**2
for N in [5, 6]:
    run("sin", lambda z: (mp.sin(sq(z)) - sq(z)) / sq(z), lambda z: sq(z) / mp.sin(sq(z)), eps, zmax, list(range(1, N + 1)))
for N in [5, 6]:
    run("cos", lambda z: mp.cos(sq(z)) - 1 + z / 2, lambda z: 1 / mp.cos(sq(z)), eps, zmax, list(range(2, N + 2)))
smax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1))**2 * (1 + mp.mpf('1e-6'))
for N in [6, 7]:
    run("log", lambda z: 2 * mp.atanh(sq(z)) / sq(z) - 2, lambda z: mp.mpf(1)/2, eps, smax, list(range(1, N + 1)))
