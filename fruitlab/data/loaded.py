"""Cache files kept in memory once loaded, so that the trials a sweep worker runs one after another load each
file once instead of once per trial.

Keeping them is safe because of what is kept and how it is keyed. The tensors (decoded uint8 images, labels, a
PCA fit) are treated as immutable: every user indexes (copies) or reads them, none writes them in place. The
key is the file itself, its path, size and modification time, never a run or a trial: a cache file that is
rebuilt or replaced is read afresh. Only the few most recently used files are kept, so memory stays bounded
when one process goes through many datasets."""

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from fruitlab.data.cache import cached

KEPT_FILES = 4  # a dataset's training and test splits, and a PCA fit, with room to spare


class LoadedFiles:
    def __init__(self, capacity: int = KEPT_FILES) -> None:
        self.capacity = capacity
        self.reads = 0  # files read (or built) from disk, for anyone who wants to know the memo works
        self._files: OrderedDict[tuple[str, int, int], dict] = OrderedDict()

    def get(self, path: Path, build: Callable[[], dict]) -> dict:
        """The tensors of the cache file at `path` (built by `build` when missing), read once per version."""
        key = identity(path)
        if key in self._files:
            self._files.move_to_end(key)
            return self._files[key]
        value = cached(path, build)
        self.reads += 1
        self._files[identity(path)] = value
        while len(self._files) > self.capacity:
            self._files.popitem(last=False)
        return value


def identity(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


LOADED = LoadedFiles()


def load_cached(path: Path, build: Callable[[], dict]) -> dict:
    """`cached(path, build)`, kept in memory for the life of the process (see the module's docstring)."""
    return LOADED.get(path, build)
