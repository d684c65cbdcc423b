"""Box-level activation maps of a detector:
``python demo/boxam_vis_demo.py IMG CONFIG CHECKPOINT [options]``.

The tool lives in :mod:`mmcam.cli.boxam` (``--help`` lists the options); this file is its entry
point where users of OpenMMLab's tools expect it.
"""
import sys

from mmcam.cli.boxam import main

if __name__ == '__main__':
    sys.exit(main())
