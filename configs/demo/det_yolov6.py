# A YOLOv6 detector a little narrower than YOLOv6-n (deepen 0.33, widen 0.1875 instead of 0.25)
# for the digit scenes.  At widen 0.25 its RepVGG blocks made a 9.7 MB checkpoint (test mAP@0.5
# 0.966), too big for the 25 MB all demo models share.  Trained in two steps (fine_tune below):
# 48 epochs from scratch at 160 x 160, then 12 epochs at the 320 x 320 input of
# _base_/det_digits_320.py, where its per-box GradCAM peaks in its own box for 97.3 % of the
# boxes of 80 held-out scenes instead of 88.7 %.  Re-train: python tools/train_demo.py det_yolov6
_base_ = ['./_base_/det_digits_320.py']

deepen_factor = 0.33
widen_factor = 0.1875
norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)

model = dict(
    type='YOLODetector',
    data_preprocessor=dict(
        type='YOLOv5DetDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
        bgr_to_rgb=True),
    backbone=dict(
        type='YOLOv6EfficientRep', deepen_factor=deepen_factor, widen_factor=widen_factor,
        norm_cfg=norm_cfg, act_cfg=dict(type='ReLU', inplace=True)),
    neck=dict(
        type='YOLOv6RepPAFPN', deepen_factor=deepen_factor, widen_factor=widen_factor,
        in_channels=[256, 512, 1024], out_channels=[128, 256, 512], num_csp_blocks=12,
        norm_cfg=norm_cfg, act_cfg=dict(type='ReLU', inplace=True)),
    bbox_head=dict(
        type='YOLOv6Head',
        head_module=dict(
            type='YOLOv6HeadModule', num_classes=10, in_channels=[128, 256, 512],
            widen_factor=widen_factor, norm_cfg=norm_cfg,
            act_cfg=dict(type='SiLU', inplace=True), featmap_strides=[8, 16, 32]),
        loss_bbox=dict(type='IoULoss', iou_mode='siou', bbox_format='xyxy', reduction='mean',
                       loss_weight=2.5, return_iou=False)),
    train_cfg=dict(
        initial_epoch=4,
        initial_assigner=dict(type='BatchATSSAssigner', num_classes=10, topk=9,
                              iou_calculator=dict(type='mmdet.BboxOverlaps2D')),
        assigner=dict(type='BatchTaskAlignedAssigner', num_classes=10, topk=13, alpha=1,
                      beta=6)),
    test_cfg=_base_.model_test_cfg)

train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline_affine))
fine_tune = dict(epochs=12, lr=1e-3, warmup_iters=50, first_scale=(160, 160))
