"""LSPO (Xu et al., ICML 2025): latent space policy optimisation for language agents in Werewolf.

Each iteration i, with language model M_i (M_0: the base model):
1. contexts   - speech decisions sampled from the abstract game under the previous iteration's
                policy (uniform at i = 0), rendered as the Werewolf prompt the speaker would see;
2. candidates - M_i writes `candidates` utterances per context, prompted for a strategy of its own
                (the paper: N strategically distinct candidates, one drawn at random in play);
3. latents    - utterances are embedded (all-MiniLM-L6-v2, llm_agents.embedder) with player
                names masked and clustered per role (llm_agents.lspo_latents.cluster); each
                cluster is a latent strategy labelled by its medoid; the listener model (the
                base model as a villager listener, scored once per utterance) gives each
                utterance and each latent its vote shifts;
4. solve      - the abstract game (games.werewolf_latent) on these latents is solved by
                outcome-sampling MCCFR over States (solvers.state_mccfr), checkpointed as it goes;
                its best-response gain is measured for each team;
5. values     - each latent's value to its speaker under the solved policy (Monte Carlo, the
                latent forced at one speech);
6. dpo        - M_i is fine-tuned by DPO (reference: M_i itself) on pairs (an utterance of the
                context's highest-value latent, one of its lowest-value latent) -> M_{i+1}.
Every stage writes its result atomically under `iter_<i>/`; a run that is killed resumes at
the first missing stage (and within `solve` at its last checkpoint).

The LSPO agent of iteration i speaks an utterance of the latent its policy picks (drawn from
that iteration's utterances of the latent, so already checked by the embedder), and votes and
acts at night by the abstract policy. `lspo_play.evaluate_run` plays it against iteration 0 and against the
plain language-model agent (its own utterances, votes by the listener model, random night
actions), with sides swapped.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from equilibria.common.config import Config, PositiveInt, Seed, count
from equilibria.common.files import atomic_write_bytes
from equilibria.games.core import CHANCE, SIMULTANEOUS, sample_action, sample_chance
from equilibria.games.werewolf import ROLES, WEREWOLF, WerewolfRules
from equilibria.games.werewolf_latent import SPEECH, LatentSpec, LatentWerewolfState, WerewolfLatent
from equilibria.solvers.state_mccfr import StateOutcomeMCCFR, TablePolicy

STAGES = ("contexts", "candidates", "latents", "solve", "values", "dpo")
DIVERSITY = ("Before you answer, pick a strategy of your own (accuse, defend, claim a role, question someone, "
             "stay vague...) and say only your words.")


class LSPOConfig(Config):
    """LSPO's loop; defaults sized for SmolLM2-135M on two CPU cores (about ten minutes an iteration)."""

    iterations: count(20) = 4
    """iterations of the loop (0 = the base model's latent space; DPO runs between iterations)"""
    contexts_per_role: count(1000) = 6
    """speech decisions sampled per role and iteration"""
    candidates: count(64) = 8
    """utterances the model writes per context (the paper's N candidates)"""
    max_new_tokens: count(512) = 40
    """length limit of an utterance, in tokens"""
    temperature: Annotated[float, Field(gt=0, le=5)] = 0.7
    """sampling temperature of the candidates (with top-p 0.9; at 1.0 a 135M model mostly rambles)"""
    k_max: count(32) = 8
    """most latent strategies per role"""
    tightness: Annotated[float, Field(gt=0, lt=1)] = 0.65
    """k grows until the members' mean cosine to their centroid reaches this (MiniLM puts any two
    Werewolf utterances near 0.6, so 0.6 leaves one latent per role)"""
    min_cluster: PositiveInt = 3
    """utterances a latent needs to be kept"""
    cfr_iterations: count(100_000_000) = 60_000
    """trajectories of outcome-sampling MCCFR on the abstract game"""
    epsilon: Annotated[float, Field(gt=0, le=1)] = 0.6
    """exploration of the updating player (OpenSpiel's outcome-sampling default)"""
    br_iterations: count(100_000_000) = 20_000
    """trajectories of each team's sampled best response (its gain over the policy is reported)"""
    value_episodes: count(1_000_000) = 300
    """games per latent when valuing latents"""
    eval_episodes: count(1_000_000) = 2000
    """games to estimate values of the solved and best-response policies"""
    dpo_beta: Annotated[float, Field(gt=0)] = 0.1
    """DPO's beta (Rafailov et al. 2023, Eq. 7)"""
    dpo_lr: Annotated[float, Field(gt=0, le=1)] = 1e-6
    """Adam learning rate of the DPO fine-tune (WolfPlay's LSPO re-implementation; at 1e-5 the margin
    reached 17 nats and SmolLM2 collapsed to one utterance per role, one latent each)"""
    dpo_epochs: count(100) = 2
    """passes over the iteration's preference pairs"""
    max_rounds: count(100) = 4
    """days before a draw, in the abstract game and in evaluation"""
    decay: Annotated[float, Field(ge=0, le=1)] = 0.5
    """weight of a day's talk in the suspicion one day later"""
    seed: Seed = 0
    """seeds contexts, sampling, clustering, MCCFR and evaluation"""


# ----------------------------------------------------------------------------- files
def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({type(err).__name__}: {err}); delete it to redo its stage "
                         "(every later stage is redone with it)") from None


def _stage_file(run: Path, i: int, stage: str) -> Path:
    return run / f"iter_{i}" / ("model" if stage == "dpo" else f"{stage}.json")


def stage_done(run: Path, i: int, stage: str) -> bool:
    f = _stage_file(run, i, stage)
    return (f / "config.json").exists() if stage == "dpo" else f.exists()


# ----------------------------------------------------------------------------- the loop
class LSPO:
    """The loop over a run directory. `load_model()` returns (model, tokenizer) of the base model;
    `embedder` embeds texts ([N, d] unit rows)."""

    def __init__(self, config: LSPOConfig, run_dir: str | Path, load_model: Callable[[], tuple[Any, Any]],
                 embedder: Any, log: Callable[[str], None] = print):
        self.config, self.run, self.load_base, self.embedder, self.log = config, Path(run_dir), load_model, embedder, log
        self.run.mkdir(parents=True, exist_ok=True)
        self._models: dict[int, tuple[Any, Any]] = {}
        self.timings: dict[str, float] = {}

    # models ------------------------------------------------------------------
    def model(self, i: int) -> tuple[Any, Any]:
        """M_i: the base model at i = 0, else the model DPO wrote at the end of iteration i - 1."""
        if i not in self._models:
            if i == 0:
                self._models[0] = self.load_base()
            else:
                from equilibria.llm_agents.hf import load_causal_lm

                self._models[i] = load_causal_lm(_stage_file(self.run, i - 1, "dpo"))
            for j in [j for j in self._models if j not in (0, i)]:
                del self._models[j]  # keep the base (the listener) and the current one
        return self._models[i]

    def game(self, spec: LatentSpec) -> WerewolfLatent:
        return WerewolfLatent(WerewolfRules(max_rounds=self.config.max_rounds), spec, self.config.decay)

    def spec(self, i: int) -> LatentSpec:
        return LatentSpec.from_dict(read_json(_stage_file(self.run, i, "latents"))["spec"])

    def policy(self, i: int) -> TablePolicy:
        return TablePolicy.from_dict(read_json(_stage_file(self.run, i, "solve"))["policy"])

    def stages(self) -> list[tuple[int, str]]:
        """Every (iteration, stage) of the run, in order (no DPO after the last iteration)."""
        n = self.config.iterations
        return [(i, s) for i in range(n) for s in STAGES if not (s == "dpo" and i == n - 1)]

    def pending(self) -> list[tuple[int, str]]:
        return [(i, s) for i, s in self.stages() if not stage_done(self.run, i, s)]

    def run_stage(self, i: int, stage: str) -> None:
        """Run one stage; what any later stage made from the old result is removed first (it would
        be stale), and so is the evaluation."""
        stages = self.stages()
        for j, later in stages[stages.index((i, stage)) + 1:]:
            f = _stage_file(self.run, j, later)
            shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink(missing_ok=True)
            if later == "solve":
                (self.run / f"iter_{j}" / "solve.ckpt.json").unlink(missing_ok=True)
        (self.run / "evaluation.json").unlink(missing_ok=True)
        self.log(f"iteration {i}: {stage}")
        t0 = time.perf_counter()
        getattr(self, f"_{stage}")(i)
        self.timings[f"{i}/{stage}"] = time.perf_counter() - t0
        write_json(self.run / "timings.json", {**self._old_timings(), **self.timings})

    def run_all(self) -> None:
        for i, stage in self.pending():
            self.run_stage(i, stage)

    def _old_timings(self) -> dict[str, float]:
        f = self.run / "timings.json"
        return read_json(f) if f.exists() else {}

    # 1. contexts ---------------------------------------------------------------
    def _contexts(self, i: int) -> None:
        from equilibria.games import werewolf_text

        cfg = self.config
        if i == 0:
            game, policy = self.game(LatentSpec.neutral()), None
        else:
            game, policy = self.game(self.spec(i - 1)), self.policy(i - 1)
        rng = np.random.default_rng([cfg.seed, i, 1])
        found: dict[str, list[dict[str, Any]]] = {r: [] for r in ROLES}
        for _ in range(100_000):
            if all(len(v) >= cfg.contexts_per_role for v in found.values()):
                break
            state = game.new_initial_state()
            for s in _speech_states(state, policy, rng):
                seat = s.current_player()
                role = s.base.roles[seat]
                if len(found[role]) < cfg.contexts_per_role and rng.random() < 0.5:
                    obs = werewolf_text.observe(s.base, seat)
                    found[role].append({"role": role, "prompt": obs.system() + "\n\n" + obs.prompt() + " " + DIVERSITY})
        write_json(_stage_file(self.run, i, "contexts"), found)

    # 2. candidates -------------------------------------------------------------
    def _candidates(self, i: int) -> None:
        from equilibria.games.werewolf_text import parse_speech
        from equilibria.llm_agents.hf import sample_completions

        cfg = self.config
        model, tok = self.model(i)
        contexts = read_json(_stage_file(self.run, i, "contexts"))
        out = []
        for role in ROLES:
            for c, ctx in enumerate(contexts[role]):
                comps = sample_completions(model, tok, ctx["prompt"], cfg.candidates, cfg.max_new_tokens,
                                           temperature=cfg.temperature, top_p=0.9, seed=cfg.seed + 1000 * i + c)
                for comp in comps:
                    text = tok.decode(comp, skip_special_tokens=True)
                    said, _ = _speech(parse_speech, text)
                    out.append({"role": role, "context": c, "text": said, "ids": comp})
        write_json(_stage_file(self.run, i, "candidates"), out)

    # 3. latents ----------------------------------------------------------------
    def _latents(self, i: int) -> None:
        from equilibria.llm_agents.chat_agents import TransformersChat
        from equilibria.llm_agents.lspo_latents import cluster, jury_shifts, mask_players

        cfg = self.config
        cands = read_json(_stage_file(self.run, i, "candidates"))
        masked = [mask_players(c["text"]) for c in cands]
        # the listener model: the base model's vote shifts, scored once per distinct utterance
        cache_file = self.run / "jury.json"
        cache: dict[str, list[float]] = read_json(cache_file) if cache_file.exists() else {}
        todo = sorted({m for m in masked if m not in cache})
        if todo:
            base, tok = self.model(0)
            shifts = jury_shifts(TransformersChat(base, tok, "listener"), todo)
            cache.update({m: s.tolist() for m, s in zip(todo, shifts)})
            write_json(cache_file, cache)
        emb = self.embedder.embed(masked)
        spec, report, members = {}, {}, {}
        for r_i, role in enumerate(ROLES):
            idx = [j for j, c in enumerate(cands) if c["role"] == role]
            if not idx:
                raise ValueError(f"iteration {i}: no {role} utterances to cluster (raise contexts_per_role)")
            cl = cluster(emb[idx], cfg.k_max, cfg.tightness, cfg.min_cluster, seed=cfg.seed + 17 * i + r_i)
            latents = []
            members[role] = []
            for m, medoid in zip(cl["members"], cl["medoids"]):
                sh = np.array([cache[masked[idx[j]]] for j in m])
                latents.append({"label": masked[idx[medoid]], "speaker_shift": float(sh[:, 0].mean()),
                                "target_shift": float(sh[:, 1].mean())})
                members[role].append([idx[j] for j in m])
            spec[role] = latents
            report[role] = {"latents": cl["k"], "sharpness": cl["sharpness"], "utterances": len(idx),
                            "centroids": cl["centroids"].tolist()}
        write_json(_stage_file(self.run, i, "latents"),
                    {"spec": spec, "members": members, "clusters": report,
                     "bank": [{"role": c["role"], "context": c["context"], "masked": m, "shift": cache[m]}
                              for c, m in zip(cands, masked)]})

    # 4. solve ------------------------------------------------------------------
    def _solve(self, i: int) -> None:
        cfg = self.config
        game = self.game(self.spec(i))
        solver = StateOutcomeMCCFR(game, epsilon=cfg.epsilon, seed=cfg.seed + i)
        ckpt = self.run / f"iter_{i}" / "solve.ckpt.json"
        if ckpt.exists():
            solver.load_state_dict(read_json(ckpt))
        chunk = max(1, cfg.cfr_iterations // 10)
        while solver.iteration < cfg.cfr_iterations:
            solver.run(min(chunk, cfg.cfr_iterations - solver.iteration))
            write_json(ckpt, solver.state_dict())
        policy = solver.average_policy()
        gains = best_response_gains(game, policy, cfg.br_iterations, cfg.eval_episodes, cfg.seed + i)
        write_json(_stage_file(self.run, i, "solve"),
                    {"policy": policy.to_dict(), "infosets": len(solver.regret), "iterations": solver.iteration,
                     "best_response": gains})
        ckpt.unlink(missing_ok=True)

    # 5. values -----------------------------------------------------------------
    def _values(self, i: int) -> None:
        cfg = self.config
        game, policy = self.game(self.spec(i)), self.policy(i)
        rng = np.random.default_rng([cfg.seed, i, 5])
        values = {}
        for role in ROLES:
            k = len(game.spec.latents[role])
            values[role] = [forced_latent_value(game, policy, role, j, cfg.value_episodes, rng) for j in range(k)]
        write_json(_stage_file(self.run, i, "values"), values)

    # 6. DPO --------------------------------------------------------------------
    def _dpo(self, i: int) -> None:
        cfg = self.config
        latents = read_json(_stage_file(self.run, i, "latents"))
        values = read_json(_stage_file(self.run, i, "values"))
        cands = read_json(_stage_file(self.run, i, "candidates"))
        contexts = read_json(_stage_file(self.run, i, "contexts"))
        pairs = preference_pairs(cands, latents["members"], values)
        model, tok = self.model(i)
        from equilibria.llm_agents.hf import dpo_finetune

        self._models.pop(i, None)  # trained in place below: reload M_i from disk if it is needed again
        stats = dpo_finetune(model, tok, [(contexts[cands[w]["role"]][cands[w]["context"]]["prompt"],
                                           cands[w]["ids"], cands[lo]["ids"]) for w, lo in pairs],
                             beta=cfg.dpo_beta, lr=cfg.dpo_lr, epochs=cfg.dpo_epochs, seed=cfg.seed + i)
        target = _stage_file(self.run, i, "dpo")
        tmp = target.with_name("model.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json(tmp / "dpo.json", {"pairs": len(pairs), **stats})
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)


def _speech(parse: Any, text: str) -> tuple[str, str | None]:
    from equilibria.games.werewolf_text import FALLBACK_SPEECH

    class _Obs:
        max_speech_chars = 300

    said, err = parse(text, _Obs())
    return (said if said else FALLBACK_SPEECH), err


def _speech_states(state: LatentWerewolfState, policy: TablePolicy | None,
                   rng: np.random.Generator) -> list[LatentWerewolfState]:
    """Play one game (uniform where `policy` is None) and return a copy of the state at each speech."""
    out = []
    while not state.is_terminal():
        if state.base.phase == "day_speech" and state.current_player() >= 0:
            out.append(state.clone())
        _step(state, lambda s, p: policy.action_probabilities(s, p) if policy else None, rng)
    return out


def _step(state: LatentWerewolfState, probs_of: Callable[[Any, int], dict | None], rng: np.random.Generator) -> None:
    cur = state.current_player()
    if cur == CHANCE:
        state.apply_action(sample_chance(state, rng))
        return

    def pick(p: int) -> Any:
        probs = probs_of(state, p)
        return sample_action(probs if probs is not None else {a: 1.0 for a in state.legal_actions(p)}, rng)

    if cur == SIMULTANEOUS:
        state.apply_actions([pick(p) for p in range(state.game.num_players)])
    else:
        state.apply_action(pick(cur))


def forced_latent_value(game: WerewolfLatent, policy: TablePolicy, role: str, latent: int, episodes: int,
                        rng: np.random.Generator) -> float:
    """Mean return of a `role` speaker whose first speech uses `latent` (its target as the policy
    picks it), everything else by `policy`."""
    total, n = 0.0, 0
    for _ in range(episodes):
        state = game.new_initial_state()
        speaker = None
        while not state.is_terminal():
            cur = state.current_player()
            if speaker is None and cur >= 0 and state.base.phase == "day_speech" and state.base.roles[cur] == role:
                speaker = cur
                legal = [a for a in state.legal_actions(cur) if (a - SPEECH) // 2 == latent]
                probs = policy.action_probabilities(state, cur)
                w = np.array([probs.get(a, 0.0) for a in legal]) + 1e-12
                state.apply_action(legal[int(rng.choice(len(legal), p=w / w.sum()))])
                continue
            _step(state, lambda s, p: policy.action_probabilities(s, p), rng)
        if speaker is not None:
            total += float(state.returns()[speaker])
            n += 1
    return total / n if n else 0.0


def best_response_gains(game: WerewolfLatent, policy: TablePolicy, iterations: int, episodes: int,
                        seed: int) -> dict[str, dict[str, float]]:
    """Per team: its mean return (win +1, draw 0, loss -1) and win rate under `policy`, and the same
    for a sampled best response to it (MCCFR for the team's seats, everyone else fixed to
    `policy`, greedy at the end, `policy` where the response learnt nothing), on the same seeds.
    The return gain is the team's exploitability estimate (a lower bound: a sampled response)."""
    out = {}
    for team in ("werewolves", "villagers"):
        solver = StateOutcomeMCCFR(game, seed=seed, fixed=policy, learns=lambda s, p, t=team: team_of(s, p) == t)
        response = solver.run(iterations).greedy_policy(fallback=policy)
        own = team_outcome(game, policy, policy, team, episodes, seed + 1)
        mine = team_outcome(game, response, policy, team, episodes, seed + 1)
        out[team] = {"policy_return": own[0], "policy_win_rate": own[1], "best_response_return": mine[0],
                     "best_response_win_rate": mine[1], "gain": mine[0] - own[0]}
    return out


def team_of(state: Any, player: int) -> str | None:
    roles = state.base.roles
    if player >= len(roles):
        return None
    return "werewolves" if roles[player] == WEREWOLF else "villagers"


class _Mixed:
    """`team` plays `mine`, everyone else `other` (both abstract-game policies)."""

    def __init__(self, mine: Any, other: Any, team: str):
        self.mine, self.other, self.team = mine, other, team

    def action_probabilities(self, state: Any, player: int | None = None) -> dict:
        player = state.current_player() if player is None else player
        return (self.mine if team_of(state, player) == self.team else self.other).action_probabilities(state, player)


def team_outcome(game: WerewolfLatent, team_policy: Any, other_policy: Any, team: str, episodes: int,
                 seed: int) -> tuple[float, float]:
    """(mean return, win rate) of `team` when its seats play `team_policy` and the rest `other_policy`."""
    rng = np.random.default_rng(seed)
    mixed = _Mixed(team_policy, other_policy, team)
    wins = draws = 0
    for _ in range(episodes):
        state = game.new_initial_state()
        while not state.is_terminal():
            _step(state, mixed.action_probabilities, rng)
        wins += state.base.winner == team
        draws += state.base.winner == "draw"
    return (2 * wins + draws - episodes) / episodes, wins / episodes


def preference_pairs(cands: list[dict[str, Any]], members: dict[str, list[list[int]]],
                     values: dict[str, list[float]]) -> list[tuple[int, int]]:
    """(chosen, rejected) candidate indices: per context, an utterance of its highest-value
    latent against one of its lowest-value latent (contexts whose utterances all fall in one
    latent, or in latents of equal value, give no pair)."""
    latent_of = {c: (role, j) for role, ms in members.items() for j, m in enumerate(ms) for c in m}
    by_context: dict[tuple[str, int], list[int]] = {}
    for c, cand in enumerate(cands):
        if c in latent_of:
            by_context.setdefault((cand["role"], cand["context"]), []).append(c)
    pairs = []
    for (role, _), cs in sorted(by_context.items()):
        v = {c: values[role][latent_of[c][1]] for c in cs}
        best, worst = max(cs, key=lambda c: v[c]), min(cs, key=lambda c: v[c])
        if v[best] > v[worst]:
            pairs.append((best, worst))
    return pairs
