# A small Vision Transformer with a class token (4 layers, 96 dims, 12 x 12 patches, so an
# 8 x 8 token grid on 96 x 96 inputs) for the digit scenes; trained from scratch.
# Re-train: python tools/train_demo.py cls_vit
_base_ = ['./_base_/cls_digits.py']
custom_imports = dict(imports=['mmcam.models'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=256),
        img_size=96,
        patch_size=12,
        # A small convolutional stem (3 x 3 convolutions at strides 2-2-3, two per stride)
        # instead of one 12 x 12 convolution makes the same 8 x 8 token grid.  With the single
        # convolution this ViT sat at chance for 4 epochs on these scenes, where a digit covers a
        # few of the 64 tokens (see mmcam/models/conv_stem.py).
        patch_cfg=dict(conv_type='mmcam.ConvStem'),
        with_cls_token=True,
        out_type='cls_token',
        drop_rate=0.0,
        drop_path_rate=0.05,
        init_cfg=[
            dict(type='TruncNormal', layer='Linear', std=0.02),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
        ]),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=10,
        in_channels=96,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        # PyTorch's default initialisation, not the head's zero init: with a zero head the
        # backbone gets no gradient at first, and on 256 scenes the model was still at 13 %
        # training accuracy after 120 steps (37 % with the default init).
        init_cfg=None,
        topk=(1, )))

# The shipped checkpoint is made in two steps.  (1) 30 epochs from scratch on the 96 px photo
# scenes alone (data/digit_scenes_plain: VARIED['train'] = 0): test top-1 95.4 %.
# (2) 15 more epochs on the varied training scenes, starting from (1) (fine_tune below):
# gives 95.2 % (and 52.8 % on the second generator, mmcam/datasets/other_scenes.py, against
# 44.0 %).  From scratch on the varied scenes this ViT learnt far more slowly (val 17 % after 3
# epochs and 31 % after 6, against 85 % and 94 % on the photo scenes); it was stopped.
# tools/train_demo.py runs both steps; step 2 sets the epochs, the learning rate and the
# warm-up (iterations) from here.
fine_tune = dict(epochs=15, lr=3e-4, warmup_iters=100)
max_epochs = 30
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'.cls_token': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=250),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=3)
