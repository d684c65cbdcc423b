"""What every mmcam command-line tool does with an error: one line, no traceback."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

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


def run_tool(prog: str, run: Callable[[argparse.Namespace], int],
             args: argparse.Namespace) -> int:
    """Call ``run(args)``; turn an exception into one line on stderr and an exit status.

    Exit status: what ``run`` returns; 2 for a user error (bad input or option, as argparse
    does), 1 for anything else, 130 on Ctrl-C. ``--debug`` lets the traceback through.
    """
    try:
        return run(args)
    except KeyboardInterrupt:
        print(f'{prog}: interrupted', file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line for users, traceback with --debug
        if getattr(args, 'debug', False):
            raise
        text = str(err).strip()
        message = text.splitlines()[0] if text else type(err).__name__
        if isinstance(err, USER_ERRORS):
            print(f'{prog}: error: {message}', file=sys.stderr)
            return 2
        print(f'{prog}: error: {type(err).__name__}: {message} (run with --debug for the '
              'traceback)', file=sys.stderr)
        return 1
