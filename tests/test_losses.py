"""The margin head against hand-computed logits: plain ArcFace at phi = psi = 1, and soft weights."""

from __future__ import annotations

import math

import pytest
import torch

from synthface.trainer.losses import MarginSoftmax
from synthface.trainer.mixup import DomainMixer, psi_schedule

S, M = 64.0, 0.5
# Class centres at angles 0, 60, 90 and 180 degrees in the plane; the embedding at 20 degrees.
ANGLES = [0.0, 60.0, 90.0, 180.0]
EMB_ANGLE = 20.0


def head(loss="arcface", m=None) -> MarginSoftmax:
    h = MarginSoftmax(2, len(ANGLES), loss=loss, s=S, m=m)
    with torch.no_grad():
        h.weight.copy_(torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in ANGLES]) * 3.0)
    return h


def embedding() -> torch.Tensor:
    a = math.radians(EMB_ANGLE)
    return torch.tensor([[2.0 * math.cos(a), 2.0 * math.sin(a)]])


def hand_ce(weights: dict[int, float], target: int, margin=lambda t: math.cos(t + M)) -> float:
    """-log softmax of class ``target`` over logits s * cos(theta_c), where each class c in ``weights``
    gets its margin in proportion to its weight w: s * (w * margin(theta_c) + (1 - w) * cos(theta_c))."""
    logits = []
    for c, a in enumerate(ANGLES):
        theta = math.radians(abs(a - EMB_ANGLE))
        w = weights.get(c, 0.0)
        logits.append(S * (w * margin(theta) + (1 - w) * math.cos(theta)))
    top = max(logits)
    lse = top + math.log(sum(math.exp(z - top) for z in logits))
    return lse - logits[target]


def reference_logits(e, h, soft: list[tuple[int, float]]) -> torch.Tensor:
    """The reference implementation's mixing: a weighted sum of single-label ArcFace outputs."""
    out = 0
    for c, w in soft:
        single = h.logits(e, torch.nn.functional.one_hot(torch.tensor([c]), len(ANGLES)).float())
        out = out + w * single
    return out


def test_phi_one_psi_one_is_plain_arcface():
    h, e = head(), embedding()
    got = h(e, torch.tensor([[1]]), torch.tensor([[1.0]])).item()
    assert got == pytest.approx(hand_ce({1: 1.0}, 1), rel=1e-5)
    # Padding entries (weight 0) neither add loss nor a margin.
    padded = h(e, torch.tensor([[1, 2]]), torch.tensor([[1.0, 0.0]])).item()
    assert padded == pytest.approx(got, rel=1e-6)
    # Same through the domain-mixup targets with psi = 1: the real class gets weight 0.
    idx, w = DomainMixer.targets(torch.tensor([[1, 2]]), torch.tensor([[1.0, 0.0]]), torch.tensor([3]), 1.0)
    assert h(e, idx, w).item() == pytest.approx(got, rel=1e-6)


def test_soft_identity_weights_are_honoured():
    h, e = head(), embedding()
    phi = 0.7
    got = h(e, torch.tensor([[0, 1]]), torch.tensor([[phi, 1 - phi]])).item()
    weights = {0: phi, 1: 1 - phi}
    want = phi * hand_ce(weights, 0) + (1 - phi) * hand_ce(weights, 1)
    assert got == pytest.approx(want, rel=1e-5)
    # Not the same as giving the dominant class its whole margin and the partner none ...
    wrong = phi * hand_ce({0: 1.0}, 0) + (1 - phi) * hand_ce({0: 1.0}, 1)
    assert abs(got - wrong) > 0.5
    # ... and the logits are the reference's weighted sum of single-label ArcFace outputs.
    targets = torch.tensor([[phi, 1 - phi, 0.0, 0.0]])
    assert torch.allclose(h.logits(e, targets), reference_logits(e, h, [(0, phi), (1, 1 - phi)]), atol=1e-4)


def test_domain_mixup_loss_is_the_reference_formula():
    h, e = head(), embedding()
    phi, psi = 0.8, 0.35
    idx, w = DomainMixer.targets(torch.tensor([[0, 2]]), torch.tensor([[phi, 1 - phi]]), torch.tensor([1]), psi)
    assert torch.allclose(w.sum(1), torch.ones(1))
    got = h(e, idx, w).item()
    weights = {0: psi * phi, 2: psi * (1 - phi), 1: 1 - psi}
    want = psi * (phi * hand_ce(weights, 0) + (1 - phi) * hand_ce(weights, 2)) + (1 - psi) * hand_ce(weights, 1)
    assert got == pytest.approx(want, rel=1e-5)
    mixed = reference_logits(e, h, [(0, psi * phi), (2, psi * (1 - phi)), (1, 1 - psi)])
    assert torch.allclose(h.logits(e, torch.tensor([[psi * phi, 1 - psi, psi * (1 - phi), 0.0]])), mixed, atol=1e-4)


def test_cosface_and_arcface_fallback_beyond_pi():
    e = embedding()
    got = head("cosface")(e, torch.tensor([[2]]), torch.tensor([[1.0]])).item()
    assert got == pytest.approx(hand_ce({2: 1.0}, 2, margin=lambda t: math.cos(t) - 0.35), rel=1e-5)
    # Class 3 is 160 degrees away: theta + m > pi, where ArcFace uses cos(theta) - m sin(m).
    got = head()(e, torch.tensor([[3]]), torch.tensor([[1.0]])).item()
    assert got == pytest.approx(hand_ce({3: 1.0}, 3, margin=lambda t: math.cos(t) - M * math.sin(M)), rel=1e-5)


def test_gradients_are_finite_at_the_poles():
    h = head()
    e = torch.tensor([[3.0, 0.0], [-3.0, 0.0]], requires_grad=True)  # exactly on class 0, and opposite
    loss = h(e, torch.tensor([[0], [0]]), torch.tensor([[1.0], [1.0]]))
    loss.backward()
    assert torch.isfinite(e.grad).all() and torch.isfinite(h.weight.grad).all()


def test_psi_schedules():
    assert psi_schedule("reference") == tuple(round(0.05 * k, 6) for k in range(21))
    assert psi_schedule("off") == (1.0,)
    assert psi_schedule("0.5:1:3") == (0.5, 0.75, 1.0)
    mixer = DomainMixer(psi_schedule("0.2,0.4"), seed=1)
    draws = {mixer.draw() for _ in range(50)}
    assert draws == {0.2, 0.4}
    syn, real = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert torch.allclose(DomainMixer.mix(syn, real, 0.25), torch.full_like(syn, 0.25))
