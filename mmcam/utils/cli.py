"""What every mmcam command-line tool does with an error: one line, no traceback."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable, Optional, Sequence

from mmcam.utils.checkpoint import UnsafeCheckpointError
from mmcam.utils.errors import InputError

#: Errors whose message already says what to do; anything else is reported with its type.
USER_ERRORS = (InputError, UnsafeCheckpointError, FileNotFoundError)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every tool takes, with one meaning: config overrides, the unsafe-checkpoint
    opt-in and tracebacks."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config settings, key=value (e.g. '
                        'model.test_cfg.score_thr=0.1); applied to the model that is built')
    parser.add_argument('--allow-unsafe-checkpoint', action='store_true',
                        help='load a checkpoint that holds arbitrary pickled objects (only for '
                        'files you trust: unpickling can run code)')
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
        print(f'{prog}: interrupted', file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line for users, traceback with --debug
        if getattr(args, 'debug', False):
            raise
        if isinstance(err, USER_ERRORS):
            text = str(err).strip()
            print(f'{prog}: error: {text.splitlines()[0] if text else type(err).__name__}',
                  file=sys.stderr)
            return 2
        print(f'{prog}: error: {_first_line(err)} (run with --debug for the traceback)',
              file=sys.stderr)
        return 1


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f'{type(err).__name__}: {text.splitlines()[0]}' if text else type(err).__name__
