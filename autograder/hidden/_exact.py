"""A hidden check shared by the units whose text promises float64 gradients: equal to the exact ones.

A correct float64 answer differs from the exact gradients only by rounding (below 1e-14 on the units' cases);
one computed in float32 and cast back to float64 differs by about 1e-8, which a numeric gradient's own error
(about 1e-10) and its bound (1e-7) hide.
"""
from __future__ import annotations

import numpy as np

EXACT_TOL = 1e-11


def expect_exact(step, what, got, want, tol=EXACT_TOL, hint=""):
    """``got`` equals the exact float64 ``want`` to ``tol`` (relative); returns the relative error."""
    from course.checks import fail, relative_error, to_array

    got = to_array(step, what, got)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        fail(step, f"{what} has shape {got.shape}, expected {want.shape}")
    rel = relative_error(got, want)
    if not rel < tol:
        fail(step, f"{what} differs from the exact float64 gradient: relative error {rel:.1e} (needs < {tol:g})"
                   + (f". {hint}" if hint else ". Is something computed in float32 (or rounded), or kept from an "
                      "earlier call? Keep every array float64 from start to end"))
    return rel
