"""Evaluation: pass@1 and maj@k per dataset, and the collaboration diagnostic.

The collaboration diagnostic runs the same Solver with the Thinker removed (the env's
counterfactual hook) on the same problems: ``joint − solo`` is the Thinker's contribution.
For the voting topology, "joint" is the plurality answer and "solo" a single voter's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ccpo_env import rollout
from ccpo_env.verify import answer_classes

__all__ = ["evaluate", "format_table", "majority_correct"]


def majority_correct(preds: Sequence[str | None], correct: Sequence[bool], answer_type: str = "math") -> bool:
    """Whether the plurality answer among ``preds`` is right (abstentions ignored; ties: first class)."""
    classes = answer_classes(preds, answer_type=answer_type)
    if not classes:
        return False
    return bool(correct[max(classes, key=len)[0]])


def _team_answer(ep: Any) -> str | None:
    """The team's final answer: the Solver's extracted answer, or the winning vote class."""
    info = next(iter(ep.infos.values()), {})
    if "classes" in info:
        winner = info.get("winner")
        return info["classes"][winner][0] if winner is not None else None
    return info.get("pred")


def evaluate(
    env_factory: Any,
    policies: Mapping[str, Any],
    datasets: Sequence[str],
    *,
    num_samples: int = 1,
    diagnostic: bool = True,
    batch_problems: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Evaluate ``policies`` on each dataset.

    Args:
        env_factory: ``fn(dataset_name) -> env`` (a template env on that dataset's evaluation split).
        policies: ``{agent: policy}``.
        datasets: dataset names.
        num_samples: samples per problem (pass@1 averages them; maj@k votes over them when > 1).
        diagnostic: also run the Thinker-removed branches (ThinkSolve only).
        batch_problems: problems per rollout call.
        seed: rollout seed.

    Returns:
        ``{dataset: {"n": problems, "pass@1": ..., "maj@k": ..., "solo_pass@1": ..., "contribution": ...}}``.
    """
    results: dict[str, dict[str, float]] = {}
    for name in datasets:
        env = env_factory(name)
        n = len(env.dataset)
        think_solve = "thinker" in env.possible_agents
        joint_ok: list[list[bool]] = [[] for _ in range(n)]
        joint_pred: list[list[str | None]] = [[] for _ in range(n)]
        solo_ok: list[list[bool]] = [[] for _ in range(n)]
        cf = [["thinker"]] if (diagnostic and think_solve) else []
        for start in tqdm(range(0, n, batch_problems), desc=f"eval {name}", disable=not progress, leave=False):
            problems = list(range(start, min(start + batch_problems, n)))
            eps = rollout(env, policies, problems, num_samples=num_samples, counterfactuals=cf,
                          num_counterfactual=num_samples, seed=seed + start)
            for ep in eps:
                i = ep.problem_index
                if ep.removed:
                    solo_ok[i].append(bool(ep.correct))
                    continue
                joint_ok[i].append(bool(ep.correct))
                joint_pred[i].append(_team_answer(ep))
                if not think_solve:
                    # Voting: each voter's own answer is the "solo" baseline.
                    solo_ok[i].extend(bool(info.get("vote_correct", False)) for info in ep.infos.values())
        row: dict[str, float] = {"n": float(n), "pass@1": float(np.mean([np.mean(x) for x in joint_ok]))}
        if num_samples > 1:
            types = [env.dataset[i].answer_type for i in range(n)]
            row[f"maj@{num_samples}"] = float(np.mean([
                majority_correct(joint_pred[i], joint_ok[i], types[i]) for i in range(n)
            ]))
        if any(solo_ok):
            row["solo_pass@1"] = float(np.mean([np.mean(x) for x in solo_ok if x]))
            row["contribution"] = row["pass@1"] - row["solo_pass@1"]
        results[name] = row
    return results


def format_table(columns: Mapping[str, Mapping[str, Mapping[str, float]]], metric: str = "pass@1") -> str:
    """A paper-style table: one row per dataset, one column per checkpoint (e.g. Untrained / Shared / CCPO)."""
    names = list(columns)
    datasets: list[str] = []
    for res in columns.values():
        for d in res:
            if d not in datasets:
                datasets.append(d)
    width = max([len(d) for d in datasets] + [7])
    head = f"{'dataset':<{width}} " + " ".join(f"{c:>12}" for c in names)
    lines = [f"[{metric}]", head, "-" * len(head)]
    for d in datasets:
        cells = []
        for c in names:
            v = columns[c].get(d, {}).get(metric)
            cells.append(f"{100 * v:>11.1f}%" if v is not None else f"{'-':>12}")
        lines.append(f"{d:<{width}} " + " ".join(cells))
    avg = []
    for c in names:
        vals = [columns[c][d][metric] for d in datasets if metric in columns[c].get(d, {})]
        avg.append(f"{100 * np.mean(vals):>11.1f}%" if vals else f"{'-':>12}")
    lines.append(f"{'average':<{width}} " + " ".join(avg))
    return "\n".join(lines)
