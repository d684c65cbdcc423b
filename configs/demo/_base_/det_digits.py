# Data and runtime shared by the demo digit detectors (mmyolo).  The scenes, written by
# tools/make_digit_scenes.py into data/digit_scenes/det, are 160x112, 112x160 or 144x144 with
# 1 to 5 digits; every image is letterboxed to a 160 x 160 input.
default_scope = 'mmyolo'
data_root = 'data/digit_scenes/det/'
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
metainfo = dict(classes=classes)
num_classes = 10
img_scale = (160, 160)  # width, height

# A light pipeline (no mosaic, no flips: a mirrored digit is not the same digit).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='YOLOv5KeepRatioResize', scale=img_scale),
    dict(type='LetterResize', scale=img_scale, allow_scale_up=False, pad_val=dict(img=114)),
    dict(type='YOLOv5HSVRandomAug'),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'pad_param')),
]
# The same plus small random affine warps (scale, shift, rotation, shear), for the heads that
# memorised the 800 training scenes without them (RTMDet: training classification loss 0.04
# while its val mAP@0.5 stayed at 0.71).
train_pipeline_affine = train_pipeline[:4] + [
    dict(type='YOLOv5RandomAffine', max_rotate_degree=8.0, max_translate_ratio=0.1,
         scaling_ratio_range=(0.75, 1.25), max_shear_degree=5.0, border_val=(114, 114, 114),
         min_area_ratio=0.3),
] + train_pipeline[4:]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='YOLOv5KeepRatioResize', scale=img_scale),
    dict(type='LetterResize', scale=img_scale, allow_scale_up=False, pad_val=dict(img=114)),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'pad_param')),
]


def _loader(split, pipeline, training):
    dataset = dict(type='YOLOv5CocoDataset', data_root=data_root, metainfo=metainfo,
                   ann_file=f'{split}.json', data_prefix=dict(img=''), pipeline=pipeline)
    loader = dict(batch_size=16, num_workers=1, persistent_workers=True,
                  sampler=dict(type='DefaultSampler', shuffle=training), dataset=dataset)
    if training:
        dataset.update(filter_cfg=dict(filter_empty_gt=True, min_size=4))
        loader.update(collate_fn=dict(type='yolov5_collate'))
    else:
        dataset.update(test_mode=True)
        loader.update(drop_last=False)
    return loader


train_dataloader = _loader('train', train_pipeline, True)
val_dataloader = _loader('val', test_pipeline, False)
test_dataloader = _loader('test', test_pipeline, False)
val_evaluator = dict(type='mmdet.CocoMetric', ann_file=data_root + 'val.json', metric='bbox')
test_evaluator = dict(type='mmdet.CocoMetric', ann_file=data_root + 'test.json', metric='bbox')

# The training recipe of every demo detector (RTMDet trains longer): AdamW rather than the
# YOLO families' SGD recipes, which learnt far too slowly from scratch here (YOLOv5: 0.18 val
# mAP@0.5 after 8 of 24 epochs, its classification loss barely moving).
max_epochs = 48
base_lr = 0.002
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=150),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=0, end=max_epochs,
         T_max=max_epochs, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=8)

model_test_cfg = dict(
    multi_label=True,
    nms_pre=1000,
    score_thr=0.001,
    nms=dict(type='nms', iou_threshold=0.65),
    max_per_img=100)

val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1000, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmdet.DetVisualizationHook'))
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         strict_load=False, priority=49)
]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='mmdet.DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
