"""One training per ``OUTPUT_DIR``: a lock held for the run's life.

Two runs in one folder would overwrite each other's checkpoints and interleave ``metrics.json``.
The lock is an ``flock`` on ``OUTPUT_DIR/.wsis_d2_train.lock``, which the operating system
releases when the process ends however it ends (``kill -9`` included), so a crashed run leaves
no stale lock; the file records who holds it, and a holder that vanished without releasing it is
reported (a crash or a kill: ``--resume`` continues from its last checkpoint).
"""
import fcntl
import logging
import os
import socket
import time
from contextlib import contextmanager

from ..config import ConfigError

logger = logging.getLogger(__name__)

LOCK_NAME = ".wsis_d2_train.lock"
_RELEASED = "released"
_held = {}  # real path of the lock file -> its open descriptor, for the locks this process holds


def _describe(text: str) -> str:
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    if not fields:
        return "another process"
    return f"pid {fields.get('pid')} on {fields.get('host')}, started {fields.get('started', '?').replace('T', ' ')}"


def acquire(output_dir: str) -> bool:
    """Take the lock of ``output_dir`` for this process (False when it already holds it).

    Raises:
        ConfigError: another live process holds it.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.realpath(os.path.join(output_dir, LOCK_NAME))
    if path in _held:
        return False
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace")
        os.close(fd)
        raise ConfigError(f"OUTPUT_DIR {output_dir} is in use by another training ({_describe(holder)}); "
                          "two runs in one folder overwrite each other's checkpoints: wait for it to end "
                          "(then --resume continues it) or choose another OUTPUT_DIR") from None
    except OSError as e:  # a file system without locks (some network mounts): run, as before, unguarded
        os.close(fd)
        logger.warning(f"Cannot lock {path} ({e}): nothing keeps a second training out of {output_dir}")
        return False
    previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    if previous and previous != _RELEASED:
        logger.warning(f"The previous training in {output_dir} ({_describe(previous)}) ended without releasing "
                       "its lock: it crashed or was killed. --resume continues from its last checkpoint.")
    os.ftruncate(fd, 0)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()} started={stamp}\n".encode(), 0)
    _held[path] = fd
    return True


def release(output_dir: str) -> None:
    path = os.path.realpath(os.path.join(output_dir, LOCK_NAME))
    fd = _held.pop(path, None)
    if fd is None:
        return
    os.ftruncate(fd, 0)
    os.pwrite(fd, _RELEASED.encode(), 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextmanager
def training_lock(output_dir: str):
    """Hold ``output_dir``'s lock inside the block (a no-op when this process holds it already)."""
    taken = acquire(output_dir)
    try:
        yield
    finally:
        if taken:
            release(output_dir)
