"""What the three command-line tools share, so they behave as one.

* options: ``--cfg-options``, ``--allow-unsafe-checkpoint``, ``--debug`` and ``--device``, whose
  default is the first GPU when there is one, else the CPU, said in one line;
* output names that never collide: sub-folders of the input are mirrored under ``--out-dir``,
  and two inputs of one folder with one stem (``a.jpg``, ``a.png``) keep their extension in it;
* messages on stderr, the list of written files on stdout;
* exit status: 0 everything written, 1 some inputs skipped (a summary says which and why),
  2 nothing could be done (a user error, or every input skipped); 130 on Ctrl-C;
* ``--preview-model``: one table, layer name, type and output shape for IMG;
* ``--show``: a window where one can open; otherwise one note, and the files are written anyway.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np

from mmcam.cams.layers import preview_rows
from mmcam.utils.checkpoint import UnsafeCheckpointError
from mmcam.utils.errors import InputError, OptionError, first_line
from mmcam.utils.io import atomic_path

#: Errors whose message already says what to do; anything else is reported with its type.
USER_ERRORS = (InputError, UnsafeCheckpointError, FileNotFoundError)


def new_parser(description: str, model: str) -> argparse.ArgumentParser:
    """A tool's parser with the three positional arguments every tool takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('img', help='image file, folder of images or glob pattern (quoted: '
                        '"imgs/*.jpg")')
    parser.add_argument('config', help=f'{model} config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    return parser


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every tool takes, with one meaning: the device, config overrides, the
    unsafe-checkpoint opt-in and tracebacks."""
    from mmengine.config import DictAction
    parser.add_argument('--device', default=None,
                        help='cpu, cuda, cuda:1, ... (default: cuda:0 when a GPU is there, '
                        'else cpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config settings, key=value (e.g. '
                        'model.test_cfg.score_thr=0.1); applied to the model that is built')
    parser.add_argument('--allow-unsafe-checkpoint', action='store_true',
                        help='load a checkpoint that holds arbitrary pickled objects (only for '
                        'files you trust: unpickling can run code)')
    parser.add_argument('--skip-existing', action='store_true',
                        help="leave out the images whose picture is already written (a rerun "
                        "of an interrupted folder run goes on where it stopped)")
    parser.add_argument('--debug', action='store_true', help='show tracebacks of errors')


def quiet_dependency_warnings() -> None:
    """Hide deprecation notices that OpenMMLab's and torch's own code raise on this stack (a
    user can do nothing about them); mmcam's own warnings still show."""
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings('ignore', category=category,
                                module=r'(mmdet|mmyolo|mmpretrain|mmengine|mmcv)(\.|$)')
    warnings.filterwarnings('ignore', message=r'torch\.meshgrid: in an upcoming release')


def run_tool(prog: str, run: Callable[[argparse.Namespace], int],
             parse_args: Callable[[Sequence[str]], argparse.Namespace],
             argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` and call ``run(args)``; turn an exception into one line on stderr and an
    exit status.

    Exit status: what ``run`` returns; 2 for a user error (bad input or option, as argparse
    does), 1 for anything else, 130 on Ctrl-C. ``--debug`` lets the traceback through.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    quiet_dependency_warnings()
    try:
        args = parse_args(argv)
    except Exception as err:  # noqa: BLE001 - argparse itself exits; this is --cfg-options
        if '--debug' in argv:
            raise
        print(f'{prog}: error: the options could not be parsed ({_first_line(err)}); expected '
              '--cfg-options key=value pairs whose values are numbers, strings, [lists] or '
              '(tuples), e.g. model.test_cfg.score_thr=0.1 (set a dict field by field: '
              'key.field=value).', file=sys.stderr)
        return 2
    try:
        return run(args)
    except KeyboardInterrupt:
        # Files are written atomically: what exists is whole, the one being written is not.
        written = len(Report.latest.written) if Report.latest else 0
        print(f'{prog}: interrupted; {written} files written (all complete); '
              '--skip-existing goes on from there', file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line for users, traceback with --debug
        if getattr(args, 'debug', False):
            raise
        if isinstance(err, USER_ERRORS):
            print(f'{prog}: error: {first_line(err)}', file=sys.stderr)
            return 2
        print(f'{prog}: error: {_first_line(err)} (run with --debug for the traceback)',
              file=sys.stderr)
        return 1


def _first_line(err: BaseException) -> str:
    """``Type: first line of the message`` (the type alone when there is no message)."""
    return f'{type(err).__name__}: {first_line(err)}' if str(err).strip() else \
        type(err).__name__


def pick_device(device: Optional[str]) -> str:
    """``--device``, or the default (the first GPU if there is one, else the CPU), said once."""
    if device is not None:
        return device
    import torch
    device = 'cuda:0' if torch.cuda.is_available() else 'cpu'
    why = 'the first GPU' if device != 'cpu' else 'no GPU found'
    print(f'device: {device} ({why}; --device chooses another)', file=sys.stderr)
    return device


def output_stems(paths: Sequence[str], out_dir: str) -> Dict[str, str]:
    """Where each input's outputs go, as a path without extension (a tool adds ``.png``,
    ``_per_box.png``, ``.npy``, ...).

    Inputs keep their place below their common folder (``a/x.jpg`` -> ``OUT/a/x``, ``b/x.jpg``
    -> ``OUT/b/x``); two inputs of one folder with one stem keep their extension
    (``x.jpg`` -> ``OUT/x_jpg``, ``x.png`` -> ``OUT/x_png``), so no two inputs share a name.
    """
    absolute = [os.path.abspath(p) for p in paths]
    base = os.path.commonpath([os.path.dirname(p) for p in absolute]) if absolute else ''
    split = [os.path.splitext(os.path.relpath(p, base)) for p in absolute]
    counts: Dict[str, int] = {}
    for stem, _ in split:
        counts[stem] = counts.get(stem, 0) + 1
    return {path: os.path.join(out_dir, stem if counts[stem] == 1 else
                               f'{stem}_{ext.lstrip(".").lower() or "noext"}')
            for path, (stem, ext) in zip(paths, split)}


def check_writable(folder: Optional[str], option: str = '--out-dir') -> None:
    """Refuse an output folder that cannot be made or written, before any model is loaded."""
    if not folder:
        return
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise InputError(f'{option} {folder!r} cannot be made: {probe!r} is a file, not a '
                         f'folder; expected a folder path, choose another {option}.')
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f'{option} {folder!r} cannot be written ({probe!r} is not writable '
                         f'for you); choose a folder you can write to.')


def outside(paths: Sequence[str], out_dir: Optional[str]) -> List[str]:
    """``paths`` without the files inside ``out_dir`` (an earlier run's pictures in the input
    folder are not inputs)."""
    if not out_dir:
        return list(paths)
    out = os.path.join(os.path.abspath(out_dir), '')
    return [p for p in paths if not os.path.abspath(p).startswith(out)] or list(paths)


class Report:
    """What a run did: written files on stdout as they are written, the rest on stderr."""

    #: The report of the run in progress (what an interrupted run says it wrote).
    latest: Optional['Report'] = None

    def __init__(self) -> None:
        self.written: List[str] = []
        self.skipped: List[Tuple[str, str]] = []
        self.existing: List[str] = []
        self.replaced: List[str] = []
        self._noted: set = set()
        Report.latest = self

    def keep_existing(self, paths: Sequence[str], outputs: Dict[str, str],
                      skip_existing: bool) -> List[str]:
        """With ``--skip-existing``, the inputs whose output is not written yet."""
        if not skip_existing:
            return list(paths)
        self.existing = [p for p in paths if outputs.get(p) and os.path.exists(outputs[p])]
        existing = set(self.existing)
        return [p for p in paths if p not in existing]

    def wrote(self, path: str) -> None:
        self.written.append(path)
        print(path, flush=True)

    def save_picture(self, path: str, picture: np.ndarray) -> None:
        """Write an RGB picture atomically (no reader ever sees half of it) and list it."""
        self._save(path, lambda tmp: mmcv.imwrite(mmcv.rgb2bgr(picture), tmp))

    def save_map(self, path: str, array: np.ndarray) -> None:
        """Write a map as float32 .npy atomically and list it."""
        self._save(path, lambda tmp: np.save(tmp, np.asarray(array, np.float32)) or True)

    def _save(self, path: str, write: Callable[[str], bool]) -> None:
        if os.path.exists(path) and path not in self.written:
            self.replaced.append(path)  # from an earlier run: said, never silently
        with atomic_path(path) as tmp:
            if not write(tmp):
                raise OSError(f'could not write {path}; expected a writable file path')
        self.wrote(path)

    def skip(self, path: str, err: BaseException) -> None:
        """Record a skipped input: an InputError's own words, or the error's type and words."""
        own_words = isinstance(err, InputError) and str(err).strip()
        self.skipped.append((path, first_line(err) if own_words else _first_line(err)))

    def note(self, text: str) -> None:
        """A message, once per run."""
        if text not in self._noted:
            self._noted.add(text)
            print(f'note: {text}', file=sys.stderr, flush=True)

    def finish(self, total: int) -> int:
        """Print the summary; the exit status (0 all done, 1 some skipped, 2 none done)."""
        for path, reason in self.skipped:
            print(f'skipped {path}: {reason}', file=sys.stderr)
        if self.replaced:
            self.note(f'{len(self.replaced)} files of an earlier run were replaced (first: '
                      f'{self.replaced[0]}); --skip-existing keeps them, another --out-dir '
                      'keeps both')
        done = total - len(self.skipped)
        where = f' in {os.path.dirname(os.path.abspath(self.written[0]))}' if self.written else ''
        existing = len(self.existing)
        print(f'{done + existing} of {total + existing} images done, {len(self.written)} files '
              f'written{where}' + (f', {len(self.skipped)} skipped' if self.skipped else '')
              + (f', {existing} already written (--skip-existing)' if existing else ''),
              file=sys.stderr)
        return 0 if not self.skipped else 1 if done + existing else 2


def each_image(images: Sequence[str], description: str, report: Report, debug: bool,
               work: Callable[[str], None]) -> int:
    """Run ``work(image)`` on every image with a progress bar (on stderr) and the exit status
    of :meth:`Report.finish`. A failing image is skipped with its reason, unless the option
    itself fails (:class:`OptionError`, the same for every image: the run stops), ``debug`` is
    on, or it is the only image (its error is then the error)."""
    from rich.console import Console
    from rich.progress import track
    for image in track(images, description=description, console=Console(stderr=True),
                       disable=len(images) == 1):
        try:
            work(image)
        except Exception as err:  # noqa: BLE001 - one bad image must not stop a folder run
            if debug or isinstance(err, OptionError) or (
                    isinstance(err, InputError) and len(images) == 1):
                raise
            report.skip(image, err)
    return report.finish(len(images))


def can_show() -> bool:
    """Whether a window can open: an interactive matplotlib backend and, on X11/Wayland
    systems, a display (otherwise mmengine's show would wait forever for a key press)."""
    import matplotlib
    backend = matplotlib.get_backend().lower()
    if backend in ('agg', 'pdf', 'ps', 'svg', 'cairo', 'template') or 'inline' in backend:
        return False
    if sys.platform.startswith('linux'):
        return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))
    return True


class Shower:
    """``--show``: each picture in a window; without a display, one note and nothing else."""

    def __init__(self, wanted: bool, report: Report, where: Optional[str]) -> None:
        self.on = wanted and can_show()
        if wanted and not self.on:
            report.note('--show needs a display (none found, or matplotlib has a '
                        f'non-interactive backend); the pictures are written to {where}')
        self._visualizer = None
        self._report = report

    def __call__(self, picture: np.ndarray, name: str) -> None:
        if not self.on:
            return
        if self._visualizer is None:
            from mmcam.visualization import CAMVisualizer
            self._visualizer = CAMVisualizer.get_instance('mmcam_show')
        try:
            self._visualizer.show(picture, win_name=name)
        except Exception as err:  # noqa: BLE001 - the files are written anyway
            self._report.note(f'--show failed ({_first_line(err)}); the files are written')
            self.on = False


def print_preview(rows: Sequence[Tuple[str, str, str]], image: Optional[str]) -> None:
    """The ``--preview-model`` table on stdout (plain text, so it can be grepped)."""
    width = max([len(name) for name, _, _ in rows] + [27])
    shape_title = f'output shape for {image}' if image else 'output shape (give IMG to see it)'
    print(f'{"layer (for --target-layers)":<{width}}  {"type":<28}  {shape_title}')
    for name, kind, shape in rows:
        print(f'{name:<{width}}  {kind:<28}  {shape}')


def preview_model(loaded, images: Sequence[str]) -> int:
    """``--preview-model`` for a loaded model: the table, with output shapes for the first
    image when there is one."""
    inputs, image = None, None
    if images:
        try:
            inputs, image = loaded.prepare([images[0]])[0].inputs, images[0]
        except Exception:  # noqa: BLE001 - the names are still worth printing
            pass
    print_preview(preview_rows(loaded.model, inputs), image)
    print('\nPass any name above to --target-layers; run without --preview-model to draw.',
          file=sys.stderr)
    return 0
