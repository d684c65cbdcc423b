"""The visualization hooks inside a real mmengine Runner test loop."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner, save_checkpoint

from conftest import folder_loader
from mmcam.apis import LoadedModel

RESNET18 = 'resnet/resnet18_8xb32_in1k.py'


def _hook_counts(model: torch.nn.Module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, '_backward_pre_hooks', {})) for m in model.modules())


@pytest.fixture(scope='module')
def tiny_classification(tmp_path_factory, mmpretrain_configs):
    """Six real PNG files in two class folders, and a checkpoint of a 2-class ResNet-18."""
    root = tmp_path_factory.mktemp('hooks')
    rng = np.random.default_rng(0)
    for label in ('bright', 'dark'):
        (root / 'data' / label).mkdir(parents=True)
        for i in range(3):
            base = 170 if label == 'bright' else 60
            image = np.clip(base + rng.normal(0, 30, (40, 56, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / 'data' / label / f'{i}.png'), image)
    model = LoadedModel(str(mmpretrain_configs / RESNET18),
                        cfg_options={'model.head.num_classes': 2}).model
    save_checkpoint({'state_dict': model.state_dict(),
                     'meta': {'dataset_meta': {'classes': ('bright', 'dark')}}},
                    str(root / 'init.pth'))
    return root


def _test_cfg(mmpretrain_configs, root: Path, work_dir: Path, hooks=None) -> Config:
    cfg = Config.fromfile(str(mmpretrain_configs / RESNET18))
    cfg.work_dir = str(work_dir)
    cfg.load_from = str(root / 'init.pth')
    cfg.model.head.num_classes = 2
    cfg.model.head.topk = (1, )
    cfg.test_dataloader = folder_loader(root / 'data', [
        dict(type='ResizeEdge', scale=48, edge='short'), dict(type='CenterCrop', crop_size=32)])
    cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    # mmengine keeps one visualizer per name per process, and the default name is a
    # timestamp that two runners built in the same second share: give each its own.
    cfg.visualizer.name = f'visualizer_{work_dir}'
    cfg.env_cfg = dict(dist_cfg=dict(backend='gloo'))
    cfg.log_level = 'WARNING'
    if hooks:
        cfg.custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
        cfg.custom_hooks = hooks
    return cfg


def _pictures(work_dir: Path):
    return sorted(work_dir.glob('*/vis_data/vis_image/*.png'))


def test_cam_hook_draws_and_leaves_metrics_and_model_untouched(tmp_path, tiny_classification,
                                                               mmpretrain_configs):
    plain = Runner.from_cfg(_test_cfg(mmpretrain_configs, tiny_classification, tmp_path / 'a'))
    metrics_plain = plain.test()

    cfg = _test_cfg(mmpretrain_configs, tiny_classification, tmp_path / 'b',
                    hooks=[dict(type='mmcam.CAMVisualizationHook', phases=['test'],
                                methods=['GradCAM', 'EigenCAM'], max_samples=3)])
    cfg.visualizer = dict(type='UniversalVisualizer', name=cfg.visualizer.name, vis_backends=[
        dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
    runner = Runner.from_cfg(cfg)
    model = runner.model
    flags = [p.requires_grad for p in model.parameters()]
    hooks_before = _hook_counts(model)
    metrics_hooked = runner.test()

    assert metrics_hooked == metrics_plain
    assert _hook_counts(model) == hooks_before
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    pictures = _pictures(tmp_path / 'b')
    assert len(pictures) == 3, pictures  # max_samples, over two batches
    assert all('cam_test' in p.name for p in pictures)
    image = cv2.imread(str(pictures[0]))
    assert image is not None and image.shape[0] >= 32 and image.std() > 0
    assert not _pictures(tmp_path / 'a')
    # The same pictures reached TensorBoard.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events, = (tmp_path / 'b').glob('*/vis_data/events.out.tfevents.*')
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert len(accumulator.Tags()['images']) == 3


def _train(mmpretrain_configs, root: Path, work_dir: Path, hooks=None):
    """Two short epochs on the six images, validating after each; (losses, final weights)."""
    import json
    cfg = _test_cfg(mmpretrain_configs, root, work_dir, hooks)
    cfg.train_dataloader = folder_loader(root / 'data', [
        dict(type='RandomResizedCrop', scale=32), dict(type='RandomFlip', prob=0.5)])
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)
    cfg.val_dataloader, cfg.val_evaluator = cfg.test_dataloader, cfg.test_evaluator
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
    cfg.val_cfg = dict()
    cfg.optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    cfg.param_scheduler = []
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10)
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars, = work_dir.glob('*/vis_data/scalars.json')
    losses = [json.loads(line)['loss'] for line in scalars.read_text().splitlines()
              if '"loss"' in line]
    return losses, {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_hooks_in_a_training_run_change_nothing(tmp_path, tiny_classification,
                                                mmpretrain_configs):
    """The hooks in a real training run (validation every epoch): pictures per epoch, and the
    same losses and final weights as without them (no random numbers consumed). mmengine calls
    every hook's _after_iter funnel from after_train_iter; a hook that shadowed it broke this."""
    hooks = [dict(type='mmcam.CAMVisualizationHook', phases=['val'], max_samples=1,
                  methods=['GradCAM', 'EigenCAM']),
             dict(type='mmcam.FeatMapVisualizationHook', phases=['val'], max_samples=1,
                  target_layers=['backbone.layer4'])]
    plain_losses, plain_weights = _train(mmpretrain_configs, tiny_classification,
                                         tmp_path / 'plain')
    losses, weights = _train(mmpretrain_configs, tiny_classification, tmp_path / 'hooked', hooks)
    assert len(plain_losses) == 6 and losses == plain_losses
    for name, value in plain_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0, msg=name)
    pictures = [p.name for p in _pictures(tmp_path / 'hooked')]
    for epoch in (1, 2):  # step = epoch in the file names of the local backend
        assert sum(n.endswith(f'_{epoch}.png') for n in pictures) == 2, pictures
    assert not _pictures(tmp_path / 'plain')


def test_hook_failure_is_logged_once_and_testing_goes_on(tmp_path, tiny_classification,
                                                         mmpretrain_configs):
    # The neck pools to (B, C) vectors: no spatial map to explain, in every batch.
    cfg = _test_cfg(mmpretrain_configs, tiny_classification, tmp_path,
                    hooks=[dict(type='mmcam.CAMVisualizationHook', phases=['test'],
                                target_layers=['neck'], max_samples=6)])
    metrics = Runner.from_cfg(cfg).test()
    assert 'accuracy/top1' in metrics
    # Read the run's own log file: the logger's console handler may predate pytest's capture.
    log, = tmp_path.glob('*/*.log')
    text = log.read_text()
    assert text.count('CAMVisualizationHook skipped') == 1, text
    assert not _pictures(tmp_path)


def test_unknown_method_fails_when_the_config_is_built():
    from mmcam.engine.hooks import CAMVisualizationHook
    with pytest.raises(Exception, match='not a CAM method'):
        CAMVisualizationHook(methods=['NoSuchCAM'])


def test_featmap_hook_draws_pyramid_levels_of_a_classifier(tmp_path, tiny_classification,
                                                           mmpretrain_configs):
    cfg = _test_cfg(mmpretrain_configs, tiny_classification, tmp_path,
                    hooks=[dict(type='mmcam.FeatMapVisualizationHook', phases=['test'],
                                target_layers=['backbone.layer3', 'backbone.layer4'],
                                channel_reduction=None, topk=3, arrangement=(1, 3),
                                max_samples=2)])
    Runner.from_cfg(cfg).test()
    pictures = _pictures(tmp_path)
    assert len(pictures) == 2 and all('featmap_test' in p.name for p in pictures)
    assert cv2.imread(str(pictures[0])).std() > 0


def _demo_classifier_cfg(repo_root: Path, name: str, tmp_path: Path, batch_size: int,
                         hooks: list, imports=('mmcam', )) -> Config:
    """A demo classifier's config, testing its trained checkpoint on ``tmp_path/data`` into
    ``tmp_path/work`` with ``hooks``."""
    cfg = Config.fromfile(str(repo_root / 'configs' / 'demo' / f'{name}.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = str(repo_root / 'demo' / 'checkpoints' / f'{name}.pth')
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'data')
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False, batch_size=batch_size)
    cfg.visualizer.name = f'visualizer_{tmp_path}'
    cfg.log_level = 'WARNING'
    cfg.custom_imports = dict(imports=list(imports), allow_failed_imports=False)
    cfg.custom_hooks = hooks
    return cfg


def test_hooks_on_vit_tokens(tmp_path, repo_root):
    """The trained demo ViT in a Runner test loop: its blocks output (B, 65, C) tokens, which the
    hooks lay out on the 8 x 8 patch grid (the class token left out), as the CLIs do."""
    from mmcam.datasets.digit_scenes import write_classification
    write_classification(str(tmp_path / 'data'), 'test', 4, seed=5)
    cfg = _demo_classifier_cfg(repo_root, 'cls_vit', tmp_path, batch_size=2, hooks=[
        dict(type='mmcam.FeatMapVisualizationHook', phases=['test'],
             target_layers=['backbone.layers.1'], channel_reduction='squeeze_mean',
             max_samples=2),
        dict(type='mmcam.CAMVisualizationHook', phases=['test'], methods=['GradCAM'],
             max_samples=2)], imports=['mmcam', 'mmcam.models'])
    Runner.from_cfg(cfg).test()
    pictures = _pictures(tmp_path / 'work')
    assert sorted(p.name.split('_')[0] for p in pictures) == ['cam'] * 2 + ['featmap'] * 2, \
        pictures
    assert all(cv2.imread(str(p)).std() > 0 for p in pictures)


def _mmpretrain_tool(name: str) -> str:
    import mmpretrain
    return str(Path(mmpretrain.__file__).parent / '.mim' / 'tools' / name)


def test_two_process_torchrun_writes_each_picture_once(tmp_path, tiny_classification,
                                                       mmpretrain_configs):
    """mmpretrain's own tools/test.py under torchrun, 2 CPU processes (gloo).

    mmengine's pytorch launcher needs CUDA, so the ranks join the gloo group through
    tests/_cpu_dist_launch.py and run the tool with ``--launcher none``.
    """
    import os
    import socket
    import subprocess
    import sys
    cfg = _test_cfg(mmpretrain_configs, tiny_classification, tmp_path / 'work',
                    hooks=[dict(type='mmcam.CAMVisualizationHook', phases=['test'],
                                max_samples=2)])
    cfg.log_level = 'INFO'  # the metrics line
    cfg.dump(str(tmp_path / 'cfg.py'))
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(port), str(Path(__file__).resolve().parents[1]
                                           / '_cpu_dist_launch.py'),
           _mmpretrain_tool('test.py'), str(tmp_path / 'cfg.py'),
           str(tiny_classification / 'init.pth')]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pictures = _pictures(tmp_path / 'work')
    # 6 images, 3 per rank, at most 2 explained per rank: 4 pictures, from both ranks.
    assert len(pictures) == 4, pictures
    assert {p.name.split('_')[2] for p in pictures} == {'r0', 'r1'}
    assert 'accuracy/top1' in proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def tiny_detection(tmp_path_factory, repo_root):
    """Four held-out digit scenes (COCO json) and a checkpoint of the demo YOLOv5 config: the
    trained one when it is shipped, else its random init (boxes still come out at a low
    score threshold, which is all the plumbing needs)."""
    from mmcam.datasets.digit_scenes import write_detection
    root = tmp_path_factory.mktemp('det_hooks')
    write_detection(str(root), 'test', 4, seed=3)
    shipped = repo_root / 'demo' / 'checkpoints' / 'det_yolov5.pth'
    if shipped.is_file():
        return root, shipped
    torch.manual_seed(0)
    model = LoadedModel(str(repo_root / 'configs' / 'demo' / 'det_yolov5.py')).model
    save_checkpoint({'state_dict': model.state_dict(),
                     'meta': {'dataset_meta': {'classes': tuple('0123456789')}}},
                    str(root / 'init.pth'))
    return root, root / 'init.pth'


def _det_cfg(repo_root, root: Path, checkpoint: Path, work_dir: Path, hooks=None) -> Config:
    cfg = Config.fromfile(str(repo_root / 'configs' / 'demo' / 'det_yolov5.py'))
    cfg.work_dir, cfg.load_from, cfg.log_level = str(work_dir), str(checkpoint), 'WARNING'
    cfg.test_dataloader.dataset.data_root = str(root)
    cfg.test_dataloader.batch_size = 2
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    cfg.test_evaluator.ann_file = str(root / 'test.json')
    # mmengine keeps one visualizer per name per process: give each runner its own.
    cfg.visualizer.name = f'visualizer_{work_dir}'
    cfg.default_hooks.visualization = dict(type='mmdet.DetVisualizationHook', draw=False)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] != 'EMAHook']
    if hooks:
        cfg.custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
        cfg.custom_hooks += hooks
    return cfg


def test_boxam_and_featmap_hooks_in_a_detector_test_loop(tmp_path, tiny_detection, repo_root):
    root, checkpoint = tiny_detection
    metrics_plain = Runner.from_cfg(_det_cfg(repo_root, root, checkpoint, tmp_path / 'a')).test()
    hooks = [dict(type='mmcam.BoxAMVisualizationHook', phases=['test'],
                  methods=['gradcam', 'eigencam'], score_thr=0.01, topk=3, per_box=True,
                  max_samples=2),
             dict(type='mmcam.FeatMapVisualizationHook', phases=['test'],
                  target_layers=['neck'], max_samples=1)]
    runner = Runner.from_cfg(_det_cfg(repo_root, root, checkpoint, tmp_path / 'b', hooks))
    model = runner.model
    hooks_before = _hook_counts(model)
    metrics_hooked = runner.test()
    assert metrics_hooked == metrics_plain
    assert _hook_counts(model) == hooks_before
    assert all(p.grad is None for p in model.parameters())
    pictures = [p.name for p in _pictures(tmp_path / 'b')]
    assert sum(n.startswith('boxam_test') for n in pictures) == 4, pictures  # 2 x 2 methods
    assert sum(n.startswith('featmap_test') for n in pictures) == 1, pictures
    assert sum('gradcam' in n for n in pictures) == 2


def test_mmpretrain_test_tool_with_the_example_hook_config(tmp_path, repo_root):
    """configs/hooks/cls_resnet_cam_hooks.py through mmpretrain's own tools/test.py on the
    trained demo classifier: pictures written, accuracy identical to the plain config."""
    import json
    import subprocess
    import sys
    checkpoint = repo_root / 'demo' / 'checkpoints' / 'cls_resnet.pth'
    from mmcam.datasets.digit_scenes import write_classification
    data = tmp_path / 'data'
    write_classification(str(data), 'test', 24, seed=5)
    options = [f'test_dataloader.dataset.data_root={data}', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False', 'test_dataloader.batch_size=8']

    def run(config: str, work_dir: Path) -> dict:
        cmd = [sys.executable, _mmpretrain_tool('test.py'), str(repo_root / config),
               str(checkpoint), '--work-dir', str(work_dir), '--out', str(work_dir / 'p.pkl'),
               '--cfg-options', *options]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                              cwd=str(repo_root))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        scalars, = work_dir.glob('*/*.json')
        return json.loads(scalars.read_text().splitlines()[-1])

    plain = run('configs/demo/cls_resnet.py', tmp_path / 'plain')
    hooked = run('configs/hooks/cls_resnet_cam_hooks.py', tmp_path / 'hooked')
    assert hooked['accuracy/top1'] == plain['accuracy/top1']
    pictures = [p.name for p in _pictures(tmp_path / 'hooked')]
    assert sum(n.startswith('cam_test') for n in pictures) == 8, pictures
    assert sum(n.startswith('featmap_test') for n in pictures) == 4, pictures
    assert not _pictures(tmp_path / 'plain')


def test_batch_samples_on_the_original_image_match_the_cli_path(tiny_detection, repo_root):
    """What the box-AM hook draws on (a Runner batch re-read with original=True) has the same
    geometry as what the command-line tools prepare from the file itself."""
    from mmengine.dataset import pseudo_collate
    root, checkpoint = tiny_detection
    loaded = LoadedModel(str(repo_root / 'configs' / 'demo' / 'det_yolov5.py'), str(checkpoint))
    cfg = _det_cfg(repo_root, root, checkpoint, root / 'unused')
    from mmyolo.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    wrapped = LoadedModel.from_model(loaded.model, 'mmyolo')
    for i, sample in enumerate(wrapped.samples_from_batch(batch, [0, 1], original=True)):
        reference, = loaded.prepare([sample.path])
        assert sample.image.shape == reference.image.shape
        assert sample.geometry == reference.geometry, (sample.geometry, reference.geometry)
        assert torch.allclose(sample.inputs, reference.inputs)


def test_boxam_hook_and_cli_give_the_same_maps(tmp_path, tiny_detection, repo_root):
    """The box-AM hook (a real Runner's model and batch) and demo/boxam_vis_demo.py compute the
    same per-box maps for the same image, with the per-pixel default and --explain both."""
    from mmengine.dataset import pseudo_collate
    from mmyolo.registry import DATASETS

    from mmcam.engine.hooks import BoxAMVisualizationHook, model_state_restored
    root, checkpoint = tiny_detection
    config = repo_root / 'configs' / 'demo' / 'det_yolov5.py'
    cfg = _det_cfg(repo_root, root, checkpoint, tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(str(checkpoint))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batch = pseudo_collate([dataset[0]])
    hook = BoxAMVisualizationHook(methods=['gradcam'], explain='both', score_thr=0.3, topk=3)
    inferencer = hook._get_inferencers(runner.model, runner)['gradcam']
    with model_state_restored(runner.model):  # as the hook runs it: eval mode, gradients on
        sample, = inferencer.loaded.samples_from_batch(batch, [0], original=True)
        from_hook = inferencer.explain(sample)
    assert len(from_hook.detections) > 0

    from mmcam.cli import boxam as demo
    out = tmp_path / 'cli'
    assert demo.main([sample.path, str(config), str(checkpoint), '--explain', 'both',
                      '--topk', '3', '--per-box', '--save-cam', '--device', 'cpu',
                      '--out-dir', str(out)]) == 0
    stem = Path(sample.path).stem
    from_cli = np.stack([np.load(out / f'{stem}_box{i}.npy')
                         for i in range(len(from_hook.detections))])
    np.testing.assert_allclose(from_cli, from_hook.box_maps, atol=1e-4)
    np.testing.assert_allclose(np.load(out / f'{stem}.npy'), from_hook.combined, atol=1e-4)


def _mmdet_tool(name: str) -> str:
    import mmdet
    return str(Path(mmdet.__file__).parent / '.mim' / 'tools' / name)


@pytest.mark.parametrize('config, trained', [
    ('configs/hooks/det_yolov5_boxam_hooks.py', 'det_yolov5'),
    # mmdet's own detector family: the demo RetinaNet, and mmdet's shipped COCO RetinaNet
    # (an mmdet:: base config) with random weights, for the plumbing through mmdet's tool
    ('configs/hooks/det_retinanet_boxam_hooks.py', 'det_retinanet'),
    ('configs/hooks/retinanet_boxam_hooks.py', None),
])
def test_mmdet_test_tool_with_box_am_hooks(tmp_path, tiny_detection, repo_root, config,
                                           trained):
    """mmdet's own tools/test.py with a config that adds BoxAMVisualizationHook: the pictures
    are written and every metric equals the run without the hooks."""
    import json
    import subprocess
    import sys
    root, checkpoint = tiny_detection
    cfg = Config.fromfile(str(repo_root / config))
    settings = {'test_dataloader.dataset.data_root': str(root),
                'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
                'test_dataloader.batch_size': 2, 'test_evaluator.ann_file': str(root / 'test.json')}
    if not trained:
        from mmengine.runner.checkpoint import save_checkpoint
        settings.update({'model.bbox_head.num_classes': 10,
                         'test_dataloader.dataset.ann_file': 'test.json',
                         'test_dataloader.dataset.data_prefix.img': '',
                         'test_dataloader.dataset.metainfo': dict(classes=tuple('0123456789')),
                         # random weights score low: explain the two best boxes
                         'custom_hooks.0.score_thr': 0.0, 'custom_hooks.0.topk': 2})
        cfg.merge_from_dict(settings)
        cfg.test_dataloader.dataset.pipeline[1].scale = (320, 320)
        torch.manual_seed(0)
        checkpoint = tmp_path / 'retinanet.pth'
        save_checkpoint({'state_dict': LoadedModel(cfg).model.state_dict()}, str(checkpoint))
    else:
        cfg.merge_from_dict(settings)
        checkpoint = repo_root / 'demo' / 'checkpoints' / f'{trained}.pth'
    cfg.dump(str(tmp_path / 'hooked.py'))
    cfg.custom_hooks = []  # the same config without the hooks
    cfg.dump(str(tmp_path / 'plain.py'))

    def run(name: str) -> dict:
        cmd = [sys.executable, _mmdet_tool('test.py'), str(tmp_path / f'{name}.py'),
               str(checkpoint), '--work-dir', str(tmp_path / name)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                              cwd=str(repo_root))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        scalars, = (tmp_path / name).glob('*/*.json')
        return json.loads(scalars.read_text().splitlines()[-1])

    plain, hooked = run('plain'), run('hooked')
    assert {k: v for k, v in hooked.items() if 'time' not in k} == \
        {k: v for k, v in plain.items() if 'time' not in k}
    key = 'coco/bbox_mAP_50'
    assert key in plain and (plain[key] > 0.5 if trained else True), plain
    pictures = [p.name for p in _pictures(tmp_path / 'hooked')]
    assert sum(n.startswith('boxam_test') for n in pictures) == 4, pictures
    assert not _pictures(tmp_path / 'plain')


def _awkward_images(folder: Path) -> list:
    """The image kinds of the command-line matrix that a dataset pipeline can read: grayscale,
    RGBA, palette, 16-bit, 1 x 1, a space and non-ASCII characters in the name."""
    from PIL import Image
    from skimage import data
    folder.mkdir(parents=True)
    rgb = cv2.resize(data.chelsea(), (120, 90))
    cv2.imwrite(str(folder / 'gray.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(
        folder / 'rgba.png')
    Image.fromarray(rgb).quantize(64).save(folder / 'palette.png')
    cv2.imwrite(str(folder / 'deep16.png'), (rgb.astype(np.uint16) * 257)[..., ::-1])
    cv2.imwrite(str(folder / 'one.png'), rgb[:1, :1, ::-1])
    Image.fromarray(rgb).save(folder / '猫 ünïcode.png')
    return sorted(p.name for p in folder.iterdir())


def test_hooks_over_the_awkward_image_kinds(tmp_path, tiny_classification, mmpretrain_configs,
                                            tiny_detection, repo_root):
    """The three hooks in Runner test loops over datasets of the awkward image kinds: a picture
    for every image, none blank, metrics as without the hooks."""
    import json
    import shutil
    root = tmp_path / 'cls'
    names = _awkward_images(root / 'data' / 'kinds')
    shutil.copy(tiny_classification / 'init.pth', root / 'init.pth')
    hooks = [dict(type='mmcam.CAMVisualizationHook', phases=['test'], max_samples=10),
             dict(type='mmcam.FeatMapVisualizationHook', phases=['test'], max_samples=10,
                  target_layers=['backbone.layer4'])]
    plain = Runner.from_cfg(_test_cfg(mmpretrain_configs, root, tmp_path / 'a')).test()
    hooked = Runner.from_cfg(_test_cfg(mmpretrain_configs, root, tmp_path / 'b', hooks)).test()
    assert hooked == plain
    pictures = _pictures(tmp_path / 'b')
    assert len(pictures) == 2 * len(names), [p.name for p in pictures]
    assert all(cv2.imread(str(p)).std() > 0 for p in pictures)

    # box AM: the same images listed in a COCO file (one box each, for the metric)
    det_root = tmp_path / 'det'
    names = _awkward_images(det_root / 'kinds')
    images, anns = [], []
    for i, name in enumerate(names, 1):
        h, w = cv2.imread(str(det_root / 'kinds' / name), cv2.IMREAD_UNCHANGED).shape[:2]
        images.append(dict(id=i, file_name=f'kinds/{name}', height=h, width=w))
        anns.append(dict(id=i, image_id=i, category_id=0, bbox=[0, 0, w, h], area=w * h,
                         iscrowd=0))
    (det_root / 'test.json').write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=i, name=str(i)) for i in range(10)])))
    _, checkpoint = tiny_detection
    cfg = _det_cfg(repo_root, det_root, checkpoint, tmp_path / 'c', [
        dict(type='mmcam.BoxAMVisualizationHook', phases=['test'], score_thr=0.0, topk=2,
             max_samples=10)])
    Runner.from_cfg(cfg).test()
    pictures = [p for p in _pictures(tmp_path / 'c') if p.name.startswith('boxam')]
    assert len(pictures) == len(names), [p.name for p in pictures]
    assert all(cv2.imread(str(p)).std() > 0 for p in pictures)


def test_a_long_validation_with_hooks_holds_no_more_memory(tmp_path, repo_root):
    """Loosely (benchmarks/hook_memory.py measures 300 images): testing 16 images again and
    again with the three hooks drawing every sample leaves the resident memory where the
    previous run left it."""
    from _memory import rss_mib
    from mmcam.datasets.digit_scenes import write_classification
    write_classification(str(tmp_path / 'data'), 'test', 16, seed=6)
    cfg = _demo_classifier_cfg(repo_root, 'cls_resnet', tmp_path, batch_size=8, hooks=[
        dict(type='mmcam.CAMVisualizationHook', phases=['test'], max_samples=16),
        dict(type='mmcam.FeatMapVisualizationHook', phases=['test'], max_samples=16,
             target_layers=['backbone.layer4'])])
    runner = Runner.from_cfg(cfg)
    after = []
    for _ in range(3):
        runner.test()
        after.append(rss_mib())
    assert len(_pictures(tmp_path / 'work')) >= 32
    assert after[2] <= after[1] * 1.05 + 20, after  # MiB
