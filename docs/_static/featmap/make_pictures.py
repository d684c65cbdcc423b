"""Re-make the pictures of docs/{en,zh_cn}/featmap_vis.md with the tool itself.

    python docs/_static/featmap/make_pictures.py

Uses the trained demo models (demo/checkpoints/det_yolov5.pth, cls_resnet.pth) and demo images
when they exist; otherwise YOLOv5-s / ResNet-18 built from the configs shipped in the
mmyolo/mmpretrain wheels with random weights (the maps then show alignment, not meaning) and
the demo images written to a temporary folder. Prints which ones it used.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent
DEMO = REPO / 'demo' / 'featmap_vis_demo.py'
MAX_WIDTH = 640


def shrink(src: Path, dst: Path) -> None:
    """Scale down to MAX_WIDTH and store with a 256-colour palette: small files for docs."""
    img = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
    if img.shape[1] > MAX_WIDTH:
        h = round(img.shape[0] * MAX_WIDTH / img.shape[1])
        img = cv2.resize(img, (MAX_WIDTH, h), interpolation=cv2.INTER_AREA)
    Image.fromarray(img).quantize(256).save(dst, optimize=True)
    print(f'{dst.relative_to(REPO)}  {dst.stat().st_size // 1024} KiB')


def random_checkpoint(config: str, folder: str, name: str) -> str:
    from mmengine.runner.checkpoint import save_checkpoint

    from mmcam.apis import LoadedModel
    torch.manual_seed(0)
    model = LoadedModel(config, None).model
    path = os.path.join(folder, f'{name}_random.pth')
    save_checkpoint({'state_dict': model.state_dict()}, path)
    return path


def pick_models(tmp: str):
    import mmpretrain
    import mmyolo
    det = (REPO / 'configs/demo/det_yolov5.py', REPO / 'demo/checkpoints/det_yolov5.pth')
    cls = (REPO / 'configs/demo/cls_resnet.py', REPO / 'demo/checkpoints/cls_resnet.pth')
    if det[1].is_file():
        det = (str(det[0]), str(det[1]))
    else:
        cfg = str(Path(mmyolo.__file__).parent /
                  '.mim/configs/yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco.py')
        det = (cfg, random_checkpoint(cfg, tmp, 'yolov5_s'))
    if cls[1].is_file():
        cls = (str(cls[0]), str(cls[1]))
    else:
        cfg = str(Path(mmpretrain.__file__).parent / '.mim/configs/resnet/resnet18_8xb32_in1k.py')
        cls = (cfg, random_checkpoint(cfg, tmp, 'resnet18'))
    return det, cls


def demo_image(tmp: str, name: str) -> str:
    path = REPO / 'demo' / f'{name}.png'
    if path.is_file():
        return str(path)
    from mmcam.datasets.digit_scenes import write_demo_images
    return write_demo_images(tmp)[name]


def cli(*args) -> None:
    subprocess.run([sys.executable, str(DEMO), *map(str, args)], check=True)


def main() -> None:
    from mmcam.apis import LoadedModel
    from mmcam.models.capture import capture_outputs
    from mmcam.visualization import CAMVisualizer
    from mmcam.visualization.featmap import add_caption, arrange, split_levels

    with tempfile.TemporaryDirectory() as tmp:
        det, cls = pick_models(tmp)
        wide = demo_image(tmp, 'digits_det_wide')
        print('detector:', *det, '\nclassifier:', *cls, '\nimage:', wide)
        t = Path(tmp)

        cli(wide, *det, '--target-layers', 'backbone', '--channel-reduction', 'select_max',
            '--out-file', t / 'a.png')
        shrink(t / 'a.png', OUT / 'backbone_select_max.png')
        cli(wide, *det, '--target-layers', 'backbone', '--channel-reduction', 'select_max',
            '--canvas', 'input', '--out-file', t / 'b.png')
        shrink(t / 'b.png', OUT / 'backbone_input_canvas.png')
        cli(wide, *det, '--target-layers', 'neck.out_layers[0]', '--channel-reduction', 'None',
            '--topk', '5', '--arrangement', '2', '3', '--score-thr', '0.3',
            '--out-file', t / 'c.png')
        shrink(t / 'c.png', OUT / 'neck_top5.png')
        cli(wide, *cls, '--target-layers', 'backbone.layer2', 'backbone.layer4',
            '--channel-reduction', 'squeeze_mean', '--out-file', t / 'd.png')
        shrink(t / 'd.png', OUT / 'classifier_squeeze_mean.png')

        # Aligned (mmcam) next to mmengine's plain stretch, for the same map.
        model = LoadedModel(*det)
        sample = model.prepare([wide])[0]
        with capture_outputs({'backbone': model.model.backbone}) as out, torch.no_grad():
            model.model.predict(sample.inputs, [sample.data_sample])
        _, fmap = split_levels('backbone', out['backbone'])[0]
        aligned = CAMVisualizer.draw_featmap(fmap, sample.image, 'select_max',
                                             geometry=sample.geometry)
        from mmengine.visualization import Visualizer
        stretched = Visualizer.draw_featmap(fmap, sample.image, 'select_max')
        pair = arrange([add_caption(aligned, 'mmcam: letterbox undone'),
                        add_caption(np.asarray(stretched), 'mmengine: stretched')], 1, 2, gap=6)
        cv2.imwrite(str(t / 'e.png'), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
        shrink(t / 'e.png', OUT / 'aligned_vs_stretched.png')


if __name__ == '__main__':
    main()
