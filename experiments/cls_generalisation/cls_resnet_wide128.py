# Step 2 of the lost branch's recipe: step 1 (cls_resnet_wide96.py) fine-tuned for 6 epochs at a
# 128 px input (small digits keep more than 2-3 px strokes after the stride-4 stem).  The
# augmentation is the shipped ResNet's (configs/demo/cls_resnet.py) at the new size.
_base_ = ['./cls_resnet_wide96.py']

size = 128
load_from = '/tmp/wide/r96/weights.pth'  # state_dict only: torch loads weights_only
train_pipeline = _base_.train_pipeline
train_pipeline[1].scale = (size, size)  # Resize
train_pipeline[2].update(crop_size=size, padding=size // 12)  # RandomCrop
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = (size, size)  # Resize
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

epochs = 6
param_scheduler = _base_.param_scheduler
param_scheduler[1].update(T_max=epochs, end=epochs)
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
