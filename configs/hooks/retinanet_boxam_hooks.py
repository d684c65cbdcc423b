# mmdet's RetinaNet (ResNet-18 FPN, as the mmdet wheel ships it) with box activation maps and
# FPN feature maps drawn while it is tested; the same works for any detector box AM supports.
#   python <site-packages>/mmdet/.mim/tools/test.py configs/hooks/retinanet_boxam_hooks.py \
#       CHECKPOINT
# Pictures go to <work_dir>/<timestamp>/vis_data/vis_image/.
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']

custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
custom_hooks = [
    # target_layers left out: the FPN levels the head reads (neck.fpn_convs[0..4])
    dict(type='mmcam.BoxAMVisualizationHook', phases=['val', 'test'], methods=['gradcam'],
         score_thr=0.3, topk=10, per_box=False, max_samples=4),
    dict(type='mmcam.FeatMapVisualizationHook', phases=['test'], target_layers=['neck'],
         max_samples=4),
]
