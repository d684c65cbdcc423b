# The demo YOLOv5 with box activation maps and neck feature maps drawn while it is tested.
#   python <site-packages>/mmyolo/.mim/tools/test.py configs/hooks/det_yolov5_boxam_hooks.py \
#       demo/checkpoints/det_yolov5.pth
_base_ = ['../demo/det_yolov5.py']

custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
custom_hooks = [
    dict(type='mmcam.BoxAMVisualizationHook', phases=['val', 'test'], methods=['gradcam'],
         score_thr=0.3, per_box=True, max_samples=4),
    dict(type='mmcam.FeatMapVisualizationHook', phases=['test'], target_layers=['neck'],
         max_samples=4),
]
