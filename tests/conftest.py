"""Test setup shared by the whole suite.

The environment is set before anything imports huggingface_hub or datasets. Shared, expensive
fixtures (tiny models trained once per session, the local Hub server) live in ``tests/plugins/``;
every module there is loaded as a pytest plugin.
"""

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = sorted(
    f"tests.plugins.{p.stem}" for p in (Path(__file__).parent / "plugins").glob("*.py") if not p.stem.startswith("_")
)
