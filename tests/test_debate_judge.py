"""The debate judge (marl.debate.judge) on a synthetic problem: the clinician's decision is a smooth
function of 2 of 10 features, so a judge that sees every feature ranks it above a random
alternative on held-out states almost always, and one that sees 3 random features does better than
chance but worse; plus the preference sampler, the judge protocol and checkpoints."""

import numpy as np
import pytest
import torch

from equilibria.marl.debate.judge import (
    JudgeConfig,
    epoch_order,
    grid_neighbours,
    held_out_accuracy,
    inverse_frequency_weights,
    load_judge,
    preference_dataset,
    random_masks,
    save_judge,
    train_judge,
    weighted_standardisation,
)

S, F, A = 200, 10, 25


def synthetic(seed: int = 0, beta: float = 2.0):
    """Features [S, F] (shifted and scaled, so standardisation matters), a clinician whose dose bins
    (iv, vaso) centre on 2 + 1.6 * (feature 0, feature 1) with a softmax of -beta * squared
    distance on the 5 x 5 grid, and uneven state weights."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(S, F))
    grid = np.arange(5)
    c_iv, c_vaso = 2 + 1.6 * z[:, :1], 2 + 1.6 * z[:, 1:2]
    dist = (grid[None, :, None] - c_iv[:, :, None]) ** 2 + (grid[None, None, :] - c_vaso[:, :, None]) ** 2
    logits = -beta * dist.reshape(S, A)
    pi = np.exp(logits - logits.max(1, keepdims=True))
    pi /= pi.sum(1, keepdims=True)
    weights = rng.uniform(0.5, 1.5, size=S)
    return z * rng.uniform(1, 10, size=F) + 3, pi, weights


CONFIG = JudgeConfig(preferences=4000, epochs=8, eval_preferences=4000)


@pytest.fixture(scope="module")
def judges():
    x, pi, w = synthetic()
    partial = train_judge(x, pi, w, CONFIG.replace(num_arguments=3), seed=0)
    full = train_judge(x, pi, w, CONFIG.replace(num_arguments=None), seed=0)
    return x, pi, w, partial, full


def test_full_judge_beats_partial_beats_chance(judges):
    x, pi, w, partial, full = judges
    print(f"held-out accuracy: full {full.held_out_accuracy:.3f}, partial (3 of {F}) {partial.held_out_accuracy:.3f}; "
          f"train: {full.train_accuracy:.3f}, {partial.train_accuracy:.3f}")
    assert full.held_out_accuracy > 0.85
    assert 0.55 < partial.held_out_accuracy <= full.held_out_accuracy
    # the same split for both (seeded), disjoint, covering every state, 80 / 20
    np.testing.assert_array_equal(partial.held_out_states, full.held_out_states)
    assert len(full.held_out_states) == 40 and len(full.train_states) == 160
    assert np.union1d(full.train_states, full.held_out_states).tolist() == list(range(S))
    # the partial judge, shown every feature (an evidence pattern it never saw), still does better
    acc = held_out_accuracy(partial, x, pi, w, num_arguments=None, size=4000, seed=5)
    assert acc > partial.held_out_accuracy


def test_loss_decreases(judges):
    *_, partial, full = judges
    for judge in (partial, full):
        assert len(judge.losses) == CONFIG.epochs
        assert judge.losses[-1] < judge.losses[0] - 0.1
    assert full.losses[-1] < partial.losses[-1]  # more evidence, better fit


def test_judge_protocol(judges):
    x, pi, w, partial, _ = judges
    rng = np.random.default_rng(1)
    n = 70_000  # more than one chunk
    states = rng.integers(0, S, size=n)
    mask = random_masks(n, F, 6, rng)
    decisions = rng.integers(0, A, size=n)
    scores = partial(x[states], mask, decisions)
    assert scores.shape == (n,) and scores.dtype == np.float32 and np.isfinite(scores).all()
    np.testing.assert_allclose(partial(x[states[-5:]], mask[-5:], decisions[-5:]), scores[-5:], rtol=1e-5, atol=1e-5)
    hidden = np.where(mask, x[states], np.nan)  # unrevealed values are ignored, whatever they are
    np.testing.assert_array_equal(partial(hidden[:1000], mask[:1000], decisions[:1000]), scores[:1000])
    assert partial(np.zeros((0, F)), np.zeros((0, F), bool), np.zeros(0, np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="mask"):
        partial(x[:3], np.ones((3, F)), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="decisions"):
        partial(x[:3], np.ones((3, F), bool), np.full(3, A))


def test_save_load_round_trip(judges, tmp_path):
    x, *_, partial, full = judges
    mask = random_masks(S, F, 3, np.random.default_rng(2))
    decisions = np.arange(S) % A
    for judge in (partial, full):
        path = tmp_path / "judge.pt"
        save_judge(judge, path)
        torch.load(path, weights_only=True)  # plain tensors and numbers
        back = load_judge(path)
        np.testing.assert_array_equal(back(x, mask, decisions), judge(x, mask, decisions))
        assert back.config == judge.config and back.losses == judge.losses
        assert back.held_out_accuracy == judge.held_out_accuracy
        np.testing.assert_array_equal(back.held_out_states, judge.held_out_states)
    bad = tmp_path / "bad.pt"
    for content in (b"", b"not a checkpoint", path.read_bytes()[:200]):
        bad.write_bytes(content)
        with pytest.raises(ValueError, match="bad.pt") as err:
            load_judge(bad)
        assert "\n" not in str(err.value)
    torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="bad.pt: is not a judge checkpoint"):
        load_judge(bad)
    with pytest.raises(ValueError, match="missing.pt"):
        load_judge(tmp_path / "missing.pt")


def test_inverse_frequency_sampling():
    a_pref = np.array([0] * 900 + [1] * 90 + [7] * 10)
    p = inverse_frequency_weights(a_pref, A)
    per_action = np.bincount(a_pref, weights=p, minlength=A)
    np.testing.assert_allclose(per_action[[0, 1, 7]], 1 / 3)
    rng = np.random.default_rng(0)
    drawn = np.concatenate([a_pref[epoch_order(a_pref, A, True, rng)] for _ in range(20)])
    freq = np.bincount(drawn, minlength=A) / len(drawn)
    np.testing.assert_allclose(freq[[0, 1, 7]], 1 / 3, atol=0.02)  # unweighted: 0.9, 0.09, 0.01
    order = epoch_order(a_pref, A, False, rng)
    assert sorted(order) == list(range(len(a_pref)))


def test_offset_alternative_is_a_grid_neighbour():
    x, pi, w = synthetic()
    data = preference_dataset(x, pi, w, 5000, "offset", seed=0)
    d_iv = np.abs(data["a_pref"] // 5 - data["a_alt"] // 5)
    d_vaso = np.abs(data["a_pref"] % 5 - data["a_alt"] % 5)
    assert ((d_iv + d_vaso) == 1).all()
    centre = data["a_alt"][data["a_pref"] == 12]  # (2, 2): all four neighbours, evenly
    assert sorted(set(centre.tolist())) == [7, 11, 13, 17]
    table, counts = grid_neighbours(A)
    assert counts[0] == 2 and counts[2] == 3 and counts[12] == 4
    diag = preference_dataset(x, pi, w, 5000, "offset", seed=0, diagonal=True)
    cheb = np.maximum(np.abs(diag["a_pref"] // 5 - diag["a_alt"] // 5), np.abs(diag["a_pref"] % 5 - diag["a_alt"] % 5))
    assert (cheb == 1).all() and len(set(diag["a_alt"][diag["a_pref"] == 12].tolist())) == 8
    with pytest.raises(ValueError, match="square"):
        preference_dataset(x, pi[:, :24], w, 10, "offset")


def test_preference_dataset_random_and_exhaustive():
    x, pi, w = synthetic()
    w = w.copy()
    w[:100] = 0.0  # never drawn
    data = preference_dataset(x, pi, w, 20_000, "random", seed=3)
    assert data["state"].min() >= 100
    np.testing.assert_array_equal(data["x"], x[data["state"]])
    assert (data["a_alt"] != data["a_pref"]).all()
    assert np.bincount(data["a_alt"], minlength=A).min() > 0
    # a_pref follows the clinician: its mean log-probability is close to the expected one
    logp = np.log(pi[data["state"], data["a_pref"]]).mean()
    expected = (w[:, None] / w.sum() * pi * np.log(pi)).sum()
    assert abs(logp - expected) < 0.05
    ex = preference_dataset(x, pi, w, 2 * (A - 1) + 5, "exhaustive", seed=3)
    assert len(ex["a_alt"]) == 2 * (A - 1) + 5
    first = ex["a_alt"][: A - 1]
    assert sorted(first.tolist() + [int(ex["a_pref"][0])]) == list(range(A))
    assert (ex["state"][: A - 1] == ex["state"][0]).all()


def test_masks_and_standardisation():
    rng = np.random.default_rng(0)
    m = random_masks(1000, F, 6, rng)
    assert (m.sum(1) == 6).all() and m.mean(0).min() > 0.5
    assert random_masks(3, F, None, rng).all()
    x, _, w = synthetic()
    mean, std = weighted_standardisation(x, w)
    z = (x - mean) / std
    np.testing.assert_allclose((w / w.sum()) @ z, 0, atol=1e-9)
    np.testing.assert_allclose((w / w.sum()) @ z**2, 1, atol=1e-9)


def test_config_and_determinism():
    c = JudgeConfig()
    assert (c.num_arguments, c.hidden, c.lr, c.batch_size, c.epochs, c.alternative) == (6, 256, 5e-4, 64, 100, "random")
    x, pi, w = synthetic()
    tiny = JudgeConfig(preferences=300, epochs=1, hidden=16, eval_preferences=200)
    with pytest.raises(ValueError, match="num_arguments"):
        train_judge(x, pi, w, tiny.replace(num_arguments=F + 1))
    before = torch.random.get_rng_state()
    a, b = train_judge(x, pi, w, tiny, seed=4), train_judge(x, pi, w, tiny, seed=4)
    assert torch.equal(before, torch.random.get_rng_state())  # the global torch RNG is left alone
    assert a.losses == b.losses and a.held_out_accuracy == b.held_out_accuracy
    steps = []
    train_judge(x, pi, w, tiny.replace(epochs=2), seed=4, progress=lambda done, text: steps.append(done))
    assert steps == [1, 2]
