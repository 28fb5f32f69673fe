"""The GPUs the book's kernels can use: found once, by the torch the kernels import.

One answer serves both decisions that depend on it: the ``auto`` profile (``full`` with a
GPU, ``smoke`` without) and the worker slots (one per GPU). It comes from a child process
running the same Python and environment as the kernels (``CUDA_VISIBLE_DEVICES``
included), so a CPU-only torch on a machine with a GPU counts no GPU, and the parent
process never initialises CUDA itself.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

PROBE = """\
import json
try:
    import torch
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \\
        if torch.cuda.is_available() else []
except ImportError:
    names = []
print(json.dumps(names))
"""
TIMEOUT = 120  # seconds; a first torch import on a cold disk can be slow


@functools.lru_cache(maxsize=8)
def _probe(python: str, env_items: tuple) -> tuple[str, ...]:
    try:
        done = subprocess.run([python, "-c", PROBE], env=dict(env_items), capture_output=True,
                              text=True, timeout=TIMEOUT, check=True)
        names = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return ()
    return tuple(str(name) for name in names)


def gpu_device_files(dev: Path = Path("/dev")) -> bool:
    """Whether the machine has any GPU device file a driver would create."""
    return any(dev.glob("nvidia[0-9]*")) or (dev / "nvidiactl").exists() or \
        (dev / "kfd").exists()


def detect_gpus(env: dict, dev: Path = Path("/dev")) -> list[str]:
    """Names of the GPUs a kernel started with ``env`` can use (none when torch is
    missing, CPU-only, or cannot see one); asked once per process and environment."""
    if not gpu_device_files(dev):
        return []
    return list(_probe(sys.executable, tuple(sorted(env.items()))))
