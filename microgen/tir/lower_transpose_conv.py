"""TRANSPOSE_CONV in gather form: each output pixel sums the input pixels that scatter onto it.

Semantics: microgen/reference/conv.py (TFLM scatters x[iy, ix] . w[:, ky, kx, :] onto output
(iy * s + ky * d - pad); outputs nobody reaches get only the bias). Gathering instead writes every
output once and needs no scratch accumulator buffer.

Output row oy receives the taps ky with (oy + pad - ky * d) divisible by s and the quotient iy inside the
input: an arithmetic progression ky0, ky0 + kstep, ... with iy0, iy0 - istep, ... (kstep = s / gcd(s, d),
istep = d / gcd(s, d)). Build time tabulates (ky0, count, iy0) per output row and per output column, so the
kernel does no division or modulo. Which taps land varies from pixel to pixel, so the input zero point
cannot be folded into one bias: the offset is added per tap (nothing to add for int16 / float).
Filter [Cout, KH, KW, Cin/groups] kept as is.
"""

from __future__ import annotations

from math import gcd

import numpy as np

from ..graph import DType, Op
from .lower import LowerContext, lowering
from .lower_conv import Mac, bind, linear_sum, mac_step, spatial_attrs
from .lower_fc import describe
from .nodes import Decl, Expr, IntImm, PrimFunc, Stmt, add, const, load, loop, mul, seq, sub


def tap_table(n_in: int, n_out: int, k: int, s: int, d: int, pad: int) -> tuple[np.ndarray, int, int]:
    """[n_out, 3] rows (first tap, number of taps, input index of the first tap), kstep, istep."""
    kstep, istep = s // gcd(s, d), d // gcd(s, d)
    table = np.zeros((n_out, 3), np.int64)
    for o in range(n_out):
        p = o + pad
        taps = [(t, (p - t * d) // s) for t in range(k)
                if (p - t * d) % s == 0 and 0 <= (p - t * d) // s < n_in]
        if taps:
            assert all(t == taps[0][0] + j * kstep and i == taps[0][1] - j * istep for j, (t, i) in enumerate(taps))
            table[o] = (taps[0][0], len(taps), taps[0][1])
    return table, kstep, istep


@lowering("TRANSPOSE_CONV")
def lower_transpose_conv(ctx: LowerContext, op: Op) -> PrimFunc:
    """y[n, oy, ox, co] = act(requant(b[co] + sum over landing taps of x[n, iy, ix, g*cg + c] * w[co, ky, kx, c])).
    16-bit activations accumulate in int64 (TFLM's 16x8 kernel)."""
    g_ = ctx.graph
    x, w, b = (g_.op_inputs(op) + [None])[:3]
    y = g_.tensors[op.outputs[0]]
    n, h, wd, cin = x.shape
    cout, kh, kw, cg = w.shape
    groups = cin // cg
    og = cout // groups
    assert groups * cg == cin and og * groups == cout, (x.shape, w.shape)
    _, oh, ow, _ = y.shape
    (sh, sw), (dh, dw), (pt, pl) = spatial_attrs(op)
    wide = x.dtype.itemsize >= 2 and not x.dtype.is_float

    mac = Mac(ctx, op, x, w, y, cout, wide)
    xin = ctx.param(x.name, "x", readonly=True)
    out = ctx.param(y.name, "y")
    w_eff, w_dtype = mac.weights(w)
    weights = ctx.const("weights", w_eff, w_dtype, f"weights [{cout}][{kh}][{kw}][{cg}] (Cout, KH, KW, Cin/groups)"
                        + ("" if mac.is_float or not np.any(w.quant.zero_point) else ", zero point subtracted"))
    bias = mac.bias_values(b)
    if not mac.is_float:
        wabs = int(np.abs(w_eff.reshape(cout, -1).astype(np.int64)).sum(axis=1).max(initial=0))
        mac.fit_accumulator(int(np.abs(bias).max()) + mac.x_range(mac.x_off) * wabs)
    init = mac.bias_init(bias, "bias", "bias")
    acc, off = mac.acc, mac.x_off

    rows, ksy, isy = tap_table(h, oh, kh, sh, dh, pt)
    cols, ksx, isx = tap_table(wd, ow, kw, sw, dw, pl)
    if not (rows[:, 1].any() and cols[:, 1].any()):
        raise mac.unsupported("no input pixel lands inside the output (the output is constant); such a layer "
                              "reads no input and is not compiled")
    tables: dict[str, object] = {}

    def axis_taps(o: Expr, table: np.ndarray, name: str, i_name: str, stmts: list[Stmt]):
        """(first tap, count, first input index) of output o: numbers when o is known, else table loads."""
        if isinstance(o, IntImm):
            return tuple(const(int(v)) for v in table[o.value])
        if name not in tables:
            dt = DType.INT16 if np.abs(table).max(initial=0) < 2 ** 15 else DType.INT32
            tables[name] = ctx.const(f"taps_{name[-1]}", table, dt,
                                     f"per output {'row' if name == 'ky' else 'column'}: first tap {name}, "
                                     f"number of taps, input {i_name[:2]} of the first tap")
        buf = tables[name]
        return (bind(stmts, f"{name}0", load(buf, mul(o, 3))), bind(stmts, f"n{name}", load(buf, add(mul(o, 3), 1))),
                bind(stmts, i_name, load(buf, add(mul(o, 3), 2))))

    def row(nn, oy):
        row_decls: list[Stmt] = []
        ky0, nky, iy0 = axis_taps(oy, rows, "ky", "iy0", row_decls)

        def col(ox):
            decls: list[Stmt] = []
            kx0, nkx, ix0 = axis_taps(ox, cols, "kx", "ix0", decls)
            yp = bind(decls, "yp", mul(linear_sum(mul(linear_sum(mul(nn, oh), oy), ow), ox), cout))

            def channel(g, o):
                stmts: list[Stmt] = []
                co = bind(stmts, "co", add(mul(g, og), o))

                def tap_row(j):
                    rs: list[Stmt] = []
                    iy = bind(rs, "iy", sub(iy0, mul(j, isy)))
                    ky = bind(rs, "ky", add(ky0, mul(j, ksy)))

                    def tap(i):
                        ts: list[Stmt] = []
                        ix = bind(ts, "ix", sub(ix0, mul(i, isx)))
                        kx = bind(ts, "kx", add(kx0, mul(i, ksx)))
                        xp = bind(ts, "xp", linear_sum(mul(linear_sum(mul(linear_sum(mul(nn, h), iy), wd), ix), cin),
                                                       mul(g, cg)))
                        wp = bind(ts, "wp", mul(linear_sum(mul(linear_sum(mul(co, kh), ky), kw), kx), cg))

                        def mac_c(c):
                            v = load(xin, add(xp, c))
                            return mac_step(acc, add(v, off) if off else v, load(weights, add(wp, c)))
                        return seq(*ts, loop("c", cg, mac_c))
                    return seq(*rs, loop("i", nkx, tap))
                return seq(*stmts, Decl(acc, init(co)), loop("j", nky, tap_row), mac.finish(co, out, add(yp, co)))
            return seq(*decls, loop("g", groups, lambda g: loop("o", og, lambda o: channel(g, o))))
        return seq(*row_decls, loop("ox", ow, col))

    body = loop("n", n, lambda nn: loop("oy", oh, lambda oy: row(nn, oy)))
    doc = "\n".join([describe(op, x, w, y),
                     f"kernel {kh}x{kw}, strides {sh}x{sw}, dilations {dh}x{dw}, pads top {pt} left {pl}"
                     + (f", groups {groups}" if groups > 1 else ""),
                     f"tap steps: ky += {ksy}, kx += {ksx}; input steps: iy -= {isy}, ix -= {isx}",
                     *mac.describe_quant()])
    return PrimFunc(ctx.func_name(op), (xin, out), body, doc=doc)
