"""Engine.IO session ids that name the process owning them: `[NODE.][WORKER.]RANDOM`.

Engine.IO's own ids are URL-safe base64 (letters, digits, `-`, `_`) and never hold a dot, so the
dotted prefix cannot be confused with them. A load balancer routes on the node part (nginx: a `map`
on `$arg_sid`), and `parley serve --workers N` routes on the worker part, so every request of a
session reaches the process that holds it, on either transport.
"""

from __future__ import annotations

MAX_WORKER_DIGITS = 2


def owner_prefix(node: str | None, worker: int | None) -> str:
    """The prefix of the ids a process hands out: `a.3.` for worker 3 of node `a`, `` for neither."""
    parts = [part for part in (node, None if worker is None else str(worker)) if part]
    return "".join(f"{part}." for part in parts)


def worker_of(sid: str, node: str | None) -> int | None:
    """The worker of node `node` that `sid` names, or None when it names none of them."""
    node_part = f"{node}." if node else ""
    if not sid.startswith(node_part):
        return None
    worker, dot, _ = sid[len(node_part) :].partition(".")
    if not dot or not worker.isascii() or not worker.isdigit() or len(worker) > MAX_WORKER_DIGITS:
        return None
    return int(worker)
