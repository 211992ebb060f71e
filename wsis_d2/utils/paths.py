"""Output paths that must never replace one of a command's inputs."""
import os
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
