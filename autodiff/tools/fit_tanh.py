"""Fits the polynomial of autodiff/src/fast_math.rs: tanh x = x + x·u·g(u), u = x², |x| < T.

Chebyshev interpolation of g in 60-digit arithmetic (near-minimax), then the worst error of the
coefficients rounded to f64 on a dense grid. Run: python3 autodiff/tools/fit_tanh.py [T] [deg]
"""
import sys
import mpmath as mp

mp.mp.dps = 60
T = mp.mpf(sys.argv[1]) if len(sys.argv) > 1 else mp.mpf("0.625")
U = T * T


def g(u):
    if u == 0:
        return mp.mpf(-1) / 3
    x = mp.sqrt(u)
    return (mp.tanh(x) / x - 1) / u


for deg in ([int(sys.argv[2])] if len(sys.argv) > 2 else range(8, 15)):
    poly, err = mp.chebyfit(g, [0, U], deg + 1, error=True)
    coeffs = [float(c) for c in poly]  # highest degree first, rounded to f64
    worst = mp.mpf(0)
    for i in range(1, 4001):
        x = T * i / 4000
        u = x * x
        p = mp.mpf(0)
        for c in coeffs:
            p = p * u + mp.mpf(c)
        approx = x + x * u * p
        rel = abs(approx - mp.tanh(x)) / mp.tanh(x)
        worst = max(worst, rel)
    print(f"degree {deg}: fit error {mp.nstr(err, 3)}, worst relative error in ulps "
          f"{mp.nstr(worst / mp.mpf(2) ** -53, 3)}")
    if len(sys.argv) > 2:
        for c in reversed(coeffs):
            print(f"    {c!r},")
