# The demo RetinaNet (mmdet) with box activation maps and FPN feature maps drawn while mmdet's
# own tools/test.py tests it:
#   python <site-packages>/mmdet/.mim/tools/test.py configs/hooks/det_retinanet_boxam_hooks.py \
#       demo/checkpoints/det_retinanet.pth
_base_ = ['../demo/det_retinanet.py']

custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
custom_hooks = [
    # target_layers left out: the FPN levels the head reads (neck.fpn_convs[0..2])
    dict(type='mmcam.BoxAMVisualizationHook', phases=['val', 'test'], methods=['gradcam'],
         score_thr=0.3, per_box=True, max_samples=4),
    dict(type='mmcam.FeatMapVisualizationHook', phases=['test'], target_layers=['neck'],
         max_samples=4),
]
