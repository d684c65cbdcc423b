# RetinaNet (mmdet) for the digit scenes: a quarter-width ResNet-18 + FPN (strides 8, 16, 32),
# trained from scratch.  Digits are 5-30 px wide and 14-34 px tall at the 160 px input, so the
# anchors start at 16 px (mmdet's COCO anchors start at 32 px) and are square or tall.
# Re-train: python tools/train_demo.py det_retinanet
_base_ = ['./_base_/det_digits_mmdet.py']

model = dict(
    type='RetinaNet',
    data_preprocessor=_base_.data_preprocessor,
    backbone=_base_.backbone,
    neck=dict(type='FPN', in_channels=_base_.backbone_channels, out_channels=64, start_level=1,
              add_extra_convs='on_input', num_outs=3),
    bbox_head=dict(
        type='RetinaHead', num_classes=10, in_channels=64, stacked_convs=2, feat_channels=64,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2, scales_per_octave=2,
                              ratios=[1.0, 2.0], strides=[8, 16, 32]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
