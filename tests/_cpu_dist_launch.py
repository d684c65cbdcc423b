"""Run an OpenMMLab tool script as one rank of a CPU (gloo) job started by torchrun.

mmengine's ``--launcher pytorch`` calls ``torch.cuda.set_device`` and so cannot start on a
machine without a GPU. This launcher opens the gloo process group itself and runs the tool
with ``--launcher none``: mmengine's samplers, evaluators and ``mmengine.dist`` helpers see the
initialised group and behave as in any distributed run (the model is not DDP-wrapped, which
testing does not need).

Usage: torchrun --nproc_per_node 2 tests/_cpu_dist_launch.py TOOL.py [tool arguments...]
"""
import runpy
import sys

import torch.distributed as dist

if __name__ == '__main__':
    dist.init_process_group('gloo')
    tool = sys.argv[1]
    sys.argv = [tool, *sys.argv[2:], '--launcher', 'none']
    try:
        runpy.run_path(tool, run_name='__main__')
    finally:
        dist.destroy_process_group()
