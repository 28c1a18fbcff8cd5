"""Client side of the Hub tests, run in a subprocess so HF_ENDPOINT is set before any HF import.

The test suite sets HF_HUB_OFFLINE=1 and imports ``datasets`` early, which freezes the endpoint;
this script starts clean. Usage::

    HF_ENDPOINT=http://127.0.0.1:PORT python tests/hub_client.py STEPS.json OUT.json

STEPS.json is a list of steps, run in order; OUT.json receives one result per step:

- ``{"op": "push", "dir": ..., "repo_id": ..., "revision"?, "private"?, "create_pr"?, "force"?, "token"?}``
  -> the PushResult as a dict, or ``{"error": "<HubError message>", "type": "HubError"}``
- ``{"op": "fault", "endpoint"?: ..., "status"?: ...}`` -> make the server fail that endpoint (no
  endpoint: clear all faults)
- ``{"op": "tags", "repo_id": ...}`` -> ``{"tags": {name: commit}}`` as ``HfApi.list_repo_refs`` reports them
- ``{"op": "load", "repo_id": ..., "config": ..., "revision": ..., "split": ...}``
  -> ``{"rows": [every column of every row], "features": {...}}`` or ``{"error": ...}``
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import Any


def run_step(step: dict[str, Any]) -> dict[str, Any]:
    op = step.pop("op")
    if op == "push":
        from dsbuild.errors import HubError
        from dsbuild.hub import push_dataset

        try:
            return dataclasses.asdict(push_dataset(step.pop("dir"), step.pop("repo_id"), **step))
        except HubError as err:
            return {"error": str(err), "type": type(err).__name__}
    if op == "fault":
        import os
        import urllib.request

        request = urllib.request.Request(f"{os.environ['HF_ENDPOINT']}/_control/faults", data=json.dumps(step).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    if op == "tags":
        from huggingface_hub import HfApi

        refs = HfApi().list_repo_refs(step["repo_id"], repo_type="dataset")
        return {"tags": {t.name: t.target_commit for t in refs.tags}}
    if op == "load":
        import datasets

        try:
            ds = datasets.load_dataset(step["repo_id"], step["config"], revision=step["revision"], split=step["split"])
        except Exception as err:  # noqa: BLE001 - reported to the test, which asserts on it
            return {"error": f"{type(err).__name__}: {err}"}
        return {"rows": ds.to_list(), "features": ds.features.to_dict()}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    steps_path, out_path = sys.argv[1], sys.argv[2]
    with open(steps_path, encoding="utf-8") as f:
        steps = json.load(f)
    results = [run_step(dict(step)) for step in steps]
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
