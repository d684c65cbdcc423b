# Data and runtime shared by the demo digit classifiers (mmpretrain, single-digit scenes written
# by tools/make_digit_scenes.py into data/digit_scenes/cls: the val and test splits are 96 x 96
# photo scenes; 60 % of the training scenes are varied, 64-176 px, on photos or synthetic
# clutter, digits of any colour and contrast at 25-85 % of the side, see
# DigitSceneGenerator.varied_classification_scene; the Resize below makes every input 96 x 96).
default_scope = 'mmpretrain'
data_root = 'data/digit_scenes/cls/'
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
metainfo = dict(classes=classes)
input_size = 96

data_preprocessor = dict(
    num_classes=10,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# No flips: a mirrored digit is not the same digit.  The resize makes any input (for example
# the 128 x 128 two-digit scenes) the size the model was trained on.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size)),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size)),
    dict(type='PackInputs'),
]


def _loader(split, pipeline, shuffle, batch_size):
    return dict(
        batch_size=batch_size,
        num_workers=1,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(
            type='CustomDataset',
            data_root=data_root,
            ann_file=f'{split}.txt',
            data_prefix='',
            metainfo=metainfo,
            pipeline=pipeline))


train_dataloader = _loader('train', train_pipeline, True, 32)
val_dataloader = _loader('val', test_pipeline, False, 100)
test_dataloader = _loader('test', test_pipeline, False, 100)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1000, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
