"""Fixtures for the Hub tests: a local Hub-protocol server, a built dataset, a client subprocess.

The server (tests/hubserver.py) runs in a thread of the test process on 127.0.0.1. The client
side (push_dataset, load_dataset, the CLI) runs in a subprocess whose environment points
HF_ENDPOINT at the server before huggingface_hub/datasets are imported, with HF_HUB_OFFLINE
unset and a private HF_HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.hubserver import LocalHub, start_hub

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_TOKEN = "dsbuild-test-token"
CLIENT_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def local_hub_server() -> Iterator[LocalHub]:
    hub = start_hub({TEST_TOKEN})
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def local_hub(local_hub_server: LocalHub) -> Iterator[LocalHub]:
    """The session's server with no injected faults and an empty request log; fails on server bugs."""
    state = local_hub_server.state
    state.clear_faults()
    state.requests.clear()
    state.server_errors.clear()
    yield local_hub_server
    state.clear_faults()
    assert not state.server_errors, "the test Hub server crashed:\n" + "\n".join(state.server_errors)


@pytest.fixture(scope="session")
def hub_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """europarl-ner's gold configs (en, es), built once per session in about 2 s.

    Built with ``project=False``: pushing does not depend on the projection pipeline, which is
    slow to run and has its own tests. Do not modify: copy it first.
    """
    from dsbuild.executor import build
    from dsbuild.registry import builders

    cls = builders.get("europarl-ner")
    return build(cls(cls.Options(project=False)), tmp_path_factory.mktemp("hub-build")).path


@dataclass
class HubClient:
    """Runs tests/hub_client.py steps, or any command, against a server in a clean subprocess."""

    hub: LocalHub
    work: Path

    def env(self, *, token: str | None = TEST_TOKEN, endpoint: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
        env.update(HF_ENDPOINT=endpoint or self.hub.endpoint, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1",
                   HF_HOME=str(self.work / "hf-home"), HF_HUB_DISABLE_PROGRESS_BARS="1", TQDM_DISABLE="1",
                   PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        for var in ("NO_PROXY", "no_proxy"):  # a CI proxy must not intercept loopback
            env[var] = ",".join(filter(None, [env.get(var, ""), "127.0.0.1", "localhost"]))
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    def run(self, steps: list[dict[str, Any]], **env_kwargs: Any) -> list[dict[str, Any]]:
        n = len(list(self.work.glob("steps-*.json")))
        steps_path, out_path = self.work / f"steps-{n}.json", self.work / f"out-{n}.json"
        steps_path.write_text(json.dumps(steps, default=str))
        proc = subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "hub_client.py"), str(steps_path), str(out_path)],
                              env=self.env(**env_kwargs), cwd=self.work, capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT_S)
        assert proc.returncode == 0 and out_path.exists(), f"client failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
        return json.loads(out_path.read_text())

    def command(self, args: list[str], **env_kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=self.env(**env_kwargs), cwd=self.work, capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT_S)


@pytest.fixture
def hub_client(local_hub: LocalHub, tmp_path: Path) -> HubClient:
    return HubClient(local_hub, tmp_path)
