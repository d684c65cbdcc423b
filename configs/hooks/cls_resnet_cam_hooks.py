# The demo digit classifier with CAMs and feature maps drawn while it is validated and tested.
#   python <site-packages>/mmpretrain/.mim/tools/test.py configs/hooks/cls_resnet_cam_hooks.py \
#       demo/checkpoints/cls_resnet.pth
# Pictures go to <work_dir>/<timestamp>/vis_data/vis_image/ (and to TensorBoard, below).
_base_ = ['../demo/cls_resnet.py']

custom_imports = dict(imports=['mmcam'], allow_failed_imports=False)
custom_hooks = [
    dict(type='mmcam.CAMVisualizationHook', phases=['val', 'test'],
         methods=['GradCAM', 'EigenCAM'], category='gt', interval=1, max_samples=8,
         target_layers=['backbone.layer4']),  # the last block's output: 6x6 on the 96 px input
    dict(type='mmcam.FeatMapVisualizationHook', phases=['test'], target_layers=['backbone'],
         channel_reduction=None, topk=4, arrangement=(1, 4), max_samples=4),
]
visualizer = dict(
    type='UniversalVisualizer',
    vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
