"""Minimax polynomial fits (Remez exchange) for the math kernels, in mpmath."""
import mpmath as mp
import struct, sys
mp.mp.dps = 100

def remez(f, a, b, powers, w=None, iters=30, grid=3000):
    """Minimize max |w(x) (f(x) - sum c_k x^powers[k])| over [a, b]."""
    a, b = mp.mpf(a), mp.mpf(b)
    if w is None:
        w = lambda x: 1 / f(x)          # relative error
    n = len(powers)
    m = n + 1
    ref = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (m - 1)) for i in range(m)]
    xs = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (grid - 1)) for i in range(grid)]
    fx = [f(x) for x in xs]
    wx = [w(x) for x in xs]
    best = None
    for it in range(iters):
        A = mp.matrix(m, m)
        rhs = mp.matrix(m, 1)
        for i, x in enumerate(ref):
            for k, p in enumerate(powers):
                A[i, k] = x ** p
            A[i, n] = (-1) ** i / w(x)
            rhs[i] = f(x)
        sol = mp.lu_solve(A, rhs)
        c = [sol[k] for k in range(n)]
        E = sol[n]
        def err(x, fxv=None, wxv=None):
            fv = f(x) if fxv is None else fxv
            wv = w(x) if wxv is None else wxv
            return (fv - sum(ck * x ** p for ck, p in zip(c, powers))) * wv
        ex = [err(x, fx[i], wx[i]) for i, x in enumerate(xs)]
        # local extrema of |err|, as (x, e) with alternating sign runs
        cand = []
        for i in range(grid):
            l = ex[i - 1] if i > 0 else None
            r = ex[i + 1] if i < grid - 1 else None
            e = ex[i]
            if (l is None or abs(e) >= abs(l)) and (r is None or abs(e) >= abs(r)):
                cand.append((xs[i], e))
        # merge same-sign neighbours keeping the larger
        runs = []
        for x, e in cand:
            if runs and mp.sign(runs[-1][1]) == mp.sign(e):
                if abs(e) > abs(runs[-1][1]):
                    runs[-1] = (x, e)
            else:
                runs.append((x, e))
        while len(runs) > m:
            if abs(runs[0][1]) < abs(runs[-1][1]):
                runs.pop(0)
            else:
                runs.pop()
        maxerr = max(abs(e) for e in ex)
        if best is None or maxerr < best[1]:
            best = (c, maxerr)
        if len(runs) < m:
            break
        ref = [x for x, _ in runs]
        minerr = min(abs(e) for _, e in runs)
        if maxerr / minerr < 1 + mp.mpf('1e-6'):
            break
    return best

def d(x):
    return float(x)

def show(name, c, maxerr, powers):
    print(f"// {name}: max weighted error {mp.nstr(maxerr, 4)} (2^{mp.nstr(mp.log(maxerr, 2), 4)})")
    for p, ck in zip(powers, c):
        print(f"    {d(ck)!r}, // x^{p}")
