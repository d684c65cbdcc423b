#!/usr/bin/env bash
# Make the pictures of docs/{en,zh_cn}/boxam_vis.md with demo/boxam_vis_demo.py itself, from the
# trained demo detectors (demo/checkpoints/det_*.pth) and the demo images.
#   PYTHON=/root/.cache/mmcam/venv/bin/python bash docs/_static/boxam/make_pictures.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
PY=${PYTHON:-python}
OUT=docs/_static/boxam
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -f "$OUT"/*.png
for family in yolov5 yolov6 yolox rtmdet retinanet faster_rcnn; do
  ckpt=demo/checkpoints/det_$family.pth
  # gradcam: per-pixel gradients (the default, as mmyolo); gradcam-avg: classification-style
  for method in gradcam gradcam-avg; do
    "$PY" demo/boxam_vis_demo.py demo/digits_det.png configs/demo/det_$family.py "$ckpt" \
      --method $method --per-box --out-dir "$TMP/$family-$method"
    cp "$TMP/$family-$method/digits_det.png" "$OUT/${family}_${method}.png"
    cp "$TMP/$family-$method/digits_det_per_box.png" "$OUT/${family}_${method}_per_box.png"
  done
done
# What the box regression looks at (--explain box) and both together, on YOLOX.
for what in box both; do
  "$PY" demo/boxam_vis_demo.py demo/digits_det.png configs/demo/det_yolox.py \
    demo/checkpoints/det_yolox.pth --explain $what --per-box --out-dir "$TMP/explain-$what"
  cp "$TMP/explain-$what/digits_det_per_box.png" "$OUT/yolox_explain_${what}_per_box.png"
done
# 256-colour palettes keep the pictures small enough for the repository. The octree palette
# keeps the few hot colours of a small box's map; the default (median cut) spends the palette
# on the blue background and turned them grey.
"$PY" - "$OUT" <<'PY'
import glob, sys
from PIL import Image
for path in glob.glob(f'{sys.argv[1]}/*.png'):
    Image.open(path).convert('RGB').quantize(256, method=Image.Quantize.FASTOCTREE).save(
        path, optimize=True)
PY
echo "pictures written to $OUT"
