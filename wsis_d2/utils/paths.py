"""Output paths that must never replace one of a command's inputs, and files written whole or not at all."""
import json
import os
import tempfile
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


def write_json_atomically(path: str, data) -> None:
    """``json.dump(data)`` into ``path`` through a unique temporary file in its folder, renamed over it:
    processes writing the same file at once never leave or read half of one. The file gets the
    permissions of a plain ``open(path, "w")`` (0666 less the umask), not the temporary file's 0600."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}-", suffix=".tmp", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
