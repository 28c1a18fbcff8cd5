"""Dataset cards rendered from the facts a build recorded (provenance.json, quality.json).

PLACEHOLDER (foundation issue): minimal front matter; full Jinja templates, metadata validation
and the card command come next.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def render_card(dataset_dir: str | Path) -> str:
    """Render README.md for a built dataset directory from its provenance.json."""
    dataset_dir = Path(dataset_dir)
    prov = json.loads((dataset_dir / "provenance.json").read_text())
    info = prov["info"]
    meta = {
        "pretty_name": info["pretty_name"],
        "license": info["license"],
        "language": info["languages"],
        "configs": [{"config_name": c["name"], "data_files": [{"split": s, "path": f"{c['name']}/{s}-*.parquet"} for s in c["splits"]]}
                    for c in prov["configs"]],
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n# {info['pretty_name']}\n\n{info['summary']}\n"
