# YOLOv5-n sized detector (deepen 0.33, widen 0.25) for the digit scenes, 160 x 160 input,
# trained from scratch.  Re-train: python tools/train_demo.py det_yolov5
_base_ = ['./_base_/det_digits.py']

deepen_factor = 0.33
widen_factor = 0.25
strides = [8, 16, 32]
norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
# Digit boxes are upright, about 5-30 px wide and 14-34 px tall at the 160 px input.
anchors = [[(6, 14), (10, 20), (14, 26)], [(18, 30), (24, 36), (32, 44)],
           [(40, 56), (56, 72), (80, 100)]]

model = dict(
    type='YOLODetector',
    data_preprocessor=dict(
        type='YOLOv5DetDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
        bgr_to_rgb=True),
    backbone=dict(
        type='YOLOv5CSPDarknet', deepen_factor=deepen_factor, widen_factor=widen_factor,
        norm_cfg=norm_cfg, act_cfg=dict(type='SiLU', inplace=True)),
    neck=dict(
        type='YOLOv5PAFPN', deepen_factor=deepen_factor, widen_factor=widen_factor,
        in_channels=[256, 512, 1024], out_channels=[256, 512, 1024], num_csp_blocks=3,
        norm_cfg=norm_cfg, act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(
        type='YOLOv5Head',
        head_module=dict(
            type='YOLOv5HeadModule', num_classes=10, in_channels=[256, 512, 1024],
            widen_factor=widen_factor, featmap_strides=strides, num_base_priors=3),
        prior_generator=dict(type='mmdet.YOLOAnchorGenerator', base_sizes=anchors,
                             strides=strides),
        # YOLOv5's weights, rescaled for 10 classes and a 160 px input as YOLOv5 does.
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                      loss_weight=0.5 * 10 / 80),
        loss_bbox=dict(type='IoULoss', iou_mode='ciou', bbox_format='xywh', eps=1e-7,
                       reduction='mean', loss_weight=0.05, return_iou=True),
        loss_obj=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                      loss_weight=1.0 * (160 / 640)**2),
        prior_match_thr=4.,
        # Only the cell that holds a box's centre learns to predict it (YOLOv5 also takes the
        # two nearest neighbour cells: near_neighbor_thr=0.5).  With neighbours, the prior that
        # predicted a box lay outside that box for 41 of 94 boxes of the box-AM test scenes, and
        # the box's GradCAM (which peaks at its prior's cell) fell inside its own box for 83 %;
        # centre cells only: 94.3 % and 95.8 % on two sets of 20 held-out scenes, test
        # mAP@0.5 0.822 (with neighbours 0.838).  See docs/en/demo_models.md.
        near_neighbor_thr=0.0,
        obj_level_weights=[4., 1., 0.4]),
    test_cfg=_base_.model_test_cfg)
