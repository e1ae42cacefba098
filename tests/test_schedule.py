"""One schedule parser for identity mixup's phi and domain mixup's psi, each with its own words."""

from __future__ import annotations

import pytest

from synthface.errors import SynthError
from synthface.generator.sampler import DEFAULT_MIXUP, parse_mixup
from synthface.trainer.mixup import psi_schedule


@pytest.mark.parametrize("value, ratios", [
    ("0.5:1:3", (0.5, 0.75, 1.0)),
    ("0.2, 0.4", (0.2, 0.4)),
    ([0.3, 0.9], (0.3, 0.9)),
    ({"low": 0, "high": 1, "steps": 3}, (0.0, 0.5, 1.0)),
    ("reference", tuple(round(0.05 * k, 6) for k in range(21))),
])
def test_phi_and_psi_read_the_same_forms(value, ratios):
    assert parse_mixup(value) == psi_schedule(value) == ratios


def test_presets_and_off():
    assert parse_mixup("paper") == DEFAULT_MIXUP and parse_mixup("off") is None
    assert psi_schedule("off") == (1.0,)
    with pytest.raises(SynthError, match="domain-mixup"):
        psi_schedule("paper")  # phi's preset is not a psi schedule


@pytest.mark.parametrize("value, phi_error, psi_error", [
    ("0.5,1.5", r"^mixup ratio 1.5 is outside \[0, 1\]: phi is the weight of the image's own identity$",
     r"^psi 1.5 is outside \[0, 1\]: psi is the weight of the synthetic image in the mix$"),
    ("0:1", r"^mixup schedule '0:1': use LOW:HIGH:STEPS, e.g. 0.6:1.0:11$",
     r"^domain-mixup \(psi\) schedule '0:1': use LOW:HIGH:STEPS, e.g. 0:1:21$"),
    ("", r"^mixup schedule is empty", r"^domain-mixup \(psi\) schedule is empty"),
])
def test_each_kind_words_its_own_errors(value, phi_error, psi_error):
    with pytest.raises(SynthError, match=phi_error):
        parse_mixup(value)
    with pytest.raises(SynthError, match=psi_error):
        psi_schedule(value)
