#!/usr/bin/env bash
# Make the pictures of docs/{en,zh_cn}/vis_cam.md with tools/vis_cam.py itself, from the trained
# demo classifiers (demo/checkpoints/cls_resnet.pth, cls_vit.pth) and the demo images.
#   PYTHON=/root/.cache/mmcam/venv/bin/python bash docs/_static/vis_cam/make_pictures.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
PY=${PYTHON:-python}
OUT=docs/_static/vis_cam
# The demo ResNet: the last block's output (6 x 6 on 96 px) localises best (docs/en/vis_cam.md).
RESNET=(configs/demo/cls_resnet.py demo/checkpoints/cls_resnet.pth --target-layers backbone.layer4)
VIT=(configs/demo/cls_vit.py demo/checkpoints/cls_vit.pth)
# The two digits' classes, from the scene's annotation.
CATS=$("$PY" -c "import json; print(*json.load(open('demo/two_digits.json'))['labels'])")

"$PY" tools/vis_cam.py demo/digit.png "${RESNET[@]}" \
  --method GradCAM GradCAM++ XGradCAM LayerCAM --save-path "$OUT/resnet_methods.png"
"$PY" tools/vis_cam.py demo/two_digits.png "${RESNET[@]}" \
  --method GradCAM GradCAM++ --target-category $CATS --save-path "$OUT/resnet_two_digits.png"
"$PY" tools/vis_cam.py demo/digit.png "${RESNET[@]}" --guided --save-path "$OUT/resnet_guided.png"
if [[ -f demo/checkpoints/cls_vit.pth ]]; then
  "$PY" tools/vis_cam.py demo/two_digits.png "${VIT[@]}" \
    --method GradCAM GradCAM++ --target-category $CATS --save-path "$OUT/vit_two_digits.png"
  # The transformer methods next to GradCAM (docs/en/vis_cam.md, "Transformer methods").
  "$PY" tools/vis_cam.py demo/two_digits.png "${VIT[@]}" --method GradCAM AttentionRollout \
    GradRollout --target-category $CATS --save-path "$OUT/vit_transformer_methods.png"
else
  echo "demo/checkpoints/cls_vit.pth is missing: ViT pictures left out"
fi
# 256-colour palettes keep the pictures small enough for the repository.
"$PY" - "$OUT" <<'PY'
import glob, sys
from PIL import Image
for path in glob.glob(f'{sys.argv[1]}/*.png'):
    Image.open(path).convert('RGB').quantize(256).save(path, optimize=True)
PY
echo "pictures written to $OUT"
