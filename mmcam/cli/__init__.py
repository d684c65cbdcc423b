"""The command-line tools, importable: ``vis_cam``, ``featmap`` and ``boxam``.

``tools/vis_cam.py``, ``demo/featmap_vis_demo.py`` and ``demo/boxam_vis_demo.py`` are thin entry
points to these modules; :mod:`mmcam.cli.common` is what the three share (options, output names,
exit status, messages). This is the top layer: nothing else in mmcam imports it.
"""
