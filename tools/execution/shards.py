"""Split the notebooks still to run into N shards that independent machines execute.

``--shard K/N`` (K counts from 0, as Slurm array ids, Kubernetes' ``JOB_COMPLETION_INDEX``
and a GitHub matrix index can all be written) selects shard K of N. The split needs no
coordination: it is a pure function of the notebooks still to run and the durations
the manifest recorded for them, so every machine that starts from the same sources and
the same cache computes the same split. Longest first, each notebook goes to the shard
with the least work so far (ties to the lower shard); a notebook with no recorded
duration counts as the mean of the known ones, so with none known the split is by count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SYNTAX = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class ShardError(ValueError):
    """A ``--shard`` value that cannot be used."""


def parse_shard(text: str) -> Shard:
    """``"K/N"`` as a Shard; raises ShardError unless 0 <= K < N."""
    match = _SYNTAX.match(text)
    if not match:
        raise ShardError(f"--shard {text!r}: expected K/N, as in 0/4 (K counts from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ShardError(f"--shard {text!r}: K must be in 0..N-1 (K counts from 0), and "
                         "N at least 1")
    return Shard(index, count)


def costs(durations: dict[str, float | None]) -> dict[str, float]:
    """Each notebook's expected seconds: as recorded, else the mean of the recorded ones
    (1 when none is, which makes the split one by count)."""
    known = [s for s in durations.values() if s is not None]
    default = sum(known) / len(known) if known else 1.0
    return {name: default if s is None else s for name, s in durations.items()}


def split(durations: dict[str, float | None], count: int) -> list[list[str]]:
    """The notebooks of ``durations`` (name -> seconds, None when unknown) in ``count``
    shards, each in the order given; deterministic for the same input."""
    cost = costs(durations)
    order = sorted(cost, key=lambda name: (-cost[name], name))
    shards: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for name in order:
        lightest = min(range(count), key=lambda k: (loads[k], k))
        shards[lightest].append(name)
        loads[lightest] += cost[name]
    position = {name: n for n, name in enumerate(durations)}
    return [sorted(shard, key=position.__getitem__) for shard in shards]


def planned_loads(durations: dict[str, float | None], count: int) -> list[float]:
    """The seconds of work in each shard of :func:`split` (unknown durations as the mean)."""
    cost = costs(durations)
    return [sum(cost[name] for name in shard) for shard in split(durations, count)]
