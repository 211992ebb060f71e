"""Output paths that must never replace one of a command's inputs, and files written whole or not at all."""
import contextlib
import json
import os
import uuid
from typing import Iterable, Optional


def same_file(a, b) -> bool:
    """True when ``a`` and ``b`` name one file: the same resolved path, or the same inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def input_named_by(output, inputs: Iterable) -> Optional[str]:
    """The first of ``inputs`` that ``output`` names (by path, symlink or hard link), or None."""
    return next((str(path) for path in inputs if same_file(output, path)), None)


def files_in(*folders) -> list:
    """The files directly inside ``folders`` (those that do not exist are skipped)."""
    return [entry.path for folder in folders if folder and os.path.isdir(folder)
            for entry in os.scandir(folder) if entry.is_file()]


def write_atomically(path: str, write) -> None:
    """``write(f)`` on a binary file that becomes ``path`` whole or not at all: a temporary file of a
    unique name in its folder, synced, renamed over it (processes writing the same file at once never
    leave or read half of one; a failed write leaves nothing). The file is created as ``open(path,
    "wb")`` would (mode 0666 less the umask), not 0600 as ``mkstemp``'s."""
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_json_atomically(path: str, data) -> None:
    """``data`` as JSON in ``path``, with :func:`write_atomically`."""
    text = json.dumps(data)  # before the file exists: unserialisable data leaves nothing behind
    write_atomically(path, lambda f: f.write(text.encode()))
