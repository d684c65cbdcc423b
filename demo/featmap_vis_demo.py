"""Feature maps of any layers of a detector or classifier:
``python demo/featmap_vis_demo.py IMG CONFIG CHECKPOINT [options]``.

The tool lives in :mod:`mmcam.cli.featmap` (``--help`` lists the options); this file is its entry
point where users of OpenMMLab's tools expect it.
"""
import sys

from mmcam.cli.featmap import main

if __name__ == '__main__':
    sys.exit(main())
