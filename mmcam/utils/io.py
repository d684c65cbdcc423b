"""Atomic output files: a reader never sees a half-written picture or array."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator


def _file_mode() -> int:
    """The mode a plainly created file gets (0o666 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    The temporary file keeps ``path``'s extension, so writers that pick the format from it
    (``cv2.imwrite``, ``np.save``) behave as for the final name. Missing folders are created.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{base}.', suffix=f'.tmp{ext}', dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp creates the file owner-only (0o600); outputs get the usual mode.
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence what C libraries print straight to file descriptor 2 (libpng's "PNG input buffer
    is incomplete" on a truncated file) while the block runs: mmcam reports such files itself,
    in one line with the file's name. Python's own ``sys.stderr`` is flushed first; nothing
    else writes while the block runs (image decoding, on the calling thread)."""
    import sys
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (embedded interpreters): nothing to do
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
