# Plain-resize test pipeline for YOLOv5, as mmyolo's feature-map docs describe:
# the letterbox (YOLOv5KeepRatioResize + LetterResize) is replaced by one
# mmdet.Resize that stretches the image to the network input, so a feature map covers exactly
# the image.
#
# mmcam's tools do not need it: they undo the letterbox from the pipeline's own metadata
# (scale_factor, pad_param). Use it to compare with mmyolo's demos or to see the maps the model
# computes without padding. Put it next to the model's own base in a config of yours:
#
#   _base_ = ['<site-packages>/mmyolo/.mim/configs/yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py',
#             '<mmcam>/configs/test_pipelines/yolov5_resize.py']
#   test_dataloader = dict(dataset=dict(pipeline=_base_.resize_test_pipeline))
#
# The scale below is the s/m/l models' img_scale; change it for other input sizes. The same
# change without any file, on the unchanged model config:
#   --cfg-options test_dataloader.dataset.pipeline.2.stretch_only=True
resize_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(640, 640), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
