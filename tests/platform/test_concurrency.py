"""Four processes register model versions and write artifacts at once: nothing lost."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import trivet
from trivet.platform import audit
from trivet.platform.settings import Settings

WORKERS = 4
PER_WORKER = 6

WORKER = textwrap.dedent(
    """
    import sys
    import trivet

    workspace, token, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    session = trivet.connect(workspace, token=token)
    for i in range(count):
        ref = session.artifacts.put_bytes(f"worker {worker} item {i}".encode() * 1000)
        model = session.artifacts.put_model({"worker": worker, "i": i}, flavor="pickle",
                                            trust_pickle=True)
        params = {"worker": worker, "i": i}
        session.registry.register("shared", artifact=model.digest, params=params)
        print(ref.digest, flush=True)
    """
)


def test_four_processes_register_and_store_at_once(
    admin: trivet.Session, workspace: Settings, catalog_backend: str, tmp_path: Path
) -> None:
    admin.identity.create_user("worker")
    admin.access.grant("worker", "data_scientist", "default/*")
    token = admin.identity.create_token("worker").secret
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIVET_")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(workspace.workspace), token, str(w), str(PER_WORKER)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(WORKERS)
    ]
    digests: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "locked" not in err.lower()
        digests += out.split()

    versions = admin.registry.versions("shared")
    assert sorted(v.version for v in versions) == list(range(1, WORKERS * PER_WORKER + 1))
    seen = {(v.params["worker"], v.params["i"]) for v in versions}
    assert seen == {(w, i) for w in range(WORKERS) for i in range(PER_WORKER)}
    assert len(set(digests)) == WORKERS * PER_WORKER
    for w in range(WORKERS):
        for i in range(PER_WORKER):
            data = f"worker {w} item {i}".encode() * 1000
            assert admin.artifacts.get_bytes(hashlib.sha256(data).hexdigest()) == data
    assert audit.verify(admin.catalog).ok
