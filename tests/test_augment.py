"""Training-time augmentation: presets and validation, what each operation does, determinism, and
that the loader applies it to synthetic images only (unless asked) without touching cached arrays."""

from __future__ import annotations

import numpy as np
import pytest
from test_trainer_shards import class_pattern, write_dataset, write_real_folder

from synthface.errors import SynthError
from synthface.trainer import augment, data
from synthface.trainer.augment import AugmentConfig, Augmenter, parse_augment


def face(seed: int = 0) -> np.ndarray:
    """A 112x112 test image with structure at several scales (so blur and JPEG change it)."""
    img = class_pattern(seed).astype(np.float32)
    img += np.random.default_rng(seed).normal(0, 20, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def only(name: str, **extra) -> AugmentConfig:
    return parse_augment({"preset": "off", name: 1.0, **extra})


def test_presets_and_mappings_parse_and_bad_values_are_one_line_errors():
    assert parse_augment("medium") == AugmentConfig()
    assert parse_augment("default") == parse_augment("light") == parse_augment(True)
    assert not parse_augment("off").active and not parse_augment(None).active and not parse_augment(False).active
    assert parse_augment({"preset": "strong", "p_grey": 0.5}).p_grey == 0.5
    assert parse_augment({"preset": "strong"}).rotate == 15.0
    for bad, message in [("wild", "unknown augmentation"), ({"p_blurr": 0.2}, "unknown augmentation option"),
                         ({"p_blur": 1.5}, "probability"), ({"scale": [1.2, 0.9]}, "low <= high"),
                         ({"noise": "loud"}, "numeric"), ({"jpeg_quality": [0, 90]}, "jpeg_quality"),
                         ({"rotate": float("nan")}, "finite"), (3, "preset name")]:
        with pytest.raises(SynthError, match=message) as exc:
            parse_augment(bad)
        assert "\n" not in str(exc.value)


def test_off_returns_the_image_itself_and_each_operation_changes_it():
    img = face()
    rng = np.random.default_rng(0)
    assert Augmenter(parse_augment("off"))(img, rng) is img
    for name in ("p_warp", "p_blur", "p_downscale", "p_colour", "p_grey", "p_noise", "p_jpeg", "p_erase"):
        before = img.copy()
        out = Augmenter(only(name))(img, np.random.default_rng(1))
        assert out.shape == img.shape and out.dtype == np.uint8, name
        assert np.abs(out.astype(int) - img).mean() > 0.5, name  # it did something
        assert np.array_equal(img, before), f"{name} wrote into its input"
    grey = Augmenter(only("p_grey"))(img, rng)
    assert np.abs(grey[..., 0].astype(int) - grey[..., 2]).max() <= 1


def test_a_warp_without_zoom_turn_or_shift_is_exact_and_blur_kernels_keep_brightness():
    img = face(1)
    still = parse_augment({"preset": "off", "p_warp": 1.0, "scale": [1.0, 1.0], "rotate": 0.0, "shift": 0.0})
    assert np.array_equal(Augmenter(still)(img, np.random.default_rng(0)), img)
    shifted = Augmenter(parse_augment({"preset": "off", "p_warp": 1.0, "scale": [1.0, 1.0], "rotate": 0.0}))(
        img, np.random.default_rng(0))
    assert (shifted == 0).all(axis=2).any()  # black where the warp leaves the image
    for length in (2.0, 3.5, 7.0):
        for angle in (0.0, 0.7, 1.6, 3.0):
            k = augment._motion_kernel(length, angle)
            assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and abs(k.sum() - 1.0) < 1e-5
    flat = np.full((112, 112, 3), 128, np.uint8)
    assert np.array_equal(Augmenter(only("p_blur"))(flat, np.random.default_rng(2)), flat)


def test_colour_matrix_is_the_identity_at_zero_strength_and_keeps_grey_grey():
    cfg = parse_augment({"preset": "off", "p_colour": 1.0, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0,
                         "white_balance": 0.0})
    img = face(2)
    assert np.array_equal(Augmenter(cfg)(img, np.random.default_rng(3)), img)
    grey_img = np.repeat(img[..., :1], 3, axis=2)
    out = Augmenter(parse_augment({"preset": "off", "p_colour": 1.0, "white_balance": 0.0}))(
        grey_img, np.random.default_rng(4))
    assert np.abs(out[..., 0].astype(int) - out[..., 1]).max() <= 1  # saturation and contrast keep grey grey


def test_same_generator_state_same_images_and_blur_scales_with_size():
    cfg = parse_augment("strong")
    imgs = [face(k) for k in range(20)]
    a = [Augmenter(cfg, seed=1)(im, np.random.default_rng(9)) for im in imgs]
    b = [Augmenter(cfg, seed=1)(im, np.random.default_rng(9)) for im in imgs]
    c = [Augmenter(cfg, seed=1)(im, np.random.default_rng(10)) for im in imgs]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    small = face(3)[::4, ::4].copy()  # 28x28
    out = Augmenter(only("p_blur"))(small, np.random.default_rng(5))
    assert out.shape == small.shape


def test_the_loader_augments_synthetic_images_reproducibly_and_real_ones_only_when_asked(tmp_path):
    syn = data.resolve_shards(write_dataset(tmp_path / "syn", classes=4, per_class=4, shards=2))
    real = data.resolve_real(write_real_folder(tmp_path / "real", ids=2, per_id=4))

    def first(**kw):
        stream = data.TrainStream(syn, real, batch_size=8, image_size=(112, 112), seed=2, shuffle_buffer=1,
                                  flip=False, real_offset=4, **kw)
        return next(iter(stream))

    plain = first()
    aug = first(augment=parse_augment("strong"))
    again = first(augment=parse_augment("strong"))
    assert "error" not in aug, aug.get("error")
    assert np.array_equal(aug["syn"], again["syn"]) and np.array_equal(aug["syn_idx"], plain["syn_idx"])
    assert not np.array_equal(aug["syn"], plain["syn"])
    assert np.array_equal(aug["real"], plain["real"])  # real images are left alone by default
    both = first(augment=parse_augment("strong"), augment_real=True)
    assert not np.array_equal(both["real"], plain["real"])
    # Real images are cached decoded; augmenting them must not change the cached arrays.
    stream = data.TrainStream(None, real, batch_size=8, image_size=(112, 112), seed=2, flip=False,
                              augment=parse_augment({"preset": "off", "p_erase": 1.0}), augment_real=True)
    it = iter(data.TrainStream(None, real, batch_size=8, image_size=(112, 112), seed=2, flip=False))
    reference = [next(it)["real"] for _ in range(3)]
    it = iter(stream)
    erased = [next(it)["real"] for _ in range(3)]
    for ref, out in zip(reference, erased):
        changed = (ref != out).any(axis=(1, 2, 3))
        assert changed.all()  # every image erased, and each pass starts again from clean cached images
        assert ((ref != out).any(axis=3).mean(axis=(1, 2)) < 0.2).all()
