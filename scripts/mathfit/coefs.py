from remez import *
eps = mp.mpf('1e-40')
def out(name, f, a, b, N, grid=1500):
    c, e = remez(f, a, b, list(range(N)), grid=grid)
    # check error with the coefficients rounded to f64
    cr = [mp.mpf(float(x)) for x in c]
    worst = 0
    for i in range(2000):
        x = mp.mpf(a) + (mp.mpf(b) - mp.mpf(a)) * i / 1999
        if x == 0: x = eps
        p = sum(ck * x ** k for k, ck in enumerate(cr))
        worst = max(worst, abs((f(x) - p) / f(x)))
    print(f"/// {name}: relative error 2^{mp.nstr(mp.log(e, 2), 4)} (2^{mp.nstr(mp.log(worst, 2), 4)} with f64 coefficients)")
    print(f"const {name}: [f64; {N}] = [" + ", ".join(repr(float(x)) for x in c) + "];")
def sq(g):
    return g
out("ASIN", lambda z: (mp.asin(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)), eps, 0.25, 12)
out("ATAN", lambda z: (mp.atan(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)), eps, mp.tan(mp.pi/8)**2 * (1 + mp.mpf('1e-6')), 11)
zmax = (mp.pi/4 * (1 + mp.mpf('1e-6')))**2
out("SIN", lambda z: (mp.sin(mp.sqrt(z)) - mp.sqrt(z)) / (z * mp.sqrt(z)), eps, zmax, 6)
out("COS", lambda z: (mp.cos(mp.sqrt(z)) - 1 + z/2) / (z * z), eps, zmax, 6)
rmax = mp.log(2)/2 * (1 + mp.mpf('1e-6'))
def expE(r):
    if abs(r) < mp.mpf('1e-30'): r = mp.mpf('1e-30')
    return (mp.exp(r) - 1 - r) / (r * r)
out("EXPM1", expE, -rmax, rmax, 11)
smax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1))**2 * (1 + mp.mpf('1e-6'))
out("LOG", lambda z: (2 * mp.atanh(mp.sqrt(z)) / mp.sqrt(z) - 2) / z, eps, smax, 7)
