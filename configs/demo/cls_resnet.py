# A small ResNet-18 (widths 16-32-64-128) for the 96 x 96 digit scenes; trained from scratch.
# Its last stage is dilated instead of strided (output stride 16): the default CAM layer is then
# a 6 x 6 grid with 16 px cells on a 96 px input, fine enough to point at one digit, where the
# usual output stride 32 leaves a 3 x 3 grid.  It costs about 5 % more time per step.
# Re-train: python tools/train_demo.py cls_resnet
_base_ = ['./_base_/cls_digits.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

# Light augmentation: small shifts, rotations (up to 15 degrees), slants and colours.  Without
# rotation and slant, 18 epochs gave 91.8 % on the test split (the errors were digit shapes:
# only 3500 distinct MNIST digits are in the training split); with them, 24 epochs give 93.2 %.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 96)),
    dict(type='RandomCrop', crop_size=96, padding=8, padding_mode='reflect'),
    dict(type='Rotate', magnitude_level=10, magnitude_range=(0, 15), magnitude_std='inf',
         prob=0.8, pad_val=128, interpolation='bilinear'),
    dict(type='Shear', magnitude_level=10, magnitude_range=(0, 0.2), magnitude_std='inf',
         prob=0.5, direction='horizontal', pad_val=128, interpolation='bilinear'),
    # (no hue: mmcv 2.0.1's adjust_hue overflows a uint8 on numpy 2 for negative shifts)
    dict(type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.4),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# The shipped checkpoint is made in two steps.  (1) 36 epochs from scratch on the 96 px photo
# scenes alone (data/digit_scenes_plain: VARIED['train'] = 0): test top-1 95.1 %.
# (2) 12 more epochs on the varied training scenes, starting from (1) (fine_tune below):
# gives 95.6 % (and 63.2 % on the second generator, mmcam/datasets/other_scenes.py, against
# 50.6 %).  48 epochs from scratch on the varied scenes gave 94.6 % (65.4 %): below the bar.
# tools/train_demo.py runs both steps; step 2 sets the epochs, the learning rate and the
# warm-up (iterations) from here.
fine_tune = dict(epochs=12, lr=5e-4, warmup_iters=50)
max_epochs = 36
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=2e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=6)
