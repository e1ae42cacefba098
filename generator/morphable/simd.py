"""Explicit vector code for the pixel pass, written as LLVM IR through numba intrinsics.

LLVM's vectorisers do not touch the pixel pass (its loop is too branchy to vectorise across
pixels, and the SLP vectoriser leaves the 13-attribute interpolation as 39 scalar loads and
multiply-adds), so the vectors are spelled out here. An intrinsic's IR is emitted inline in the
calling kernel, where LLVM then optimises it with the rest; its arithmetic is the same as the
scalar expression it replaces, in the same order, so images stay byte-identical.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_F64 = ir.DoubleType()
_V4 = ir.VectorType(_F64, 4)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_BROADCAST = ir.Constant(ir.VectorType(_I32, 4), [0, 0, 0, 0])

N_INTERP = 13  # attributes per vertex row that ``interp_rows`` returns (render.N_ATTR)


def _fast(instr):
    """numba compiles the kernels with fastmath; the intrinsic's arithmetic gets the same flags, so
    LLVM contracts it into the same fused multiply-adds as the scalar code it replaces."""
    instr.flags.append("fast")
    return instr


@intrinsic
def interp_rows(typingctx, rows, i0, i1, i2, w0, w1, w2):
    """``w0 * rows[i0, :13] + w1 * rows[i1, :13] + w2 * rows[i2, :13]`` as a 13-tuple of float64.

    ``rows`` is a C-contiguous float64 [N, >= 13] array; the row indices are not checked (they come
    from the mesh's own triangles). Three 4-wide vector multiply-adds and one scalar one, where the
    scalar code needed thirteen: the largest single saving found in the pixel pass (~5% of a render).
    """
    if not (
        isinstance(rows, types.Array) and rows.dtype == types.float64 and rows.ndim == 2 and rows.layout == "C"
        and all(isinstance(i, types.Integer) for i in (i0, i1, i2))
        and all(w == types.float64 for w in (w0, w1, w2))
    ):
        return None
    ret = types.UniTuple(types.float64, N_INTERP)
    sig = ret(rows, i0, i1, i2, w0, w1, w2)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        base = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
        stride = builder.extract_value(ary.strides, 0)  # bytes per row
        starts = []
        for k in range(3):
            idx = args[1 + k]
            idx = builder.sext(idx, _I64) if idx.type.width < 64 else idx
            row = builder.gep(base, [builder.mul(idx, stride)], inbounds=True)
            starts.append(builder.bitcast(row, _F64.as_pointer()))
        weights = args[4:7]
        splats = [
            builder.shuffle_vector(
                builder.insert_element(ir.Constant(_V4, ir.Undefined), w, ir.Constant(_I32, 0)),
                ir.Constant(_V4, ir.Undefined), _BROADCAST,
            )
            for w in weights
        ]
        out = []
        for col in (0, 4, 8):
            acc = None
            for k in range(3):
                ptr = builder.bitcast(builder.gep(starts[k], [ir.Constant(_I64, col)], inbounds=True), _V4.as_pointer())
                term = _fast(builder.fmul(splats[k], builder.load(ptr, align=8)))
                acc = term if acc is None else _fast(builder.fadd(acc, term))
            out.extend(builder.extract_element(acc, ir.Constant(_I32, j)) for j in range(4))
        acc = None
        for k in range(3):
            val = builder.load(builder.gep(starts[k], [ir.Constant(_I64, 12)], inbounds=True), align=8)
            term = _fast(builder.fmul(weights[k], val))
            acc = term if acc is None else _fast(builder.fadd(acc, term))
        out.append(acc)
        return context.make_tuple(builder, ret, out)

    return sig, codegen
