"""The built-in morphable generator: determinism, batching, sizes, occlusion, variety, preview."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from synthface.errors import SynthError
from synthface.generator import layout, registry
from synthface.generator.morphable import MorphableBackend
from synthface.generator.sampler import SamplingConfig, Sampler


@pytest.fixture(scope="module")
def backend():
    return MorphableBackend(image_size=112)


@pytest.fixture(scope="module")
def records():
    return Sampler(SamplingConfig(), 8, seed=0).batch([(c, k) for c in range(8) for k in range(2)]).coeffs


def test_registered_and_described(backend):
    assert isinstance(registry.create("morphable"), MorphableBackend)
    assert backend.describe()["name"] == "morphable" and backend.version


def test_same_record_same_pixels_alone_or_in_any_batch(backend, records):
    batch = backend.render(records)
    assert batch.images.shape == (16, 112, 112, 3) and batch.images.dtype == np.uint8
    assert batch.landmarks.shape == (16, 5, 2) and batch.landmarks.dtype == np.float32
    assert len(batch.meta) == 16
    again = backend.render(records)
    assert np.array_equal(batch.images, again.images)
    for b in (0, 5, 15):
        alone = backend.render(records[b : b + 1])
        assert np.array_equal(alone.images[0], batch.images[b])
        assert np.array_equal(alone.landmarks[0], batch.landmarks[b])
    odd = backend.render(records[3:10])
    assert np.array_equal(odd.images, batch.images[3:10])


def test_sizes():
    rec = layout.empty(1)
    assert MorphableBackend(image_size="112x96").render(rec).images.shape == (1, 112, 96, 3)
    assert MorphableBackend(image_size=64).render(rec).images.shape == (1, 64, 64, 3)


def test_identities_differ_and_images_of_one_identity_vary(backend, records):
    imgs = backend.render(records).images.astype(np.float32)
    # Two images of identity 0 differ (expression, pose, lighting, background) ...
    assert np.abs(imgs[0] - imgs[1]).mean() > 5
    # ... and the identity part alone changes the face: same everything else, new identity.
    recs = np.repeat(records[:1], 2, axis=0)
    recs[1, layout.IDENTITY] = records[2, layout.IDENTITY]
    a, b = backend.render(recs).images.astype(np.float32)
    centre = (slice(30, 100), slice(25, 87))
    assert np.abs(a[centre] - b[centre]).mean() > 5


def test_far_eye_hidden_at_60_degrees_yaw(backend):
    recs = layout.empty(2)
    recs[0, layout.SLICES["pose"]] = [0.0, np.radians(60.0), 0.0]  # nose to the image right
    recs[1, layout.SLICES["pose"]] = [0.0, np.radians(-60.0), 0.0]
    meta = backend.render(recs).meta
    assert meta[0]["visible"][0] and not meta[0]["visible"][1]  # the right eye turns away
    assert meta[1]["visible"][1] and not meta[1]["visible"][0]
    front = backend.render(layout.empty(1)).meta[0]
    assert front["visible"] == [True] * 5


def test_auto_exposure_lifts_dark_faces_without_equalising_them(backend):
    """Skin tone from lightest to darkest: the albedo's luminance falls about fourfold, the rendered
    face's much less (a camera's gain), but the darker face still renders darker."""
    recs = layout.empty(2)
    recs[0, layout.SLICES["albedo"].start] = -2.5  # the first appearance coefficient is skin tone
    recs[1, layout.SLICES["albedo"].start] = 2.5
    out = backend.render(recs)
    assert out.meta[0]["skin_tone"] < 0.05 and out.meta[1]["skin_tone"] > 0.95
    cheeks = out.images[:, 60:80, 30:82].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    light, dark = cheeks.mean(axis=(1, 2))
    assert 0.45 < dark / light < 0.85, (light, dark)


def _iris_offsets(out):
    """Per image, the horizontal offset (px) of each eye's dark pixels (iris, pupil) from the eye's
    landmark, weighted by darkness inside a small window."""
    offsets = []
    for img, lms in zip(out.images, out.landmarks):
        lum = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
        row = []
        for x, y in lms[:2]:
            x0, y0 = int(round(x)), int(round(y))
            win = lum[y0 - 4 : y0 + 5, x0 - 12 : x0 + 13]
            w = np.clip(win.mean() - win, 0.0, None)
            row.append(float((w.sum(axis=0) * np.arange(-12, 13)).sum() / w.sum()))
        offsets.append(row)
    return np.array(offsets)


def test_eyes_glance_with_their_noise_and_turn_towards_the_camera():
    backend = MorphableBackend(image_size=224)
    gaze_u = layout.SLICES["noise"].start + 1
    recs = layout.empty(4)
    recs[0, gaze_u], recs[1, gaze_u] = 3.0, -3.0  # glances to the image right, then left
    recs[2, layout.SLICES["pose"]] = [0.0, np.radians(25.0), 0.0]  # head turned to the image right ...
    recs[3, layout.SLICES["pose"]] = [0.0, np.radians(-25.0), 0.0]  # ... and left; gaze noise 0
    dx = _iris_offsets(backend.render(recs))
    assert (dx[0] - dx[1] > 3.0).all(), dx  # both eyes move together, by several pixels
    assert (dx[3] - dx[2] > 2.0).all(), dx  # the eyes turn back towards the camera


def test_background_follows_noise_only(backend):
    recs = layout.empty(2)
    recs[1, layout.SLICES["noise"]] = np.linspace(-2, 2, 32)
    a, b = backend.render(recs).images.astype(np.float32)
    corner = (slice(0, 12), slice(0, 12))
    assert np.abs(a[corner] - b[corner]).mean() > 3


def test_bad_input(backend):
    with pytest.raises(SynthError):
        backend.render(np.zeros((2, 100), np.float32))
    bad = layout.empty(1)
    bad[0, 0] = np.nan
    with pytest.raises(SynthError):
        backend.render(bad)
    with pytest.raises(SynthError):
        MorphableBackend(device="cuda")


def test_preview_command_writes_a_sheet(tmp_path):
    from synthface.cli import main

    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["preview", "--out", str(out), "--ids", "2", "--per-id", "3",
                                       "--image-size", "112x96", "--yaw-range", "-10,10"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size == (3 * 96, 3 * 112)
    bad = CliRunner().invoke(main, ["preview", "--out", str(out), "--ids", "2", "--mixup", "0.5,1.5"])
    assert bad.exit_code != 0 and "outside [0, 1]" in bad.output


@pytest.mark.parametrize("jitter", [0.0, 0.7])
def test_rasteriser_leaves_no_pinholes_between_triangles(jitter):
    """A tiled square covers every pixel centre inside it, even centres exactly on shared edges and
    vertices (jitter 0 puts the vertices on pixel centres), and its barycentrics stay in [0, 1]."""
    from synthface.generator.morphable.raster import rasterise

    n, step, x0 = 15, 2.0, 3.0  # vertices on a 15 x 15 grid: the square [3, 31]^2
    gy, gx = np.mgrid[0:n, 0:n].astype(np.float64)
    px, py = x0 + step * gx, x0 + step * gy
    inner = (gx > 0) & (gx < n - 1) & (gy > 0) & (gy < n - 1)
    rng = np.random.default_rng(0)
    px[inner] += rng.uniform(-jitter, jitter, inner.sum())
    py[inner] += rng.uniform(-jitter, jitter, inner.sum())
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    # Clockwise in y-down pixel space, as the culling of one-sided triangles expects.
    tris = np.ascontiguousarray(np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]), dtype=np.int32)
    zbuf = np.empty((36, 36), np.float32)
    tid = np.empty((36, 36), np.int32)
    bary = np.empty((36, 36, 2), np.float32)
    pz = np.full(n * n, 50.0)
    rasterise(px.ravel(), py.ravel(), pz, tris, np.zeros(len(tris), np.bool_), zbuf, tid, bary)
    assert (tid[3:32, 3:32] >= 0).all()
    assert (tid[:3] < 0).all() and (tid[32:] < 0).all() and (tid[:, :3] < 0).all() and (tid[:, 32:] < 0).all()
    w = bary[3:32, 3:32]
    assert (w >= -1e-6).all() and (w.sum(-1) <= 1.0 + 1e-6).all()
    # Reversed winding faces away: culled unless the triangles are two-sided.
    back = np.ascontiguousarray(tris[:, ::-1])
    rasterise(px.ravel(), py.ravel(), pz, back, np.zeros(len(tris), np.bool_), zbuf, tid, bary)
    assert (tid < 0).all()
    rasterise(px.ravel(), py.ravel(), pz, back, np.ones(len(tris), np.bool_), zbuf, tid, bary)
    assert (tid[3:32, 3:32] >= 0).all()


def test_vector_code_matches_the_scalar_expressions():
    """``simd`` (hand-written LLVM vectors) gives the scalar code's values: the interpolation, for rows
    wider than it reads (it must step by the array's row stride) and int32 or int64 indices; colour
    arithmetic on Vec4 through a branch; the 8-bit output, clipped at both ends; a grid node as one
    vector load. It refuses arrays it cannot read as contiguous float64 rows."""
    from numba import njit
    from numba.core.errors import TypingError

    from synthface.generator.morphable.simd import N_INTERP, interp_rows, lane, load4, store_rgb8, vec3

    @njit(fastmath=True)
    def run(rows, tris, w, img):
        out = np.empty((tris.shape[0], 2, N_INTERP))
        mixed = np.empty((tris.shape[0], 2, 3))
        gain = vec3(1.1, 1.0, 0.9)
        for t in range(tris.shape[0]):
            i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
            w0, w1 = w[t, 0], w[t, 1]
            w2 = 1.0 - w0 - w1
            a, b, c, d = interp_rows(rows, i0, i1, i2, w0, w1, w2)
            out[t, 0, 0:4] = lane(a, 0), lane(a, 1), lane(a, 2), lane(a, 3)
            out[t, 0, 4:8] = lane(b, 0), lane(b, 1), lane(b, 2), lane(b, 3)
            out[t, 0, 8:12] = lane(c, 0), lane(c, 1), lane(c, 2), lane(c, 3)
            out[t, 0, 12] = d
            for k in range(N_INTERP):
                out[t, 1, k] = w0 * rows[i0, k] + w1 * rows[i1, k] + w2 * rows[i2, k]
            # A mix towards another colour, taken on one branch only (the vector crosses the join).
            x = vec3(rows[i0, 0], rows[i0, 1], rows[i0, 2])
            if w0 > 0.25:
                x = x + (vec3(0.2, 0.5, 0.9) - x) * w1
            x = x * 2.0 - 0.5 * x
            mixed[t, 0] = lane(x, 0), lane(x, 1), lane(x, 2)
            noise = 0.01 * (t - 20)
            store_rgb8(img, t, 0, x, gain, noise)
        return out, mixed

    rng = np.random.default_rng(3)
    rows = rng.normal(size=(50, N_INTERP + 3))
    rows[:, N_INTERP:] = 1e6  # beyond the attributes: must never leak into the result
    w = rng.uniform(0.0, 0.5, size=(40, 2))
    img = np.zeros((40, 2, 3), np.uint8)
    for dtype in (np.int32, np.int64):
        tris = rng.integers(0, 50, size=(40, 3)).astype(dtype)
        out, mixed = run(rows, tris, w, img)
        w2 = 1.0 - w[:, 0] - w[:, 1]
        expect = (w[:, 0, None] * rows[tris[:, 0], :N_INTERP] + w[:, 1, None] * rows[tris[:, 1], :N_INTERP]
                  + w2[:, None] * rows[tris[:, 2], :N_INTERP])
        np.testing.assert_allclose(out[:, 0], expect, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out[:, 0], out[:, 1], rtol=1e-12, atol=1e-12)
        x = rows[tris[:, 0], :3]
        x = np.where(w[:, :1] > 0.25, x + (np.array([0.2, 0.5, 0.9]) - x) * w[:, 1:2], x)
        x = x * 2.0 - 0.5 * x
        np.testing.assert_allclose(mixed[:, 0], x, rtol=1e-12, atol=1e-12)
        noise = 0.01 * (np.arange(40) - 20)[:, None]
        q = np.clip((x * np.array([1.1, 1.0, 0.9]) + noise) * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
        assert np.abs(img[:, 0].astype(int) - q).max() <= 1  # float rounding at a level boundary
        assert (img[:, 1] == 0).all()  # the neighbour pixel is untouched
        assert img.min() == 0 and img.max() == 255  # the draws reach both clips
    @njit
    def nodes(grid):
        out = np.empty((grid.shape[0], grid.shape[1], 4))
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = load4(grid, i, j)
                out[i, j] = lane(v, 0), lane(v, 1), lane(v, 2), lane(v, 3)
        return out

    grid = rng.normal(size=(5, 6, 4))
    assert np.array_equal(nodes(grid), grid)
    with pytest.raises(TypingError):
        run(rows.astype(np.float32), tris, w, img)
    with pytest.raises(TypingError):
        run(rows[:, ::2], tris, w, img)  # not C-contiguous


def _background_reference(bp, xs, ys):
    """The background's formula in numpy (``background.background_grid``'s documentation)."""
    x, y = np.meshgrid(xs, ys)
    t = np.clip(x * bp[6] + y * bp[7] + 0.5, 0.0, 1.0)
    c = [bp[i] + (bp[3 + i] - bp[i]) * t for i in range(3)]
    for k in range(3):
        o = 8 + 7 * k
        a = bp[o + 3] / (1.0 + ((x - bp[o]) ** 2 + (y - bp[o + 1]) ** 2) * bp[o + 2])
        c = [c[i] + (bp[o + 4 + i] - c[i]) * a for i in range(3)]
    s = bp[33]
    a = np.clip((x - bp[29]) * s, 0, 1) * np.clip((bp[30] - x) * s, 0, 1)
    a = a * np.clip((y - bp[31]) * s, 0, 1) * np.clip((bp[32] - y) * s, 0, 1) * 0.85
    return np.stack([c[i] + (bp[34 + i] - c[i]) * a for i in range(3)], axis=-1)


def test_background_grid_follows_its_formula():
    """``background_grid`` computes four grid nodes at once in vector lanes; every node must match
    the formula, whatever the parameters (gradient direction, blobs, a rectangle with soft or hard
    edges) and for grid heights that are not a multiple of four (the last lanes must not spill)."""
    from synthface.generator.morphable.background import BG_PARAMS, background_grid, background_params

    rng = np.random.default_rng(11)
    for size in ((112, 112), (112, 96), (40, 40), (256, 256)):
        for _ in range(5):
            bp = np.zeros(BG_PARAMS)
            background_params(rng.normal(size=32) * 1.5, size[0], size[1], bp)
            shape = (size[0] // 4 + 2, size[1] // 4 + 2, 4)
            grid = np.full((shape[0] + 1, shape[1], 4), np.nan)
            background_grid(bp, grid[: shape[0]])
            expect = _background_reference(bp, 4.0 * np.arange(shape[1]), 4.0 * np.arange(shape[0]))
            np.testing.assert_allclose(grid[: shape[0], :, :3], expect, rtol=0.0, atol=1e-12)
            assert (grid[: shape[0], :, 3] == 0).all() and np.isnan(grid[shape[0]]).all()


def test_sh_irradiance_follows_the_deep3d_formula():
    """``shading.sh_irradiance`` (the channels in vector lanes) against the formula in the module's
    docstring, written out in numpy: for random normals and coefficients, and for the axis
    directions, where each basis function is easy to check by hand."""
    from numba import njit

    from synthface.generator.morphable.shading import sh_irradiance, sh_rgb
    from synthface.generator.morphable.simd import lane

    @njit(fastmath=True)
    def run(gamma, normals):
        G = sh_rgb(gamma)
        out = np.empty((normals.shape[0], 4))
        for i in range(normals.shape[0]):
            v = sh_irradiance(G, normals[i, 0], normals[i, 1], normals[i, 2])
            out[i] = lane(v, 0), lane(v, 1), lane(v, 2), lane(v, 3)
        return out

    a = np.array([np.pi, 2 * np.pi / np.sqrt(3), 2 * np.pi / np.sqrt(8)])
    c = np.array([1 / np.sqrt(4 * np.pi), np.sqrt(3) / np.sqrt(4 * np.pi), 3 * np.sqrt(5) / np.sqrt(12 * np.pi)])
    rng = np.random.default_rng(5)
    normals = rng.normal(size=(500, 3))
    normals = np.concatenate([np.eye(3), -np.eye(3), normals / np.linalg.norm(normals, axis=1, keepdims=True)])
    x, y, z = normals.T
    Y = np.stack([
        a[0] * c[0] * np.ones_like(x), -a[1] * c[1] * y, a[1] * c[1] * z, -a[1] * c[1] * x,
        a[2] * c[2] * x * y, -a[2] * c[2] * y * z, a[2] * c[2] * (3 * z**2 - 1) / (2 * np.sqrt(3)),
        -a[2] * c[2] * x * z, a[2] * c[2] * (x**2 - y**2) / 2,
    ], axis=1)
    for _ in range(3):
        gamma = rng.normal(size=(3, 9)) * 0.4
        gamma[:, 0] += 0.8
        out = run(gamma, normals)
        np.testing.assert_allclose(out[:, :3], Y @ gamma.T, rtol=0.0, atol=1e-12)
        assert (out[:, 3] == 0).all()


def test_sparse_blend_equals_the_dense_sum_of_kept_entries():
    """The block-packed blend adds every kept basis entry exactly once, in component order, up to the
    last value of a row whose length is no multiple of the block (its last block starts at
    n - BLOCK and overlaps the previous one); dropped entries (below the tolerance, outside a merged
    gap) add nothing, nor does a zero coefficient."""
    from synthface.generator.morphable.raster import blend, sparse_blocks
    from synthface.generator.morphable.simd import BLOCK

    rng = np.random.default_rng(5)
    n, k = 3 * BLOCK + 5, 6
    basis = np.zeros((k, n))
    basis[0, n - 3 :] = [0.5, -0.25, 1.0]  # only in the overlapping last block
    basis[1, BLOCK - 2 : BLOCK + 9] = rng.normal(size=11)  # across a block boundary
    basis[2, ::6] = rng.normal(size=len(range(0, n, 6)))  # index steps of 6: merged into one run
    basis[2, 1] = 1e-4  # inside that run: kept although below the tolerance
    basis[3, ::9] = 1.0  # steps of 9: separate runs
    basis[3, 4] = 1e-4  # outside every run: dropped
    basis[4] = rng.normal(size=n)
    basis[5, 2 * BLOCK + 3] = 2.0
    ptr, starts, values = sparse_blocks(basis)
    assert values.shape == (len(starts), BLOCK) and ptr[-1] == len(starts)
    assert ((starts % BLOCK == 0) | (starts == n - BLOCK)).all()
    kept = basis.copy()
    kept[3, 4] = 0.0
    mean = rng.normal(size=n).astype(np.float32)
    coeffs = rng.normal(size=(3, k)).astype(np.float32)
    coeffs[1, 4] = 0.0
    out = np.empty((3, n), np.float32)
    blend(mean, ptr, starts, values, coeffs, out)
    expect = mean[None].astype(np.float64) + coeffs.astype(np.float64) @ kept.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(out, expect, rtol=0, atol=2e-5)


@pytest.mark.parametrize("size", [112, 40])
def test_per_render_feature_flags_change_no_pixel(size):
    """``shading.feature_reach`` clears a triangle's feature flag where this render cannot paint the
    feature there; rendering with the static flags alone must give the same bytes, also for
    identities and expressions at the extremes (thick or arched brows, full lips, wide-open or
    closed eyes, open mouths) and at a small size, where a pixel spans more of the face."""
    import dataclasses

    fast = MorphableBackend(image_size=size)
    slow = MorphableBackend(image_size=size)
    ptr, tris, box = fast.model.features
    assert ptr[-1] > 0 and len(tris) == ptr[-1] and box.shape[0] == len(tris)
    slow.model = dataclasses.replace(slow.model, features=(np.zeros_like(ptr), tris[:0], box[:0]))
    recs = Sampler(SamplingConfig(), 64, seed=5).batch([(c, 0) for c in range(64)]).coeffs
    rng = np.random.default_rng(0)
    albedo, expr = layout.SLICES["albedo"].start, layout.SLICES["expression"].start
    for k in (11, 26, 27, 10, 23):  # brow thickness and arch, lip shape, brow density, lashes
        recs[:, albedo + k] = rng.choice([-3.5, -2.0, 0.0, 2.0, 3.5], len(recs))
    for k in (1, 2, 4, 5, 6, 15, 17, 21):  # jaw, brow raise, eye closing, blink, lips, squint
        recs[:, expr + k] = rng.choice([-1.5, 0.0, 1.0, 2.5], len(recs))
    a, b = fast.render(recs).images, slow.render(recs).images
    assert np.array_equal(a, b), f"{(a != b).any(axis=-1).sum()} pixels differ"


def _params(rec):
    from synthface.generator.morphable.render import N_PARAMS, appearance

    P = np.zeros(N_PARAMS)
    appearance(np.asarray(rec, np.float64), P)
    return P


def test_identity_traits_come_from_the_identity_record_alone(backend):
    """Hair, facial hair, glasses, skin marks, wrinkles, make-up, brows: all parts of the identity
    record. Two images of one identity (other expression, pose, lighting, noise) get the same
    identity parameters; the same seed gives the same people, pixel for pixel."""
    s1 = Sampler(SamplingConfig(mixup="off"), 12, seed=3)
    s2 = Sampler(SamplingConfig(mixup="off"), 12, seed=3)
    pairs = [(c, k) for c in range(12) for k in range(3)]
    r1, r2 = s1.batch(pairs).coeffs, s2.batch(pairs).coeffs
    assert np.array_equal(backend.render(r1).images, backend.render(r2).images)
    for c in range(12):
        p0, p1, p2 = (_params(r1[3 * c + k]) for k in range(3))
        assert np.array_equal(p0, p1) and np.array_equal(p0, p2)


def test_identity_traits_vary_between_identities():
    """Each trait occurs, in a share of identities near that of real people, and no two of 300
    identities share all of their discrete traits and colours."""
    from synthface.generator.morphable import shading as sh

    recs = Sampler(SamplingConfig(mixup="off"), 300, seed=0).batch([(c, 0) for c in range(300)]).coeffs
    P = np.stack([_params(r) for r in recs])
    share = lambda x: float((x > 0.5).mean())
    assert 0.35 < share(P[:, sh.P_SEX] + 0.5) < 0.65  # men and women
    assert 0.15 < share(P[:, sh.P_GLASSES]) < 0.45
    assert 0.05 < share(P[:, sh.P_FULL_BEARD] + P[:, sh.P_MOUSTACHE] + P[:, sh.P_GOATEE]) < 0.4
    assert 0.1 < share(P[:, sh.P_LONG_HAIR]) < 0.6
    assert 0.02 < share(P[:, sh.P_CURL]) < 0.4
    assert 0.1 < share(P[:, sh.P_WRINKLE_NASOLABIAL]) < 0.6
    assert 0.05 < share(P[:, sh.P_FRECKLES] + P[:, sh.P_MOLE] + P[:, sh.P_BLEMISH]) < 0.7
    keys = np.round(P[:, [sh.P_SEX, sh.P_GLASSES, sh.P_LONG_HAIR, sh.P_FULL_BEARD, 17, 18, 19, 14, 15, 16]], 2)
    assert len({tuple(k) for k in keys}) == len(keys)


def test_glasses_and_hats_switch_with_the_image_noise_only(backend):
    """A wearer takes the glasses off in some images, and some images have a hat: both are functions
    of the image's noise seed, so a record still renders to the same pixels every time."""
    from synthface.generator.morphable.render import N_PARAMS, image_switches
    from synthface.generator.morphable import shading as sh

    on = off = hat = 0
    for seed in range(2000):
        P = np.zeros(N_PARAMS)
        P[sh.P_GLASSES] = 1.0
        image_switches(seed, P)
        Q = np.zeros(N_PARAMS)
        Q[sh.P_GLASSES] = 1.0
        image_switches(seed, Q)
        assert np.array_equal(P, Q)
        on += P[sh.P_GLASSES] == 1.0
        off += P[sh.P_GLASSES] == 0.0
        hat += P[sh.P_HAT] == 1.0
    assert 0.1 < off / 2000 < 0.3 and on + off == 2000
    assert 0.04 < hat / 2000 < 0.12
