"""mmpretrain's own ``tools/visualization/vis_cam.py`` (shipped in its wheel), run as users run
it, with the grad-cam >= 1.5 shim; same arguments.

``--dump-map FILE.npy`` (ours, taken off the arguments before the tool sees them) also saves
the grayscale map the tool draws, so that the benchmark can compare it with mmcam's.

    python benchmarks/reference/mmpretrain_vis_cam.py IMG CONFIG CHECKPOINT [tool options]
"""
import os
import runpy
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from benchmarks.reference import install_shim  # noqa: E402


def main() -> None:
    argv = sys.argv[1:]
    dump = None
    if '--dump-map' in argv:
        i = argv.index('--dump-map')
        dump = argv[i + 1]
        del argv[i:i + 2]
    install_shim()
    import mmpretrain
    tool = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'tools',
                        'visualization', 'vis_cam.py')
    sys.argv = [tool] + argv
    if dump:
        import numpy as np
        from pytorch_grad_cam.base_cam import BaseCAM
        call = BaseCAM.__call__

        def keep(self, *args, **kwargs):
            maps = call(self, *args, **kwargs)
            np.save(dump, np.asarray(maps[0], np.float32))
            return maps
        BaseCAM.__call__ = keep
    runpy.run_path(tool, run_name='__main__')


if __name__ == '__main__':
    main()
