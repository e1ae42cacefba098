"""Explicit vector code for the pixel pass, the component blend and the background grid: a
four-lane float64 type for numba, and LLVM IR.

LLVM's vectorisers leave the pixel pass scalar (its loop is too branchy to vectorise across
pixels, and the SLP vectoriser packs neither the 13-attribute interpolation nor the colour
arithmetic), so the vectors are spelled out here: ``Vec4``, a numba type held in one <4 x double>
register, with ``+ - * /``; ``interp_rows`` for the per-vertex attribute rows; ``store_rgb8`` for the
8-bit output. Intrinsics emit their IR inline in the calling kernel, where LLVM optimises it with the
rest. The arithmetic is the scalar code's, lane by lane and in the same order, so the images are
byte-identical to those of the scalar pixel pass this replaced, which was ~7% slower per render.
The blend's ``add_scaled_block`` adds one fixed-size block of a sparse component as a single
16-wide multiply-add, the same per value as the scalar loop over variable-length runs it replaced.
``vec4``, ``lane_at`` and ``clip01`` let ``background.background_grid`` evaluate four grid nodes at
once.
"""

from __future__ import annotations

import operator

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, models, overload, register_model

_F64 = ir.DoubleType()
_V4 = ir.VectorType(_F64, 4)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)

N_INTERP = 13  # attributes per vertex row that ``interp_rows`` reads (render.N_ATTR)
BLOCK = 16  # values per block of the sparse component blend (``add_scaled_block``, raster.blend)


def _splat(builder, value, vtype=_V4):
    """A float broadcast to every lane of ``vtype``."""
    one = builder.insert_element(ir.Constant(vtype, ir.Undefined), value, ir.Constant(_I32, 0))
    lanes = ir.Constant(ir.VectorType(_I32, vtype.count), [0] * vtype.count)
    return builder.shuffle_vector(one, ir.Constant(vtype, ir.Undefined), lanes)


def _clamp(builder, x, lo, hi):
    """Each lane of a <4 x double> limited to [lo, hi] (ordered compares: a NaN becomes ``lo``)."""
    lo, hi = ir.Constant(_V4, [lo] * 4), ir.Constant(_V4, [hi] * 4)
    x = builder.select(builder.fcmp_ordered(">", x, lo), x, lo)
    return builder.select(builder.fcmp_ordered("<", x, hi), x, hi)


def _fast(instr):
    """numba compiles the kernels with fastmath; the intrinsic's arithmetic gets the same flags, so
    LLVM contracts it into the same fused multiply-adds as the scalar code it replaces."""
    instr.flags.append("fast")
    return instr


def _address(context, builder, aryty, ary, indices, ptr_type):
    """Pointer to ``ary[indices...]`` (leading axes, by the array's byte strides) as ``ptr_type``.
    Indices are sign-extended to 64 bits and not checked."""
    a = context.make_array(aryty)(context, builder, ary)
    off = ir.Constant(_I64, 0)
    for axis, idx in enumerate(indices):
        idx = builder.sext(idx, _I64) if idx.type.width < 64 else idx
        off = builder.add(off, builder.mul(idx, builder.extract_value(a.strides, axis)))
    base = builder.bitcast(a.data, ir.IntType(8).as_pointer())
    return builder.bitcast(builder.gep(base, [off], inbounds=True), ptr_type)


# --- Vec4: four float64 lanes as one LLVM vector value --------------------------------------------
#
# A numba type whose data model is an LLVM <4 x double>, so a value stays in one vector register
# through branches and loops (a tuple of four floats would be split into scalars by LLVM, and every
# operation would repack it). The pixel pass keeps a colour in lanes 0-2 (lane 3 rides along unused):
# a colour mix is then one vector subtract and one multiply-add instead of three of each.


class Vec4Type(types.Type):
    def __init__(self):
        super().__init__(name="Vec4")


Vec4 = Vec4Type()


@register_model(Vec4Type)
class _Vec4Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _V4)


def _pack(typingctx, *xs):
    """Signature and code for a Vec4 from floats (unlisted lanes are zero)."""
    if not all(isinstance(x, types.Float) for x in xs):
        return None
    sig = Vec4(*xs)

    def codegen(context, builder, signature, args):
        v = ir.Constant(_V4, [0.0] * 4)
        for j, (x, ty) in enumerate(zip(args, signature.args)):
            v = builder.insert_element(v, context.cast(builder, x, ty, types.float64), ir.Constant(_I32, j))
        return v

    return sig, codegen


@intrinsic
def vec3(typingctx, r, g, b):
    """A Vec4 (r, g, b, 0) from three floats."""
    return _pack(typingctx, r, g, b)


@intrinsic
def vec4(typingctx, a, b, c, d):
    """A Vec4 from four floats."""
    return _pack(typingctx, a, b, c, d)


@intrinsic
def lane(typingctx, v, k):
    """Lane ``k`` (a literal) of a Vec4."""
    if v != Vec4 or not isinstance(k, types.IntegerLiteral) or not 0 <= k.literal_value < 4:
        return None
    sig = types.float64(v, k)
    index = k.literal_value

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], ir.Constant(_I32, index))

    return sig, codegen


def _vector_binop(op, instr):
    """Vec4 op Vec4, Vec4 op float, float op Vec4 (the float is broadcast), with fastmath flags."""

    @intrinsic
    def apply(typingctx, a, b):
        sig = Vec4(a, b)

        def codegen(context, builder, signature, args):
            vals = [
                x if ty == Vec4 else _splat(builder, context.cast(builder, x, ty, types.float64))
                for x, ty in zip(args, signature.args)
            ]
            return _fast(getattr(builder, instr)(*vals))

        return sig, codegen

    @overload(op)
    def _ov(a, b):
        if (a == Vec4 and (b == Vec4 or isinstance(b, types.Float))) or (b == Vec4 and isinstance(a, types.Float)):
            return lambda a, b: apply(a, b)


_vector_binop(operator.add, "fadd")
_vector_binop(operator.sub, "fsub")
_vector_binop(operator.mul, "fmul")
_vector_binop(operator.truediv, "fdiv")


@intrinsic
def lane_at(typingctx, v, j):
    """Lane ``j`` (a run-time index in 0-3, not checked) of a Vec4."""
    if v != Vec4 or not isinstance(j, types.Integer):
        return None
    sig = types.float64(v, j)

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], args[1])

    return sig, codegen


@intrinsic
def clip01(typingctx, v):
    """Each lane of a Vec4 clamped to [0, 1]."""
    if v != Vec4:
        return None
    sig = Vec4(v)

    def codegen(context, builder, signature, args):
        return _clamp(builder, args[0], 0.0, 1.0)

    return sig, codegen


@intrinsic
def interp_rows(typingctx, rows, i0, i1, i2, w0, w1, w2):
    """``w0 * rows[i0, :13] + w1 * rows[i1, :13] + w2 * rows[i2, :13]``, as three Vec4 (columns 0-3,
    4-7, 8-11) and a float (column 12).

    ``rows`` is a C-contiguous float64 [N, >= 13] array; the row indices are not checked (they come
    from the mesh's own triangles). Three 4-wide multiply-adds and one scalar one, where scalar code
    needs thirteen (~5% of a render).
    """
    if not (
        isinstance(rows, types.Array) and rows.dtype == types.float64 and rows.ndim == 2 and rows.layout == "C"
        and all(isinstance(i, types.Integer) for i in (i0, i1, i2))
        and all(w == types.float64 for w in (w0, w1, w2))
    ):
        return None
    ret = types.Tuple((Vec4, Vec4, Vec4, types.float64))
    sig = ret(rows, i0, i1, i2, w0, w1, w2)

    def codegen(context, builder, signature, args):
        starts = [_address(context, builder, signature.args[0], args[0], [args[1 + k]], _F64.as_pointer())
                  for k in range(3)]
        weights = args[4:7]
        splats = [_splat(builder, w) for w in weights]
        vecs = []
        for col in (0, 4, 8):
            acc = None
            for k in range(3):
                ptr = builder.bitcast(builder.gep(starts[k], [ir.Constant(_I64, col)], inbounds=True), _V4.as_pointer())
                term = _fast(builder.fmul(splats[k], builder.load(ptr, align=8)))
                acc = term if acc is None else _fast(builder.fadd(acc, term))
            vecs.append(acc)
        acc = None
        for k in range(3):
            val = builder.load(builder.gep(starts[k], [ir.Constant(_I64, 12)], inbounds=True), align=8)
            term = _fast(builder.fmul(weights[k], val))
            acc = term if acc is None else _fast(builder.fadd(acc, term))
        return context.make_tuple(builder, ret, vecs + [acc])

    return sig, codegen


@intrinsic
def load4(typingctx, ary, i, j):
    """``ary[i, j, 0:4]`` as a Vec4, for a C-contiguous float64 [N, M, 4] array (the last axis must
    have four entries; it is not checked)."""
    if not (
        isinstance(ary, types.Array) and ary.dtype == types.float64 and ary.ndim == 3 and ary.layout == "C"
        and isinstance(i, types.Integer) and isinstance(j, types.Integer)
    ):
        return None
    sig = Vec4(ary, i, j)

    def codegen(context, builder, signature, args):
        ptr = _address(context, builder, signature.args[0], args[0], args[1:3], _V4.as_pointer())
        return builder.load(ptr, align=8)

    return sig, codegen


@intrinsic
def add_scaled_block(typingctx, out, start, c, values, j):
    """``out[start : start + BLOCK] += c * values[j]`` for a C-contiguous float32 ``out`` [n] and
    ``values`` [B, BLOCK], as one BLOCK-wide multiply-add (fastmath: the same fused multiply-add per
    value as the scalar loop). Indices are not checked: they come from ``raster.sparse_blocks``."""
    if not (
        isinstance(out, types.Array) and out.dtype == types.float32 and out.ndim == 1 and out.layout == "C"
        and isinstance(values, types.Array) and values.dtype == types.float32 and values.ndim == 2
        and values.layout == "C" and c == types.float32
        and isinstance(start, types.Integer) and isinstance(j, types.Integer)
    ):
        return None
    sig = types.none(out, start, c, values, j)
    vec = ir.VectorType(ir.FloatType(), BLOCK)

    def codegen(context, builder, signature, args):
        dst = _address(context, builder, signature.args[0], args[0], [args[1]], vec.as_pointer())
        src = _address(context, builder, signature.args[3], args[3], [args[4]], vec.as_pointer())
        scale = _splat(builder, args[2], vec)
        total = _fast(builder.fadd(builder.load(dst, align=4), _fast(builder.fmul(scale, builder.load(src, align=4)))))
        builder.store(total, dst, align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def store_rgb8(typingctx, img, yi, xi, c, gain, noise):
    """Write lanes 0-2 of ``(c * gain + noise) * 255 + 0.5``, clipped to [0, 255] and truncated, as the
    three bytes of pixel (yi, xi) of a C-contiguous uint8 [H, W, 3] image."""
    if not (
        isinstance(img, types.Array) and img.dtype == types.uint8 and img.ndim == 3 and img.layout == "C"
        and c == Vec4 and gain == Vec4 and isinstance(noise, types.Float)
        and isinstance(yi, types.Integer) and isinstance(xi, types.Integer)
    ):
        return None
    sig = types.none(img, yi, xi, c, gain, noise)

    def codegen(context, builder, signature, args):
        c, gain = args[3], args[4]
        noise = _splat(builder, context.cast(builder, args[5], signature.args[5], types.float64))
        x = _fast(builder.fadd(_fast(builder.fmul(c, gain)), noise))
        x = _fast(builder.fadd(_fast(builder.fmul(x, ir.Constant(_V4, [255.0] * 4))), ir.Constant(_V4, [0.5] * 4)))
        x = _clamp(builder, x, 0.0, 255.0)
        q = builder.fptosi(x, ir.VectorType(_I32, 4))
        base = _address(context, builder, signature.args[0], args[0], args[1:3], ir.IntType(8).as_pointer())
        for j in range(3):
            byte = builder.trunc(builder.extract_element(q, ir.Constant(_I32, j)), ir.IntType(8))
            builder.store(byte, builder.gep(base, [ir.Constant(_I64, j)], inbounds=True))
        return context.get_dummy_value()

    return sig, codegen
