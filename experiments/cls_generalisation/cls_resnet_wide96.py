# Step 1 of the lost branch's recipe: the shipped demo ResNet fine-tuned for 8 epochs at 96 px
# on the wider training scenes (wide_scenes.py; README.md in this folder has the commands).
_base_ = ['../../configs/demo/cls_resnet.py']

data_root = '/tmp/wide/cls/'
train_dataloader = dict(num_workers=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
load_from = 'demo/checkpoints/cls_resnet.pth'

epochs = 8
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = _base_.param_scheduler  # warm-up, then cosine, over this step's epochs
param_scheduler[0].end = 50
param_scheduler[1].update(T_max=epochs, end=epochs)
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
default_hooks = dict(logger=dict(interval=100))
