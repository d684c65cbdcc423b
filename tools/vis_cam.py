"""Class activation maps of an mmpretrain classifier:
``python tools/vis_cam.py IMG CONFIG CHECKPOINT [options]``.

The tool lives in :mod:`mmcam.cli.vis_cam` (``--help`` lists the options); this file is its entry
point where users of OpenMMLab's tools expect it.
"""
import sys

from mmcam.cli.vis_cam import main

if __name__ == '__main__':
    sys.exit(main())
