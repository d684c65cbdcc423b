"""Run an OpenMMLab tool script as one rank of a CPU (gloo) job started by torchrun.

mmengine's ``--launcher pytorch`` calls ``torch.cuda.set_device`` and so cannot start on a
machine without a GPU. This launcher opens the gloo process group itself and runs the tool
with ``--launcher none``: mmengine's samplers, evaluators and ``mmengine.dist`` helpers see the
initialised group and behave as in any distributed run (the model is not DDP-wrapped, which
testing does not need).

Teardown: when the ranks left at different moments, gloo's tear-down of the group (or of its
threads at interpreter exit) sometimes aborted the rank that stayed ("terminate called without
an active exception", SIGABRT; seen once in CI). So the ranks meet at a monitored barrier once
the tool is done, and then leave with the tool's exit status through ``os._exit`` after flushing
their output, which skips that tear-down.

Usage: torchrun --nproc_per_node 2 tests/_cpu_dist_launch.py TOOL.py [tool arguments...]
"""
import os
import runpy
import sys
import traceback
from datetime import timedelta

import torch.distributed as dist


def _run_tool(tool: str) -> int:
    try:
        runpy.run_path(tool, run_name='__main__')
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # noqa: B902 - report any failure as this rank's exit status
        traceback.print_exc()
        return 1
    return 0


if __name__ == '__main__':
    dist.init_process_group('gloo')
    tool = sys.argv[1]
    sys.argv = [tool, *sys.argv[2:], '--launcher', 'none']
    status = _run_tool(tool)
    try:
        dist.monitored_barrier(timeout=timedelta(seconds=120))
    except RuntimeError:  # the other rank failed: its own status says why
        traceback.print_exc()
        status = status or 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
