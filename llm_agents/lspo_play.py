"""LSPO agents at play, and the evaluation of the loop's iterations (llm_agents.lspo).

Games run on games.werewolf_latent's engine with concrete decisions, so agents with different
latent spaces meet: a speech is an utterance (from the speaker's bank, generated in advance
and scored once by the listener model), whose vote shifts move the public suspicion.

- `LSPOPlayer` (iteration i): picks a latent and its target by the iteration's CFR policy and
  says one of that latent's utterances; votes and acts at night by the policy.
- `PlainPlayer`: the language model without LSPO: says one of the base model's utterances for
  its role about a random player, votes as the listener model does (P(vote q) proportional to
  exp(suspicion of q)), and picks night targets at random.
Win rates carry 95% Wilson intervals; `role-adjusted` is the mean of the two sides' win rates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from equilibria.games.core import CHANCE, SIMULTANEOUS, sample_chance
from equilibria.games.werewolf import SEER, WEREWOLF, WerewolfRules
from equilibria.games.werewolf_latent import SPEECH, LatentSpec, LatentWerewolfState, WerewolfLatent
from equilibria.llm_agents.lspo import read_json
from equilibria.solvers.ratings import wilson
from equilibria.solvers.state_mccfr import TablePolicy

TEAMS = ("werewolves", "villagers")


class LSPOPlayer:
    def __init__(self, spec: LatentSpec, policy: TablePolicy, bank: dict[str, list[list[dict[str, Any]]]],
                 name: str = "lspo"):
        self.spec, self.policy, self.bank, self.name = spec, policy, bank, name

    def _pick(self, state: LatentWerewolfState, seat: int, legal: list[int], rng: np.random.Generator) -> int:
        p = self.policy.probabilities(state.information_state_key(seat), legal)
        return legal[int(rng.choice(len(legal), p=p / p.sum()))]

    def speak(self, state: LatentWerewolfState, seat: int, rng: np.random.Generator) -> None:
        role, opts = state.base.roles[seat], state.options(seat)
        legal = [SPEECH + 2 * j + t for j in range(len(self.spec.latents[role])) for t in range(len(opts))]
        j, t = divmod(self._pick(state, seat, legal, rng) - SPEECH, 2)
        said = self.bank[role][j][int(rng.integers(len(self.bank[role][j])))]
        state.speak(said["masked"], opts[t], *said["shift"])

    def choose(self, state: LatentWerewolfState, seat: int, rng: np.random.Generator) -> int | None:
        opts = state.options(seat)
        return opts[self._pick(state, seat, list(range(len(opts))), rng)]


class PlainPlayer:
    def __init__(self, utterances: dict[str, list[dict[str, Any]]], name: str = "plain"):
        self.utterances, self.name = utterances, name

    def speak(self, state: LatentWerewolfState, seat: int, rng: np.random.Generator) -> None:
        pool = self.utterances[state.base.roles[seat]]
        said = pool[int(rng.integers(len(pool)))]
        others = _eligible(state, seat)
        state.speak(said["masked"], others[int(rng.integers(len(others)))] if others else None, *said["shift"])

    def choose(self, state: LatentWerewolfState, seat: int, rng: np.random.Generator) -> int | None:
        b = state.base
        if state.current_player() == SIMULTANEOUS:
            found = state.known(seat)[0] if b.roles[seat] == SEER else []
            if found:
                return found[0]
            others = _eligible(state, seat)
            if not others:
                return None
            w = np.exp(state.suspicion[others] - state.suspicion[others].max())
            return others[int(rng.choice(len(others), p=w / w.sum()))]
        legal = b.legal_actions(seat)
        return int(legal[int(rng.integers(len(legal)))])


def _eligible(state: LatentWerewolfState, seat: int) -> list[int]:
    """Living others a player would name or vote against: a werewolf spares its teammates."""
    b = state.base
    wolf = b.roles[seat] == WEREWOLF
    return [q for q in b.living() if q != seat and not (wolf and b.roles[q] == WEREWOLF)]


def play(wolves: Any, villagers: Any, rng: np.random.Generator, max_rounds: int = 4, decay: float = 0.5) -> str:
    """One game: 'werewolves', 'villagers' or 'draw'."""
    game = WerewolfLatent(WerewolfRules(max_rounds=max_rounds), LatentSpec.neutral(), decay)
    state = game.new_initial_state()
    n = game.rules.num_players
    while not state.is_terminal():
        cur = state.current_player()
        if cur == CHANCE:
            state.apply_action(sample_chance(state, rng))
            continue

        def agent(seat: int) -> Any:
            return wolves if state.base.roles[seat] == WEREWOLF else villagers

        if cur == SIMULTANEOUS:
            state.vote_seats([agent(p).choose(state, p, rng) if state.base.alive[p] else None for p in range(n)])
        elif state.base.phase == "day_speech":
            agent(cur).speak(state, cur, rng)
        else:
            state.act_seat(agent(cur).choose(state, cur, rng))
    return str(state.base.winner)


def win_rates(a: Any, b: Any, episodes: int, seed: int, max_rounds: int = 4,
              decay: float = 0.5) -> dict[str, dict[str, float]]:
    """`a`'s win rate as the werewolves (against `b` as the village) and as the villagers, with
    95% Wilson intervals, and the role-adjusted mean of the two."""
    out: dict[str, dict[str, float]] = {}
    for side in TEAMS:
        rng = np.random.default_rng([seed, TEAMS.index(side)])
        wolves, village = (a, b) if side == "werewolves" else (b, a)
        wins = sum(play(wolves, village, rng, max_rounds, decay) == side for _ in range(episodes))
        rate, lo, hi = wilson(wins, episodes)
        out[side] = {"rate": rate, "lo": lo, "hi": hi, "games": episodes}
    mean = (out["werewolves"]["rate"] + out["villagers"]["rate"]) / 2
    # the mean of two independent rates: half the root-sum-square of their half-widths
    half = 0.5 * np.hypot(*[(out[s]["hi"] - out[s]["lo"]) / 2 for s in TEAMS])
    out["adjusted"] = {"rate": mean, "lo": max(0.0, mean - half), "hi": min(1.0, mean + half), "games": 2 * episodes}
    return out


def load_player(run: Path, i: int) -> LSPOPlayer:
    lat = read_json(run / f"iter_{i}" / "latents.json")
    spec = LatentSpec.from_dict(lat["spec"])
    bank = {role: [[lat["bank"][c] for c in m] for m in ms] for role, ms in lat["members"].items()}
    policy = TablePolicy.from_dict(read_json(run / f"iter_{i}" / "solve.json")["policy"])
    return LSPOPlayer(spec, policy, bank, f"LSPO iteration {i}")


def load_plain(run: Path) -> PlainPlayer:
    lat = read_json(run / "iter_0" / "latents.json")
    pools: dict[str, list[dict[str, Any]]] = {}
    for said in lat["bank"]:
        pools.setdefault(said["role"], []).append(said)
    return PlainPlayer(pools, "plain model")


def evaluate_run(run: Path, iterations: int, games: int, seed: int, max_rounds: int = 4,
                 decay: float = 0.5) -> dict[str, Any]:
    """Every iteration against iteration 0 and against the plain model, sides swapped, plus the
    plain model against itself (each side's base rate)."""
    players = [load_player(run, i) for i in range(iterations)]
    plain = load_plain(run)
    return {"games": games,
            "plain_self": win_rates(plain, plain, games, seed, max_rounds, decay),
            "vs_iter0": [win_rates(p, players[0], games, seed + 1, max_rounds, decay) for p in players],
            "vs_plain": [win_rates(p, plain, games, seed + 2, max_rounds, decay) for p in players]}


def latent_measures(run: Path, iterations: int) -> list[dict[str, Any]]:
    """Per iteration: latents per role and in all, mean sharpness (member-centroid cosine), the
    abstract game's size and best-response gains, the DPO pairs, and the latent values."""
    out = []
    for i in range(iterations):
        d = run / f"iter_{i}"
        lat, solve = read_json(d / "latents.json"), read_json(d / "solve.json")
        clusters = lat["clusters"]
        dpo = read_json(d / "model" / "dpo.json") if (d / "model" / "dpo.json").exists() else {}
        out.append({"iteration": i, "latents": {r: c["latents"] for r, c in clusters.items()},
                    "total_latents": sum(c["latents"] for c in clusters.values()),
                    "sharpness": {r: c["sharpness"] for r, c in clusters.items()},
                    "mean_sharpness": float(np.mean([c["sharpness"] for c in clusters.values()])),
                    "infosets": solve["infosets"], "cfr_iterations": solve["iterations"],
                    "best_response": solve["best_response"], "values": read_json(d / "values.json"),
                    "labels": {r: [x["label"] for x in xs] for r, xs in lat["spec"].items()},
                    "shifts": {r: [(x["speaker_shift"], x["target_shift"]) for x in xs] for r, xs in lat["spec"].items()},
                    "dpo": dpo})
    return out


__all__ = ["LSPOPlayer", "PlainPlayer", "evaluate_run", "latent_measures", "load_plain", "load_player", "play",
           "win_rates"]
