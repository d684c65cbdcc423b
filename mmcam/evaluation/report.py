"""results.json, results.csv and report/ (index.html + one page per image), self-contained:
inline CSS and JavaScript, pictures as relative files, nothing fetched from the network."""
from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from typing import Dict, List, Sequence

from mmcam.utils.io import atomic_path


#: The figure that orders the gallery (best / worst images per method), the first one present:
#: a continuous one first, so that the ranking is not decided by ties.
RANK_BY = ('energy_ratio', 'energy_ratio_detections', 'pointing_strict', 'insertion_auc')
#: Figures where lower is better (the table says so; the gallery ranks the other way).
LOWER_IS_BETTER = {'deletion_auc', 'average_drop', 'sanity_rho'}

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}.wide{overflow-x:auto}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#eee;cursor:pointer}td:first-child,th:first-child{text-align:left}
.fail{color:#b00;font-weight:bold}.pass{color:#070}.gallery{display:flex;flex-wrap:wrap;gap:.5em}
figure{margin:0;border:1px solid #ddd;padding:.3em;text-align:center;font-size:.8em}
figcaption{display:block}a{color:#06c}.note{color:#555;font-size:.9em}
figure img{display:inline-block;height:128px;image-rendering:pixelated}
"""
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var up = th.dataset.up !== '1'; th.dataset.up = up ? '1' : '0';
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var fx = parseFloat(x), fy = parseFloat(y);
      var c = (isNaN(fx) || isNaN(fy)) ? String(x).localeCompare(String(y)) : fx - fy;
      return up ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return '-'
    return f'{v:.3f}' if isinstance(v, float) else str(v)


def _fmt_any(v) -> str:
    """A figure or a per-box list of figures."""
    return '[' + ', '.join(_fmt(x) for x in v) + ']' if isinstance(v, list) else _fmt(v)


def _figure_names(summary: Dict[str, dict]) -> List[str]:
    names: List[str] = []
    for figs in summary.values():
        for name, fig in figs.items():
            if isinstance(fig, dict) and name not in names:
                names.append(name)
    return names


def _image_value(record: dict, key: str, name: str) -> float:
    v = record['maps'].get(key, {}).get(name)
    if isinstance(v, list):
        v = sum(v) / len(v) if v else float('nan')
    return float('nan') if v is None else float(v)


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}'
            f'</title><style>{STYLE}</style></head><body>{body}</body></html>\n')


def _write(path: str, text: str) -> None:
    with atomic_path(path) as tmp:  # a reader never sees half a file
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)


def write_outputs(work_dir: str, records: Sequence[dict], summary: Dict[str, dict],
                  meta: dict, gallery: int = 6) -> Dict[str, str]:
    """Write results.json, results.csv and report/; return their paths."""
    os.makedirs(os.path.join(work_dir, 'report'), exist_ok=True)
    paths = dict(json=os.path.join(work_dir, 'results.json'),
                 csv=os.path.join(work_dir, 'results.csv'),
                 html=os.path.join(work_dir, 'report', 'index.html'))
    _write(paths['json'], json.dumps(dict(meta=meta, summary=summary, images=list(records)),
                                     indent=1, allow_nan=True))
    names = _figure_names(summary)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(['method', 'images', 'boxes', 'sanity'] + [
        f'{n}_{part}' for n in names for part in ('mean', 'low', 'high', 'n')])
    for key, figs in summary.items():
        writer.writerow([key, figs.get('images'), figs.get('boxes', ''), figs.get('sanity', '')]
                        + [figs.get(n, {}).get(part, '') for n in names
                           for part in ('mean', 'low', 'high', 'n')])
    _write(paths['csv'], table.getvalue())
    _write(paths['html'], _index_html(records, summary, meta, names, gallery))
    for rec in records:
        _write(os.path.join(work_dir, 'report', f'image_{rec["index"]:06d}.html'),
               _image_html(rec))
    return paths


def _index_html(records, summary, meta, names, gallery) -> str:
    head = ''.join(f'<th>{html.escape(n)}{" (lower is better)" if n in LOWER_IS_BETTER else ""}'
                   '</th>' for n in names)
    rows = []
    for key, figs in summary.items():
        cells = [f'<td data-v="{html.escape(key)}">{html.escape(key)}</td>',
                 f'<td data-v="{figs.get("images", 0)}">{figs.get("images", 0)}</td>']
        sanity = figs.get('sanity', '')
        cells.append(f'<td data-v="{sanity}" class="{sanity.lower()}">{sanity or "-"}</td>')
        for n in names:
            f = figs.get(n)
            if not f:
                cells.append('<td data-v="">-</td>')
                continue
            ci = '' if math.isnan(f['low']) else \
                f' <small>[{f["low"]:.3f}, {f["high"]:.3f}]</small>'
            cells.append(f'<td data-v="{f["mean"]}">{_fmt(f["mean"])}{ci}</td>')
        rows.append(f'<tr class="method">{"".join(cells)}</tr>')
    failing = [k for k, f in summary.items() if f.get('sanity') == 'FAIL']
    notes = ''.join(
        f'<p class="fail">{html.escape(k)} fails the sanity check: its maps barely change when '
        f'the model\'s head and last stage are re-initialised (mean rank correlation '
        f'{summary[k]["sanity_rho"]["mean"]:.2f}), so they do not explain what the model '
        'learnt.</p>' for k in failing)
    parts = [f'<h1>CAM quality: {html.escape(str(meta.get("config", "")))}</h1>',
             f'<p class="note">{html.escape(_meta_line(meta))}</p>', notes,
             '<p class="note">Mean over the images (detectors: over the boxes) with its 95 % '
             'interval; click a column to sort.</p>',
             f'<div class="wide"><table class="sortable" id="summary"><thead><tr><th>method</th>'
             f'<th>images</th><th>sanity</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
             '</table></div>']
    for key in summary:
        by = next((n for n in RANK_BY if n in summary[key]), None)
        have = [r for r in records if key in r['maps'] and 'picture' in r['maps'][key]]
        if by is None or not have:
            continue
        ranked = sorted(have, key=lambda r: (-_safe(_image_value(r, key, by)), r['index']))
        for title, chosen in (('best', ranked[:gallery]), ('worst', ranked[::-1][:gallery])):
            figs = ''.join(
                f'<figure><a href="image_{r["index"]:06d}.html"><img src="{r["picture"]}" '
                f'alt="image {r["index"]}"><img src="{r["maps"][key]["picture"]}" '
                f'alt="{html.escape(key)} map of image {r["index"]}"></a><figcaption>#{r["index"]} '
                f'{by} {_fmt(_image_value(r, key, by))}</figcaption></figure>' for r in chosen)
            parts.append(f'<h2>{html.escape(key)}: {title} images by {by}</h2>'
                         f'<div class="gallery">{figs}</div>')
    parts.append(f'<script>{SORT_JS}</script>')
    return _page('CAM quality report', ''.join(parts))


def _safe(v: float) -> float:
    return -math.inf if math.isnan(v) else v


def _meta_line(meta: dict) -> str:
    done, total = meta.get('images'), meta.get('dataset_size')
    line = (f'checkpoint {meta.get("checkpoint")}; {done} of {total} images; '
            f'{meta.get("processes", 1)} process(es); {meta.get("seconds", 0):.0f} s')
    if meta.get('interrupted'):
        line += '; INTERRUPTED: only the finished images are counted'
    return line


def _image_html(rec: dict) -> str:
    figs = [f'<figure><img src="{rec["picture"]}" alt="image"><figcaption>input</figcaption>'
            '</figure>'] \
        if 'picture' in rec else []
    rows = []
    for key, f in rec['maps'].items():
        if 'picture' in f:
            figs.append(f'<figure><img src="{f["picture"]}" alt="{html.escape(key)}">'
                        f'<figcaption>{html.escape(key)}</figcaption></figure>')
        vals = ', '.join(f'{n} {_fmt_any(v)}' for n, v in f.items()
                         if n not in ('picture', 'bboxes'))
        rows.append(f'<tr><td>{html.escape(key)}</td><td style="text-align:left">'
                    f'{html.escape(vals)}</td></tr>')
    label = f'label {rec.get("label")}, predicted {rec.get("pred")}' if 'pred' in rec else \
        f'{len(rec.get("gt_boxes", []))} ground-truth boxes'
    body = (f'<p><a href="index.html">back to the summary</a></p><h1>image #{rec["index"]}</h1>'
            f'<p class="note">{html.escape(str(rec.get("img_path")))}; {label}</p>'
            f'<div class="gallery">{"".join(figs)}</div><table>{"".join(rows)}</table>')
    return _page(f'image {rec["index"]}', body)
