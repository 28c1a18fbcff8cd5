"""One build of NAME/VERSION into one output folder at a time.

The lock is ``OUT/NAME/.VERSION.lock``: an ``flock`` held for the whole build on a file that names
its holder (pid, host, start time, command). ``flock`` is released by the kernel when the holder
dies, however it dies, so a lock left by a killed build never blocks the next one; its file is
then reported and taken over with a warning. A second live build gets one line naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from dsbuild.errors import DsbuildError

log = logging.getLogger(__name__)


class BuildLockedError(DsbuildError):
    """Another build of the same NAME/VERSION into the same output folder is running."""


class BuildLock:
    """``with BuildLock(path, what): ...`` holds the lock, or raises :class:`BuildLockedError`."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):  # the file may be unlinked by a finishing holder between open and flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                for _ in range(50):  # the holder writes its name just after locking: give it a moment
                    if holder:
                        break
                    time.sleep(0.02)
                    holder = _read_holder(fd)
                os.close(fd)
                raise BuildLockedError(f"another build of {self.what} into this folder is running ({describe(holder)}); "
                                       f"wait for it to finish or stop it (lock file {self.path})") from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # we locked a file that was just removed: lock the new one instead
        else:  # pragma: no cover - needs 20 lost races in a row
            raise BuildLockedError(f"could not take the lock {self.path}; try again")
        stale = _read_holder(fd)
        if stale:
            log.warning("taking over the lock of a build that is no longer running (%s)", describe(stale))
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # unlink while still holding the lock, so no one can lock the old file after we leave
        try:
            if _same_file(self._fd, self.path):
                self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data.decode("utf-8")) if data.strip() else {}
    except (OSError, ValueError):
        return {}


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
