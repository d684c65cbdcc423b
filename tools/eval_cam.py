"""Explanation quality over a config's test set, with an HTML report:
``python tools/eval_cam.py CONFIG CHECKPOINT --methods GradCAM LayerCAM --work-dir DIR``.

Also under torchrun (``torchrun --nproc-per-node 2 tools/eval_cam.py ...``): the processes
split the dataset and rank 0 writes the results. The tool lives in
:mod:`mmcam.evaluation.tool` (``--help`` lists the options).
"""
import sys

from mmcam.evaluation.tool import main

if __name__ == '__main__':
    sys.exit(main())
