"""DEPTHWISE_CONV_2D: every output channel co = c * M + m (M = depth_multiplier) is a 2-D convolution of
input channel c alone.

Semantics: microgen/reference/conv.py. The filter [1, KH, KW, Cout] is re-laid at build time as
[Cout][KH][KW], so one channel's taps are contiguous in the inner loop. Padding and the input zero point
are handled as for CONV_2D (lower_conv.py: interior pixels with a folded bias, border pixels with their
valid tap range and the input offset added per tap).
"""

from __future__ import annotations

import numpy as np

from ..graph import Op
from .lower import LowerContext, lowering
from .lower_conv import Axis, Mac, Taps, bind, check_reads_input, linear_sum, mac_step, pixel_bases, spatial_attrs, window_doc, window_nest
from .lower_fc import describe
from .nodes import Decl, PrimFunc, Stmt, add, load, loop, mul, seq


@lowering("DEPTHWISE_CONV_2D")
def lower_depthwise_conv_2d(ctx: LowerContext, op: Op) -> PrimFunc:
    """y[n, oy, ox, c * M + m] = act(requant(sum_{ky, kx} x[n, iy, ix, c] * w[0, ky, kx, c * M + m] + b)).
    TFLM accumulates 16-bit activations in int64 whatever the bias type (no int32 exception here)."""
    g_ = ctx.graph
    x, w, b = (g_.op_inputs(op) + [None])[:3]
    y = g_.tensors[op.outputs[0]]
    n, h, wd, cin = x.shape
    _, kh, kw, cout = w.shape
    mult = cout // cin
    assert mult * cin == cout, (x.shape, w.shape)
    (sh, sw), (dh, dw), (pt, pl) = spatial_attrs(op)
    ay, ax = Axis(h, y.shape[1], kh, sh, dh, pt), Axis(wd, y.shape[2], kw, sw, dw, pl)
    (ya, yb), (xa, xb) = ay.interior(), ax.interior()
    has_inner, has_border = ya < yb and xa < xb, ay.clips or ax.clips
    wide = x.dtype.itemsize >= 2 and not x.dtype.is_float

    mac = Mac(ctx, op, x, w, y, cout, wide)
    check_reads_input(mac, ay, ax)
    xin = ctx.param(x.name, "x", readonly=True)
    out = ctx.param(y.name, "y")
    w_eff, w_dtype = mac.weights(w)
    w_rows = np.ascontiguousarray(w_eff[0].transpose(2, 0, 1).reshape(cout, kh * kw))  # [Cout][KH*KW]
    weights = ctx.const("weights", w_rows, w_dtype,
                        f"weights re-laid [{cout}][{kh}][{kw}] (channel, KH, KW) from the filter [1][{kh}][{kw}][{cout}]"
                        + ("" if mac.is_float or not np.any(w.quant.zero_point) else ", zero point subtracted"))
    init_inner, init_border = mac.window_bias(b, w_rows, has_inner, has_border)
    acc = mac.acc

    def pixel(nn, oy, ox):
        decls: list[Stmt] = []
        xp, yp = pixel_bases(decls, nn, oy, ox, ay, ax, cin, cout)

        def body(t: Taps) -> Stmt:
            off = mac.x_off if t.clipped else 0
            init = init_border if t.clipped else init_inner

            def channel(c, m):
                stmts: list[Stmt] = []
                co = bind(stmts, "co", add(mul(c, mult), m))

                def tap(ky, kx):
                    v = load(xin, linear_sum(xp, mul(ky, dh * wd * cin), mul(kx, dw * cin), c))
                    return mac_step(acc, add(v, off) if off else v, load(weights, linear_sum(mul(co, kh * kw),
                                                                                            mul(ky, kw), kx)))
                taps = loop("ky", t.nky, lambda ky: loop("kx", t.nkx, lambda kx: tap(ky, kx), start=t.kx0),
                            start=t.ky0)
                return seq(*stmts, Decl(acc, init(co)), taps, mac.finish(co, out, add(yp, co)))
            return loop("c", cin, lambda c: loop("m", mult, lambda m: channel(c, m)))
        return decls, body

    doc = "\n".join([describe(op, x, w, y), window_doc(ay, ax, f", depth_multiplier {mult}" if mult > 1 else ""),
                     *mac.describe_quant()])
    return PrimFunc(ctx.func_name(op), (xin, out), window_nest(n, ay, ax, pixel), doc=doc)
