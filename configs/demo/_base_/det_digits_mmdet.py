# Data and runtime shared by the demo mmdet detectors (Faster R-CNN, RetinaNet): the same digit
# scenes, recipe and hooks as the mmyolo demo detectors (_base_/det_digits.py), through mmdet's
# own pipeline.  The test pipeline is mmdet's usual one, unedited by mmcam: a keep-ratio Resize
# (the long side to 160 px) and, in the data preprocessor, padding to a multiple of 32; no
# letterbox.  Re-train: python tools/train_demo.py det_faster_rcnn (or det_retinanet).
_base_ = ['./det_digits.py']

default_scope = 'mmdet'
img_scale = (160, 160)  # width, height: the scenes' long side (160 px) stays as it is

data_preprocessor = dict(
    type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_size_divisor=32)
# A quarter-width ResNet-18 (stages of 32, 64, 128, 256 channels), trained from scratch, so
# BatchNorm trains too.
backbone = dict(
    type='ResNet', depth=18, base_channels=32, num_stages=4, out_indices=(0, 1, 2, 3),
    frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
    style='pytorch')
backbone_channels = [32, 64, 128, 256]

# No flips (a mirrored digit is not the same digit); small affine warps and colour changes, as
# the mmyolo demo RTMDet needed to stop memorising the 800 training scenes.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomAffine', max_rotate_degree=8.0, max_translate_ratio=0.1,
         scaling_ratio_range=(0.75, 1.25), max_shear_degree=5.0, border_val=(114, 114, 114)),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PhotoMetricDistortion'),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(2, 2)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


# The mmyolo base's loaders, with mmdet's dataset class and collate function.
train_dataloader = dict(collate_fn=dict(type='pseudo_collate'),
                        dataset=dict(type='CocoDataset', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='CocoDataset', pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(type='CocoDataset', pipeline=test_pipeline))
