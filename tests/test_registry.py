"""mmcam's parts build by type name from configs, as a plugin's should."""
from mmengine.config import Config
from mmengine.registry import VISUALIZERS


def test_custom_imports_make_mmcam_parts_buildable(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)\n"
                        "visualizer = dict(type='mmcam.CAMVisualizer', name='from_config')\n")
    cfg = Config.fromfile(str(cfg_file))  # runs the custom import
    visualizer = VISUALIZERS.build(cfg.visualizer)
    from mmcam.visualization import CAMVisualizer
    assert type(visualizer) is CAMVisualizer


def test_register_all_modules_populates_the_mmcam_scope():
    from mmcam.registry import VISUALIZERS as MMCAM_VISUALIZERS
    from mmcam.registry import register_all_modules
    register_all_modules()
    assert 'CAMVisualizer' in MMCAM_VISUALIZERS.module_dict
