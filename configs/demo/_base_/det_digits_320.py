# The demo digit detectors' data (det_digits.py) at a 320 x 320 input: every scene is upscaled
# twice as much, so a 15-30 px digit covers 30-60 px of the network input.  For the heads that
# read each prior through two stacked 3 x 3 convolutions (YOLOX, RTMDet): their per-box maps
# span 5 x 5 cells around the predicting prior, which at 160 px often peaked on a cell beside a
# small digit (see docs/en/boxam_vis.md, "How well the maps point at the boxes").
_base_ = ['./det_digits.py']

img_scale = (320, 320)  # width, height
train_pipeline = [dict(step, scale=img_scale) if 'scale' in step else step
                  for step in _base_.train_pipeline]
train_pipeline_affine = [dict(step, scale=img_scale) if 'scale' in step else step
                         for step in _base_.train_pipeline_affine]
test_pipeline = [dict(step, scale=img_scale) if 'scale' in step else step
                 for step in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
