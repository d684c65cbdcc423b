#!/usr/bin/env bash
# Set up (if needed), then run mmcam's main jobs on the bundled demo models and images.
# Pictures go to outputs/demo/ (override with OUT=...).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/scripts/setup.sh"
PY=${MMCAM_HOME:-$HOME/.cache/mmcam}/venv/bin/python
OUT=${OUT:-$REPO/outputs/demo}
cd "$REPO"
mkdir -p "$OUT"

echo "[mmcam demo] class activation maps of the demo CNN: one row per digit in the scene (layer4: a 6x6 grid on the 96 px input)"
"$PY" tools/vis_cam.py demo/two_digits.png configs/demo/cls_resnet.py demo/checkpoints/cls_resnet.pth \
  --target-layers backbone.layer4 --method GradCAM GradCAM++ EigenCAM LayerCAM --target-category $("$PY" -c \
  "import json; print(*json.load(open('demo/two_digits.json'))['labels'])") \
  --save-path "$OUT/cam_two_digits.png"

echo "[mmcam demo] the same for the demo ViT (class token; default layer: the last block's ln1)"
"$PY" tools/vis_cam.py demo/digit.png configs/demo/cls_vit.py demo/checkpoints/cls_vit.pth \
  --method GradCAM LayerCAM --save-path "$OUT/cam_vit_digit.png"

for det in yolov5 rtmdet yolox yolov6 retinanet faster_rcnn; do
  ckpt=demo/checkpoints/det_$det.pth
  echo "[mmcam demo] box activation maps and feature maps of the demo $det (non-square image)"
  "$PY" demo/boxam_vis_demo.py demo/digits_det_wide.png configs/demo/det_$det.py "$ckpt" \
    --method gradcam --per-box --out-dir "$OUT/boxam_$det"
  "$PY" demo/featmap_vis_demo.py demo/digits_det_wide.png configs/demo/det_$det.py "$ckpt" \
    --target-layers neck --channel-reduction squeeze_mean --out-file "$OUT/featmap_$det.png"
done
echo "[mmcam demo] pictures in $OUT"

echo "[mmcam demo] explanation quality over 100 held-out digit scenes (demo ResNet; GradCAM, GradCAM++, LayerCAM; 2 processes)"
EVAL_DATA=$OUT/eval_data/cls
if [[ ! -f $EVAL_DATA/test.json ]]; then
  "$PY" -m mmcam.evaluation.digit_data "$EVAL_DATA" --count 100 --seed 1 > /dev/null
fi
"$PY" -m torch.distributed.run --nproc-per-node 2 --master-port "${MMCAM_EVAL_PORT:-29517}" \
  tools/eval_cam.py configs/demo/cls_resnet.py demo/checkpoints/cls_resnet.pth \
  --methods GradCAM GradCAM++ LayerCAM --target-layers backbone.layer4 \
  --work-dir "$OUT/eval_resnet" --cfg-options test_dataloader.dataset.data_root="$EVAL_DATA/" > /dev/null
echo "[mmcam demo] the report to open: $OUT/eval_resnet/report/index.html"
