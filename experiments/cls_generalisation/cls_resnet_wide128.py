# Step 2 of the lost branch's recipe: step 1 (cls_resnet_wide96.py) fine-tuned for 6 epochs at a
# 128 px input (small digits keep more than 2-3 px strokes after the stride-4 stem).
_base_ = ['./cls_resnet_wide96.py']

size = 128
load_from = '/tmp/wide/r96/weights.pth'  # state_dict only: torch loads weights_only
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(size, size)),
    dict(type='RandomCrop', crop_size=size, padding=size // 12, padding_mode='reflect'),
    dict(type='Rotate', magnitude_level=10, magnitude_range=(0, 15), magnitude_std='inf',
         prob=0.8, pad_val=128, interpolation='bilinear'),
    dict(type='Shear', magnitude_level=10, magnitude_range=(0, 0.2), magnitude_std='inf',
         prob=0.5, direction='horizontal', pad_val=128, interpolation='bilinear'),
    dict(type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.4),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(size, size)),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

epochs = 6
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True, begin=0, end=epochs,
         eta_min=2e-5),
]
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
