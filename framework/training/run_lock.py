"""One lock per run directory, so that two `framework run` on the same output never train one cell twice.

The lock is the file `<run dir>/.lock`, holding who took it (host, pid, the process's start time, the
SLURM job id) as JSON. It is created complete and atomically: written to a temporary file, then
hard-linked to its name, which fails when the name exists (atomic on local disks and on NFS). The
holder touches the file every `HEARTBEAT_S` seconds from a background thread.

A process that finds the lock taken does not wait: `run.execute` reports the cell as `locked by ...`
and moves on. A lock is STALE, and taken over, when
- its holder ran on this host and that process is gone (or its pid now belongs to another process);
- its holder was this same SLURM job (a requeued job restarts under its job id; SLURM never runs two
  instances of one job at once);
- its heartbeat is older than `STALE_AFTER_S` (a holder on another node that died, e.g. a cancelled
  job or a failed node; the file's mtime, set by the file server, is compared with this host's clock,
  so keep the nodes' clocks in sync, as NTP does).
Taking over renames the stale file away (only one of several contenders can rename it), checks that
what it renamed is the stale lock it judged, and creates its own.

A holder whose lock was taken over (it stalled past `STALE_AFTER_S`, or its lock file was removed) no
longer owns the run directory: its heartbeat sets `RunLock.lost`, training stops at the next step
(`preemption.PreemptionCheckpoint`, through a `LockWatch`) and `run.execute` writes nothing more there.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.results.run_folder import LOCK_FILE

log = logging.getLogger("framework.training.run_lock")

HEARTBEAT_S = 30.0  # how often the holder touches its lock
STALE_AFTER_S = 300.0  # ten missed heartbeats: the holder is gone (or its node cannot reach the files)


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, Linux /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 of stat, counted after the command name


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    try:  # a killed process whose parent is gone stays a zombie until something reaps it: it is dead
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    now = _process_start(pid)
    return started is None or now is None or now == started


def _me() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(), "pid": pid, "process_start": _process_start(pid),
        "slurm_job": os.environ.get("SLURM_JOB_ID"), "since": time.time(), "token": uuid.uuid4().hex,
    }


def this_process() -> dict[str, Any]:
    """Who this process is, as a lock file records it (host, pid, start time, SLURM job, since): a search
    worker records it on the trial it claims, and judges another worker's claim with Holder.stale_reason."""
    return _me()


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as read from its file; `heartbeat_age_s` is the age of the file's mtime."""

    info: dict[str, Any]
    heartbeat_age_s: float

    def describe(self) -> str:
        info = self.info
        job = f", SLURM job {info['slurm_job']}" if info.get("slurm_job") else ""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
        return (f"pid {info.get('pid')} on {info.get('host')}{job} since {since} "
                f"(heartbeat {self.heartbeat_age_s:.0f} s ago)")

    def stale_reason(self, stale_after_s: float) -> str | None:
        """Why this lock is stale, or None while its holder may still be training."""
        info, me = self.info, _me()
        if info.get("host") == me["host"] and isinstance(info.get("pid"), int) and info["pid"] != me["pid"]:
            if not _alive(info["pid"], info.get("process_start")):
                return f"its process {info['pid']} on this host has ended"
        if info.get("slurm_job") and info.get("slurm_job") == me["slurm_job"] and info.get("pid") != me["pid"]:
            return f"it was taken by an earlier run of this SLURM job ({info['slurm_job']}), since requeued"
        if self.heartbeat_age_s > stale_after_s:
            return f"no heartbeat for {self.heartbeat_age_s:.0f} s (more than {stale_after_s:.0f} s)"
        return None


def read_holder(run_dir: Path) -> Holder | None:
    """The holder of `run_dir`'s lock, or None when it is not locked (e.g. for `framework status`)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        mtime = path.stat().st_mtime
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        info = {}  # unreadable: judged by its heartbeat alone
    return Holder(info if isinstance(info, dict) else {}, max(0.0, time.time() - mtime))


class RunLock:
    """The lock of one run directory. `acquire()` returns None when this process now holds it, else the
    current holder; `release()` gives it back. Usable as a context manager (`with RunLock(d) as holder`)."""

    def __init__(self, run_dir: Path, heartbeat_s: float | None = None, stale_after_s: float = STALE_AFTER_S):
        self.path = Path(run_dir) / LOCK_FILE
        # the module's HEARTBEAT_S read now, not at import: a test can quicken every lock of a run
        self.heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self.stale_after_s = stale_after_s
        self.info: dict[str, Any] | None = None  # ours, while held
        self.lost = False  # set when another process took the lock from us (our heartbeat stopped too long)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> Holder | None:
        for _ in range(5):  # each round either takes the lock, finds a live holder, or removes a stale one
            if self._create():
                self._start_heartbeat()
                return None
            holder = read_holder(self.path.parent)
            if holder is None:
                continue  # released in the meantime
            reason = holder.stale_reason(self.stale_after_s)
            if reason is None:
                return holder
            if self._remove_stale(holder):
                log.warning("took over the lock of %s: %s was stale (%s)", self.path.parent, holder.describe(), reason)
        # Five rounds lost to other contenders: leave the cell to them rather than spin.
        return read_holder(self.path.parent) or Holder({"pid": "?", "host": "another process (contended)"}, 0.0)

    def _create(self) -> bool:
        info = _me()
        tmp = self.path.with_name(f"{LOCK_FILE}.{info['token']}.tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        try:
            os.link(tmp, self.path)  # fails if the lock exists: atomic, and never half-written
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive creation (briefly empty when read)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(info))
        finally:
            tmp.unlink(missing_ok=True)
        self.info = info
        return True

    def _remove_stale(self, holder: Holder) -> bool:
        """Move the stale lock away; True when what was moved is the lock judged stale."""
        moved = self.path.with_name(f"{LOCK_FILE}.stale.{uuid.uuid4().hex}")
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:
            return False  # another contender moved it first
        try:
            taken = json.loads(moved.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            taken = {}
        if holder.info and taken.get("token") != holder.info.get("token"):
            # Between our reading and our rename another contender replaced the stale lock with its own
            # fresh one: put it back, unless a third process has locked in the meantime.
            try:
                os.link(moved, self.path)
            except FileExistsError:
                pass
            moved.unlink(missing_ok=True)
            return False
        moved.unlink(missing_ok=True)
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lock heartbeat {self.path.parent.name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self._owned():
                self.lost = True
                log.warning("the lock of %s was taken by another process: two processes may now train this run",
                            self.path.parent)
                return
            try:
                os.utime(self.path)
            except OSError:
                pass  # a file server hiccup: the next beat tries again

    def _owned(self) -> bool:
        return _holds(self.path, (self.info or {}).get("token"))

    def held(self) -> bool:
        """Whether this process still holds the lock, read from the file now (the heartbeat's `lost`
        lags by up to `heartbeat_s`): asked before each write to the run directory."""
        return self.info is not None and not self.lost and self._owned()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.info is not None and self._owned():
            self.path.unlink(missing_ok=True)
        self.info = None

    def __enter__(self) -> Holder | None:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holds(path: Path, token: str | None) -> bool:
    try:
        return token is not None and json.loads(path.read_text(encoding="utf-8")).get("token") == token
    except (OSError, ValueError):
        return False


class LockWatch:
    """Whether a held RunLock was taken over, cheap enough to ask at every training step.

    In the holder's process it reads the heartbeat's `lost` flag. It is also pickled into the processes
    that `ddp_spawn` starts, where the lock object (with its thread) does not exist: there it reads the
    lock file itself, at most every `HEARTBEAT_S`."""

    def __init__(self, lock: RunLock):
        self.path, self.token = lock.path, (lock.info or {}).get("token")
        self._lock: RunLock | None = lock
        self._lost, self._next_read = False, 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_lock": None}  # a thread does not cross processes; the file does

    def lost(self) -> bool:
        if self._lock is not None:
            return self._lock.lost
        if not self._lost and time.monotonic() >= self._next_read:
            self._next_read = time.monotonic() + HEARTBEAT_S
            self._lost = not _holds(self.path, self.token)
        return self._lost
