"""The PyPI `openpi-client` (unchanged, in an environment of its own) against `vla-ros serve`.

openpi-client 0.1.2 pins numpy<2 and needs typing_extensions without declaring it, so it cannot
share this package's environment: the test builds a venv for it once, cached under
~/.cache/vla_ros/ and keyed by the version, and skips (saying why) if the registry is unreachable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from remote_helpers import sim_observation

from vla_ros.backends.base import load_backend
from vla_ros.remote.schema import make_request

OPENPI_CLIENT_VERSION = "0.1.2"
REQUIREMENTS = (f"openpi-client=={OPENPI_CLIENT_VERSION}", "typing_extensions", "numpy<2")
VENV = (
    Path(os.environ.get("VLA_ROS_CACHE", Path.home() / ".cache" / "vla_ros"))
    / f"openpi-client-venv-{OPENPI_CLIENT_VERSION}"
)

CLIENT_SCRIPT = """
import json, sys
import numpy as np
from openpi_client.websocket_client_policy import WebsocketClientPolicy

port, request_path, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
policy = WebsocketClientPolicy(host="127.0.0.1", port=port)
with np.load(request_path, allow_pickle=False) as f:
    request = {k: f[k] for k in f.files}
request["prompt"] = str(request["prompt"])
result = policy.infer(request)
np.save(out_path + ".npy", result["actions"], allow_pickle=False)
json.dump({"metadata": policy.get_server_metadata(), "server_timing": result["server_timing"],
           "numpy": np.__version__}, open(out_path + ".json", "w"))
"""


def openpi_client_python() -> Path:
    """The cached venv's python with openpi-client installed (pytest.skip if it cannot be built)."""
    python = VENV / "bin" / "python"
    marker = VENV / ".complete"
    if marker.is_file():
        return python
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True, timeout=120
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True, capture_output=True, timeout=600
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(
            f"cannot build the openpi-client {OPENPI_CLIENT_VERSION} environment at {VENV}: {exc} "
            f"{detail.decode(errors='replace')[-500:]}"
        )
    marker.write_text(" ".join(REQUIREMENTS) + "\n")
    return python


@pytest.mark.parametrize("backend, checkpoint", [("octo", "tiny_checkpoint"), ("pi0", "tiny_pi0_checkpoint")])
def test_openpi_client_gets_metadata_and_the_local_backends_actions(backend, checkpoint, request, serve, tmp_path):
    python = openpi_client_python()
    model_path = request.getfixturevalue(checkpoint)
    server = serve(backend, model_path)
    local = load_backend(backend, model_path, seed=0)
    meta_noise = server.info  # the 'serving' line; the full metadata comes through openpi-client below
    assert meta_noise["backend"] == backend

    observation = sim_observation(seed=3)
    noise_shape = local.noise_shape[1:] if hasattr(local, "noise_shape") else (local.horizon, local.cfg.action_dim)
    noise = np.random.default_rng(4).standard_normal(noise_shape).astype(np.float32)
    np.savez(tmp_path / "request.npz", **make_request(observation, noise))
    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT)
    out = tmp_path / "answer"
    run = subprocess.run(
        [str(python), str(script), str(server.port), str(tmp_path / "request.npz"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr + server.log()

    answer = json.loads(out.with_suffix(".json").read_text())
    assert answer["numpy"].startswith("1."), "the client did not run in its own numpy<2 environment"
    meta = answer["metadata"]
    assert meta["backend"] == backend and meta["action_space"] == "joint_position"
    assert meta["joints"] == list(local.joint_names) and meta["cameras"] == list(local.camera_names)
    assert meta["horizon"] == local.horizon and meta["dt_s"] == pytest.approx(local.dt_s)
    assert meta["noise_shape"] == list(noise_shape)
    assert answer["server_timing"]["infer_ms"] > 0

    actions = np.load(out.with_suffix(".npy"), allow_pickle=False)
    assert actions.shape == (meta["horizon"], len(meta["joints"]))
    expected = local.predict(observation, noise=noise).positions
    np.testing.assert_allclose(actions, expected, rtol=1e-6, atol=1e-6)


RESIZE_SCRIPT = """
import sys
import numpy as np
from openpi_client import image_tools
image = np.load(sys.argv[1], allow_pickle=False)
np.save(sys.argv[2], image_tools.resize_with_pad(image, 224, 224), allow_pickle=False)
"""


def test_images_are_resized_with_padding_like_openpi_client(tmp_path):
    from vla_ros.backends.openpi_remote.processing import RemoteProcessor

    python = openpi_client_python()
    rng = np.random.default_rng(0)
    image = np.repeat(np.repeat(rng.integers(20, 255, (12, 16, 3), dtype=np.uint8), 30, 0), 30, 1)  # 360x480 blocks
    np.save(tmp_path / "in.npy", image)
    (tmp_path / "resize.py").write_text(RESIZE_SCRIPT)
    subprocess.run(
        [str(python), str(tmp_path / "resize.py"), str(tmp_path / "in.npy"), str(tmp_path / "out.npy")],
        check=True,
        timeout=60,
    )
    theirs = np.load(tmp_path / "out.npy")
    ours = RemoteProcessor({}, {}, (), (224, 224), "hwc").image(image)  # no pixel is 0 but the padding
    assert ours.shape == theirs.shape == (224, 224, 3) and ours.dtype == theirs.dtype == np.uint8
    np.testing.assert_array_equal(ours == 0, theirs == 0)  # same padding rows (the zero bands)
    assert np.mean(np.abs(ours.astype(int) - theirs.astype(int))) < 3.0  # bilinear: OpenCV vs PIL
