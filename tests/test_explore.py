"""genlab explore without a browser: every view over HTTP against the Python API, every bad
parameter (400 + one line), uploads and their limits, what the server refuses to serve, the CLI's
start-up lines and a clean Ctrl-C; and hostile or clumsy clients: other methods, silent connections,
too many connections, a lying Content-Length, shutdown during a projection, a slow attribute vector."""
from __future__ import annotations

import contextlib
import http.client
import importlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.explore import BadParameter, Explorer, ExploreServer, open_run, render, seed_codes
from genlab.latent import lerp, slerp
from genlab.models import build_model
from genlab.viz import to_uint8


def train_tiny_vae(run: Path) -> Path:
    """A VAE with a 2-D latent, 30 steps on 256 embedded MNIST digits: a real run folder in seconds."""
    from genlab import api
    from genlab import checkpoint as ckpt
    from genlab.training import Trainer

    spec, _ = api.resolve("vae", overrides=[
        "--model.latent_dim=2", "--model.hidden_dims=[64,32]", "--data.limit=256", "--train.max_steps=30",
        "--train.batch_size=64", "--train.progress=false", "--train.eval_every=0", "--train.sample_every=0",
        "--train.tensorboard=false", "--train.device=cpu"])
    net, train, _ = api.build(spec)
    run.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write_text(run / "run.json", json.dumps(spec.to_dict()))
    Trainer(net, train, spec.train, out_dir=run).fit()
    return run


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    return train_tiny_vae(tmp_path_factory.mktemp("explore") / "vae")


@pytest.fixture(scope="module")
def explorer(vae_run) -> Explorer:
    return open_run(str(vae_run), project_steps=20)


@pytest.fixture(scope="module")
def server(explorer):
    server = ExploreServer(explorer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def get(server, path: str, *, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def png_array(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def cell(grid: np.ndarray, index: int, size: int, padding: int = 2) -> np.ndarray:
    """Image ``index`` of a one-row grid drawn by genlab.viz.make_grid."""
    left = padding + index * (size + padding)
    return grid[padding:padding + size, left:left + size]


def decoded(model, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(model.decode(z[None])[0])


# ---------------------------------------------------------------------------------------- each control

def test_samples_view_is_genlab_sample_and_the_seed_changes_it(server, explorer):
    from genlab import api
    from genlab.viz import make_grid

    status, headers, body = get(server, "/render?view=samples&seed=5&n=9")
    assert status == 200 and headers["Content-Type"] == "image/png" and float(headers["X-Render-Ms"]) >= 0
    expected = to_uint8(make_grid(api.sample(explorer.model, 9, seed=5), nrow=3))
    assert np.array_equal(png_array(body), expected)
    assert not np.array_equal(png_array(get(server, "/render?view=samples&seed=6&n=9")[2]), expected)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_frame_is_the_decoded_path_point(server, explorer, method):
    model = explorer.model
    z0, z1 = seed_codes(model, [3, 11])
    _, _, body = get(server, f"/render?view=interpolate&a=3&b=11&t=0.35&method={method}")
    row = png_array(body)
    path = (slerp if method == "slerp" else lerp)(z0, z1, 0.35)
    assert np.array_equal(cell(row, 0, 28), decoded(model, z0))
    assert np.array_equal(cell(row, 1, 28), decoded(model, path))
    assert np.array_equal(cell(row, 2, 28), decoded(model, z1))
    ends = png_array(get(server, f"/render?view=interpolate&a=3&b=11&t=1&method={method}")[2])
    assert np.array_equal(cell(ends, 1, 28), cell(ends, 2, 28))


def test_slerp_and_lerp_frames_differ_between_ends(explorer):
    lerped = render(explorer, {"view": "interpolate", "a": 0, "b": 1, "t": 0.5, "method": "lerp"})
    slerped = render(explorer, {"view": "interpolate", "a": 0, "b": 1, "t": 0.5, "method": "slerp"})
    assert np.array_equal(cell(lerped, 0, 28), cell(slerped, 0, 28))
    assert not np.array_equal(cell(lerped, 1, 28), cell(slerped, 1, 28))


def test_attribute_view_adds_scale_times_the_class_vector(server, explorer):
    from genlab.latent import attribute_vector, labelled_examples

    grid = png_array(get(server, "/render?view=attribute&attr=7&scale=2.5&seed=4&n=3")[2])
    data = explorer._label_images
    pos, neg = labelled_examples(explorer._labels, explorer._label_names, "7", 20, generator=torch.Generator().manual_seed(0))
    vector = attribute_vector(explorer.model, data[pos], data[neg])
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(4))
    assert grid.shape == (2 + 2 * 30, 2 + 3 * 30)
    for i in range(3):
        assert np.array_equal(cell(grid, i, 28), decoded(explorer.model, z[i]))  # top row: the codes
        assert np.array_equal(cell(grid[30:], i, 28), decoded(explorer.model, z[i] + 2.5 * vector))  # bottom: edited
    zero = png_array(get(server, "/render?view=attribute&attr=7&scale=0&seed=4&n=3")[2])
    assert np.array_equal(zero[:32], zero[30:62])


def test_a_click_on_the_map_decodes_the_cell_under_it(server, explorer):
    steps, extent, size = 6, 3.0, 28
    grid = png_array(get(server, f"/render?view=map&extent={extent}&steps={steps}")[2])
    assert grid.shape == (steps * size, steps * size)  # no padding: pixels map linearly to codes
    row, col = 1, 4  # the page maps pixel (u, v) of the map to (-e + 2e u, e - 2e v); take a cell centre
    u, v = (col + 0.5) / steps, (row + 0.5) / steps
    x, y = -extent + 2 * extent * u, extent - 2 * extent * v
    point = png_array(get(server, f"/render?view=point&x={x}&y={y}")[2])
    assert np.array_equal(point[2:30, 2:30], decoded(explorer.model, torch.tensor([x, y])))
    assert np.abs(point[2:30, 2:30].astype(int) - grid[row * size:(row + 1) * size, col * size:(col + 1) * size]).max() <= 1


def test_page_and_info(server):
    status, headers, body = get(server, "/")
    assert status == 200 and b"genlab explore" in body and "script-src 'unsafe-inline'" in headers["Content-Security-Policy"]
    assert b"http://" not in body and b"https://" not in body  # no external assets: works offline
    info = json.loads(get(server, "/info")[2])
    assert info["latent_dim"] == 2 and set(info["views"]) == {"samples", "interpolate", "attribute", "map", "point"}
    assert info["attributes"] == [str(d) for d in range(10)] and not info["stylegan"]


# ---------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("query, message", [
    ("view=nope", "view must be one of"),
    ("view=samples&seed=-1", "seed must lie in [0, 2147483647]"),
    ("view=samples&seed=1e3", "seed must be an integer"),
    ("view=samples&n=65", "n must lie in [1, 64]"),
    ("view=samples&n=", "n must be an integer"),
    ("view=samples&seed=1&seed=2", "given more than once"),
    ("view=samples&path=/etc/passwd", "unknown parameter 'path'"),
    ("view=samples&label=3", "unknown parameter 'label'"),  # an unconditional model has no classes
    ("view=interpolate&t=1.5", "t must lie in [0, 1]"),
    ("view=interpolate&t=nan", "t must be a finite number"),
    ("view=interpolate&t=inf", "t must be a finite number"),
    ("view=interpolate&method=cubic", "method must be one of lerp, slerp"),
    ("view=interpolate&a=img99", "no uploaded image 'img99'"),
    ("view=interpolate&a=../x", "a must be an integer"),
    ("view=attribute&attr=Smiling", "attr must be one of 0, 1"),
    ("view=attribute&attr=3&scale=9", "scale must lie in [-5, 5]"),
    ("view=map&steps=33", "steps must lie in [2, 32]"),
    ("view=map&extent=0", "extent must lie in [0.1, 10]"),
    ("view=point&x=11", "x must lie in [-10, 10]"),
    ("view=mix&a=1", "view must be one of"),  # style mixing exists only for StyleGAN
    ("view=samples&truncation=0.5", "unknown parameter 'truncation'"),
    ("view=samples&" + "n=1&" * 40, "malformed query string"),
    ("seed=" + "9" * 3000, "query too long"),
])
def test_bad_parameters_get_400_and_one_line(server, query, message):
    status, headers, body = get(server, "/render?" + query)
    text = body.decode()
    assert status == 400 and headers["Content-Type"].startswith("text/plain")
    assert message in text and len(text.strip().splitlines()) == 1


@pytest.mark.parametrize("path", ["/page.html", "/../../etc/passwd", "/render/../info", "/src/", "/%2e%2e/"])
def test_serves_only_its_page_and_renders(server, path):
    status, _, body = get(server, path)
    assert status == 404 and b"not found" in body and b"root:" not in body


def test_refuses_other_hosts_when_local(server):
    status, _, body = get(server, "/", headers={"Host": "attacker.example:8765"})
    assert status == 403 and b"localhost" in body
    assert get(server, "/info", headers={"Host": f"localhost:{server.server_address[1]}"})[0] == 200


# ---------------------------------------------------------------------------------------- uploads

def png_file(array: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_an_uploaded_image_becomes_an_interpolation_end(server, explorer):
    digit = explorer._label_images[0]  # (1, 28, 28) in [0, 1]
    file = png_file(to_uint8(digit))
    status, _, body = get(server, "/upload", method="POST", body=file, headers={"Content-Type": "image/png"})
    assert status == 200
    result = json.loads(body)
    assert result["id"].startswith("img") and result["error"] >= 0
    z = explorer.model.encode(torch.from_numpy(png_array(file).copy()).float().div(255)[None, None]).detach()[0]
    row = png_array(get(server, f"/render?view=interpolate&a={result['id']}&b=0&t=0")[2])
    assert np.array_equal(cell(row, 0, 28), decoded(explorer.model, z))


@pytest.mark.parametrize("body, headers, message", [
    (b"", {}, "empty upload"),
    (b"this is not an image", {}, "not a readable image"),
    ("GIF", {}, "unsupported image format GIF"),
    ("HUGE", {}, "image too large: 4100x4100"),
    (b"x" * 64, {"Content-Length": str(6 * 2**20)}, "upload too large"),
])
def test_bad_uploads_get_400_and_one_line(server, body, headers, message):
    if body == "GIF":
        body = png_file(np.zeros((8, 8), np.uint8), "GIF")
    elif body == "HUGE":
        body = png_file(np.zeros((4100, 4100), np.uint8))
    status, _, reply = get(server, "/upload", method="POST", body=body, headers=headers)
    text = reply.decode()
    assert status == 400 and message in text and len(text.strip().splitlines()) == 1


def test_upload_needs_a_length():
    with pytest.raises(BadParameter, match="upload too large"):
        from genlab.explore import read_upload

        read_upload(b"x" * 11, (1, 28, 28), max_bytes=10)


# ---------------------------------------------------------------------------------------- other families

def test_cgan_classes_are_a_parameter_and_fixed_along_a_path():
    torch.manual_seed(0)
    cgan = build_model("cgan", {"image_shape": [1, 16, 16], "num_classes": 10, "latent_dim": 4, "label_dim": 3,
                                "generator_channels": 4, "discriminator_channels": 4}).eval()
    explorer = Explorer(cgan)
    assert "map" not in explorer.views() and explorer.num_classes == 10
    row = render(explorer, "view=interpolate&a=2&b=5&t=0.5&method=slerp&label=7")
    z0, z1 = seed_codes(cgan, [2, 5])
    with torch.no_grad():
        expected = to_uint8(cgan.decode(slerp(z0, z1, 0.5)[None], label=7)[0])
    assert np.array_equal(cell(row, 1, 16), expected)
    assert not np.array_equal(row, render(explorer, "view=interpolate&a=2&b=5&t=0.5&method=slerp&label=3"))
    with pytest.raises(BadParameter, match=r"label must lie in \[0, 9\]"):
        explorer.parse("view=samples&label=10")


def test_models_that_do_not_decode_images_are_refused():
    points = build_model("gan", {"x_dim": 2, "latent_dim": 2, "generator_hidden": [8], "discriminator_hidden": [8]})
    with pytest.raises(ConfigError, match="not images"):
        Explorer(points)
    classifier = build_model("classifier", {"image_shape": [1, 16, 16], "num_classes": 10, "channels": [4, 8],
                                            "kernel_size": 3, "hidden_dim": 16})
    with pytest.raises(ConfigError, match="has no decode"):
        Explorer(classifier)


class TinyStyleGAN(nn.Module):
    """StyleGAN's public surface (mapping, synthesis, mix, sample with truncation and noise), tiny and exact."""

    latent_dim, num_ws = 3, 4

    def __init__(self) -> None:
        super().__init__()
        self.config = types.SimpleNamespace(image_shape=[1, 4, 4])  # what it makes, declared as StyleGAN's config does
        self.weight = nn.Parameter(torch.linspace(-1, 1, 3 * 16).view(3, 16))
        self.calls: list = []

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def mapping(self, z):
        return z[:, None, :].expand(-1, self.num_ws, -1)  # (B, num_ws, D)

    def truncate(self, w, truncation=1.0, truncation_cutoff=None):  # towards the mean style, here 0
        return truncation * w

    def synthesis(self, ws, noise="random"):
        return torch.sigmoid(ws.mean(1) @ self.weight).view(-1, 1, 4, 4)

    def decode(self, z):
        return self.synthesis(self.mapping(z))

    def mix(self, z_a, z_b, layers, noise="random"):
        self.calls.append((layers, noise))
        index = {"coarse": [0, 1], "middle": [2], "fine": [3]}[layers] if isinstance(layers, str) else layers
        ws = self.mapping(z_a).clone()
        ws[:, index] = self.mapping(z_b)[:, index]
        return self.synthesis(ws, noise=noise)

    def sample(self, n, *, truncation=1.0, truncation_cutoff=None, noise="random", generator=None):
        self.calls.append((truncation, noise))
        return self.synthesis(self.mapping(truncation * torch.randn(n, self.latent_dim, generator=generator)), noise=noise)


def test_stylegan_gets_truncation_and_style_mixing():
    model = TinyStyleGAN()
    explorer = Explorer(model)
    assert explorer.stylegan and {"mix"} <= set(explorer.views()) and "truncation" in explorer.views()["samples"]
    sharp = render(explorer, "view=samples&seed=1&n=4&truncation=1")
    flat = render(explorer, "view=samples&seed=1&n=4&truncation=0")
    assert model.calls[-2:] == [(1.0, "const"), (0.0, "const")] and not np.array_equal(sharp, flat)
    mixed = render(explorer, "view=mix&a=1&b=2&layers=1-2")
    assert model.calls[-1] == ([1, 2], "const")
    z_a, z_b = seed_codes(model, [1, 2])
    assert np.array_equal(cell(mixed, 0, 4), decoded(model, z_a)) and np.array_equal(cell(mixed, 1, 4), decoded(model, z_b))
    assert not np.array_equal(cell(mixed, 2, 4), cell(mixed, 0, 4))
    with pytest.raises(BadParameter, match="layer range A-B with A <= B < 4"):
        explorer.parse("view=mix&layers=2-4")


def test_a_stylegan_without_decode_gets_samples_and_mixing_only():
    model = TinyStyleGAN()
    model.decode = None  # the latent tools need decode(z); sampling and mixing do not
    explorer = Explorer(model)
    assert set(explorer.views()) == {"samples", "mix"}
    assert render(explorer, "view=mix&a=0&b=1&layers=fine").shape == (8, 20)
    with pytest.raises(BadParameter, match="view must be one of samples, mix"):
        explorer.parse("view=interpolate")
    with pytest.raises(BadParameter, match="has no decode"):
        explorer.upload(b"\x89PNG")


def test_a_real_stylegan_renders_what_its_own_api_returns():
    """The registered StyleGAN (not a stand-in): truncation and mixing reach the model's own methods."""
    torch.manual_seed(0)
    model = build_model("stylegan", {"image_shape": [1, 16, 16], "latent_dim": 4, "w_dim": 4, "mapping_depth": 1,
                                     "channel_base": 64, "channel_max": 8}).eval()
    with torch.no_grad():  # non-zero noise strengths, so noise="const" is what makes renders repeatable
        for name, p in model.named_parameters():
            if "noise_strength" in name:
                p.fill_(0.5)
    explorer = Explorer(model)
    assert explorer.stylegan and "mix" in explorer.views() and "truncation" in explorer.views()["samples"]
    collapsed = render(explorer, "view=samples&seed=3&n=4&truncation=0")  # a 2 x 2 grid
    cells = [cell(collapsed[row * 18:], i, 16) for row in range(2) for i in range(2)]
    assert all(np.array_equal(cells[0], c) for c in cells[1:])  # psi = 0: every z maps to the mean w
    spread = render(explorer, "view=samples&seed=3&n=4&truncation=1")
    assert not np.array_equal(cell(spread, 0, 16), cell(spread, 1, 16))
    assert np.array_equal(render(explorer, "view=samples&seed=3&n=4&truncation=1"), spread)
    z_a, z_b = seed_codes(model, [1, 2])
    mixed = render(explorer, "view=mix&a=1&b=2&layers=coarse")
    with torch.no_grad():
        expected = to_uint8(model.mix(z_a[None], z_b[None], "coarse", noise="const")[0])
    assert np.array_equal(cell(mixed, 2, 16), expected)


# ---------------------------------------------------------------------------------------- the command

class SlowExplorer:
    """Wraps an explorer so that a render takes ``delay`` seconds and says when it began."""

    def __init__(self, explorer, delay: float) -> None:
        self.explorer, self.delay, self.began = explorer, delay, threading.Event()

    def __getattr__(self, name):
        return getattr(self.explorer, name)

    def stop(self) -> None:  # the wrapped explorer is shared with other tests: it must not be stopped
        pass

    def render(self, params):
        self.began.set()
        time.sleep(self.delay)
        return self.explorer.render(params)


@pytest.mark.parametrize("close_wait, finished", [(10.0, True), (0.1, False)])
def test_closing_waits_for_a_request_in_flight_but_not_forever(explorer, close_wait, finished):
    # a request thread still inside torch when the interpreter exits aborts the process (SIGABRT
    # after Ctrl-C), so closing lets a request finish -- within close_wait, never longer
    slow = SlowExplorer(explorer, delay=1.0)
    server = ExploreServer(slow, "127.0.0.1", 0)
    server.close_wait = close_wait
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    answers = []
    client = threading.Thread(target=lambda: answers.append(get(server, "/render?view=point&x=0&y=0")[0]))
    client.start()
    assert slow.began.wait(30)
    server.shutdown()
    start = time.monotonic()
    server.server_close()
    waited = time.monotonic() - start
    client.join(30)
    assert answers == [200]
    if finished:
        assert 0.5 < waited < 5
    else:
        assert waited < 0.5


def read_line(process: subprocess.Popen) -> str:
    """The command's next line of output; when it exits instead, fail with what it wrote to stderr."""
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise AssertionError(f"genlab explore exited ({process.wait()}) before printing: {process.stderr.read()}")
    return line


def stop(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, then what the command printed; a cold start on a loaded machine gets a minute."""
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=90)


def start_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    # Ctrl-C's default disposition in the child even when pytest itself was started with SIGINT ignored
    # (a shell's background job: `pytest &` or nohup), which the child would otherwise inherit
    return subprocess.Popen([sys.executable, "-m", "genlab", "explore", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_cli_prints_the_url_warns_for_a_network_host_and_stops_cleanly_on_ctrl_c(vae_run):
    process = start_cli(str(vae_run), "--port", "0", "--host", "0.0.0.0")
    try:
        warning = read_line(process)
        started = read_line(process)
        assert "reachable" not in started and "warning: listening on 0.0.0.0" in warning
        assert "anyone who can reach this machine" in warning
        url = started.split(" at ")[1].split()[0]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/render?view=point&x=0&y=0")
        assert connection.getresponse().status == 200
        connection.close()
        out, err = stop(process)
    finally:
        process.kill()
    assert process.returncode == 0 and "stopped" in out and "Traceback" not in err, (process.returncode, out, err)


def test_cli_local_default_has_no_warning_and_bad_run_is_one_line(vae_run, tmp_path, capsys):
    from genlab.cli import main

    process = start_cli(str(vae_run), "--port", "0")
    try:
        line = read_line(process)
        assert line.startswith("genlab explore: vae at http://127.0.0.1:")
        out, err = stop(process)
    finally:
        process.kill()
    assert process.returncode == 0 and "warning" not in out + err
    assert main(["explore", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "genlab explore: error:" in err
    assert main(["explore", str(vae_run), "--labels", "Smiling"]) == 2
    assert "unknown label(s) Smiling; valid: 0, 1" in capsys.readouterr().err


def test_a_client_that_resets_its_connection_leaves_no_traceback(server, capsys):
    """A browser that drops a kept-alive connection with a reply unread resets it (RST): the server goes on
    quietly, where the standard library would print 'Exception occurred during processing of request'."""
    import struct

    for _ in range(3):
        client = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=30)
        client.sendall(b"GET /render?view=point&x=0&y=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        client.recv(16)  # the reply has begun; the rest stays unread
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # with unread data and linger 0: a reset, not a FIN
    time.sleep(0.5)
    assert get(server, "/info")[0] == 200  # still serving
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


# ---------------------------------------------------------------------------------------- hostile or clumsy clients

@contextlib.contextmanager
def serving(explorer, host: str = "127.0.0.1", **settings):
    """A live server on a free port with ``settings`` (request_timeout, max_connections, close_wait) set."""
    server = ExploreServer(explorer, host, 0)
    for key, value in settings.items():
        setattr(server, key, value)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def read_all(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    reply = b""
    while chunk := client.recv(4096):
        reply += chunk
    return reply


def tiny_gan(*, hold: threading.Event | None = None, **explorer_options) -> tuple[Explorer, threading.Event]:
    """A tiny DCGAN (no encoder: its codes come by projection) and an event set by every decode call of
    a projection, so a test knows when one is under way; with ``hold``, each such call waits for it."""
    from tiny_configs import TINY

    torch.manual_seed(0)
    gan = build_model("gan", TINY["gan:dcgan"].config).eval()
    explorer = Explorer(gan, **explorer_options)
    projecting = threading.Event()
    plain = gan.decode

    def decode(z, label=None):
        if threading.current_thread().name.startswith("explore-background"):  # the explorer's projection thread
            projecting.set()
            if hold is not None:
                assert hold.wait(60)
        return plain(z, label)

    gan.decode = decode
    return explorer, projecting


def labelled_digits(n: int = 16) -> types.SimpleNamespace:
    """Images of two classes, as a labelled dataset looks to the explorer (x, y and info)."""
    g = torch.Generator().manual_seed(1)
    return types.SimpleNamespace(x=torch.rand(n, 1, 16, 16, generator=g), y=torch.arange(n) % 2,
                                 info={"class_names": ["plain", "striped"]})


def test_every_view_renders_with_every_parameter_left_out(server, explorer):
    """Each parameter has a default: a bare ``view=`` is a picture, never a KeyError and a 500."""
    for view in explorer.views():
        status, headers, body = get(server, f"/render?view={view}")
        assert status == 200 and headers["Content-Type"] == "image/png", (view, body[:200])
    assert np.array_equal(png_array(get(server, "/render?view=attribute")[2]),
                          png_array(get(server, "/render?view=attribute&attr=0")[2]))  # the first attribute


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_other_methods_get_405_with_allow_in_one_line(server, method):
    for path, allow in (("/", "GET, HEAD"), ("/render", "GET, HEAD"), ("/upload", "POST")):
        status, headers, body = get(server, path, method=method)
        text = body.decode()
        assert status == 405 and headers["Allow"] == allow and headers["Content-Type"].startswith("text/plain")
        assert f"method {method} not allowed on {path}; allowed: {allow}" in text and len(text.splitlines()) == 1


def test_head_answers_get_routes_without_a_body_and_wrong_routes_get_405(server):
    full = get(server, "/")
    status, headers, body = get(server, "/", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == full[1]["Content-Length"] != "0"
    status, headers, _ = get(server, "/upload")  # GET on the upload route
    assert status == 405 and headers["Allow"] == "POST"
    status, headers, _ = get(server, "/info", method="POST", body=b"x")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("request_line, status", [
    (b"FROB / HTTP/1.1", 501),
    (b"GET / HTTP/1.1\r\nX: " + b"y" * 70000, 431),
    (b"GET / HTTP/1.1 and more", None),  # no version to answer in: the reply is the bare body, as HTTP/0.9 has it
])
def test_what_the_standard_library_refuses_is_one_line_of_text_too(server, request_line, status):
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as client:
        client.sendall(request_line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        reply = read_all(client)
    if status is None:
        body = reply
    else:
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split()[1] == str(status).encode() and b"text/plain" in head
    assert len(body.decode().strip().splitlines()) == 1 and b"<html" not in body.lower() and b"<!doctype" not in body.lower()


def test_favicon_is_a_small_icon(server):
    status, headers, body = get(server, "/favicon.ico")
    assert status == 200 and headers["Content-Type"] == "image/png" and png_array(body).shape == (16, 16, 3)


def test_an_unreadable_upload_is_described_not_shown_as_an_object(server):
    status, _, reply = get(server, "/upload", method="POST", body=b"this is not an image")
    text = reply.decode()
    assert status == 400 and "object at 0x" not in text and "BytesIO" not in text
    assert "the upload (20 bytes) is not a PNG, JPEG or BMP file" in text


def test_uploads_beyond_the_bound_evict_the_oldest(explorer):
    bounded = Explorer(explorer.model, max_uploads=2, project_steps=5)
    digits = [png_file(to_uint8(explorer._label_images[i])) for i in range(3)]
    with serving(bounded) as server:
        ids = [json.loads(get(server, "/upload", method="POST", body=digit)[2])["id"] for digit in digits]
        assert ids == ["img1", "img2", "img3"] and list(bounded.uploads) == ["img2", "img3"]
        status, _, body = get(server, "/render?view=interpolate&a=img1&b=img3")
        assert status == 400 and b"no uploaded image 'img1'" in body and b"2 newer ones" in body
        first = get(server, "/render?view=interpolate&a=img2&b=img3&t=0")[2]
        assert np.array_equal(cell(png_array(first), 0, 28), decoded(explorer.model, bounded.uploads["img2"]))
        again = json.loads(get(server, "/upload", method="POST", body=digits[0])[2])["id"]
        assert again == "img4" and list(bounded.uploads) == ["img3", "img4"]  # ids are never reused


def test_silent_connections_time_out_and_excess_ones_are_refused_at_once(explorer):
    threads_before = threading.active_count()
    with serving(explorer, request_timeout=1.5, max_connections=4) as server:
        address = ("127.0.0.1", server.server_address[1])
        silent = [socket.create_connection(address, timeout=10) for _ in range(4)]
        time.sleep(0.2)
        start = time.monotonic()
        with socket.create_connection(address, timeout=10) as extra:  # the fifth: no thread, a 503 at once
            reply = read_all(extra)
        assert reply.startswith(b"HTTP/1.1 503") and b"too many open connections" in reply
        assert time.monotonic() - start < 1.2  # before any silent connection timed out
        assert threading.active_count() <= threads_before + 1 + 4  # the serving thread and one per connection
        for client in silent:  # each is closed by the server after request_timeout of silence
            assert client.recv(4096) == b""
            client.close()
        time.sleep(0.2)
        assert get(server, "/info")[0] == 200  # the slots are free again
        # an upload shorter than its Content-Length: a one-line 408 after the timeout, not a thread held forever
        with socket.create_connection(address, timeout=10) as liar:
            liar.sendall(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n0123456789")
            start = time.monotonic()
            reply = read_all(liar)
        assert reply.startswith(b"HTTP/1.1 408") and b"request timed out" in reply and time.monotonic() - start < 5


def test_a_client_that_trickles_its_headers_is_closed_after_the_timeout(explorer):
    import select

    with serving(explorer, request_timeout=0.6) as server:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as client:
            start, closed = time.monotonic(), None
            client.sendall(b"GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while time.monotonic() - start < 5:  # a header line every 0.2 s: each read alone is quick enough
                try:
                    client.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    closed = time.monotonic() - start
                    break
                if select.select([client], [], [], 0.2)[0]:
                    closed = time.monotonic() - start
                    break
        assert closed is not None and closed < 2.0, closed
        assert get(server, "/info")[0] == 200


def test_ipv6_host_is_served_when_the_machine_has_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    explorer, _ = tiny_gan()
    with serving(explorer, host="::1") as server:
        assert server.local_only and server.url == f"http://[::1]:{server.server_address[1]}/"
        connection = http.client.HTTPConnection("::1", server.server_address[1], timeout=30)
        connection.request("GET", "/render?view=samples&n=1")
        response = connection.getresponse()
        assert response.status == 200 and response.read().startswith(b"\x89PNG")
        connection.close()


def test_a_busy_port_is_reported_before_the_run_is_loaded(tmp_path, capsys):
    from genlab.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # the run does not even exist: the port is what fails first, so no model load is spent on it
        assert main(["explore", str(tmp_path / "no-such-run"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err and len(err.strip().splitlines()) == 1


def test_closing_interrupts_a_projection_and_its_client_gets_503():
    explorer, projecting = tiny_gan(project_steps=10**7)
    with serving(explorer, close_wait=3.0) as server:
        answers = []
        client = threading.Thread(target=lambda: answers.append(
            get(server, "/upload", method="POST", body=png_file(np.full((16, 16), 128, np.uint8)))))
        client.start()
        assert projecting.wait(30)  # the projection is under way
        server.shutdown()
        start = time.monotonic()
        server.server_close()
        waited = time.monotonic() - start
        client.join(30)
    assert waited < 2.0  # the projection stopped within a step; close_wait was not spent
    status, headers, body = answers[0]
    assert status == 503 and body.decode() == "server stopping: try again when it is back\n"


def test_a_slow_attribute_vector_blocks_no_other_view_and_is_interruptible():
    hold = threading.Event()  # a projection step that lasts until the other views have answered
    explorer, projecting = tiny_gan(labelled=labelled_digits(), labelled_count=4, project_steps=10**7, hold=hold)
    with serving(explorer) as server:
        answers = []
        slow = threading.Thread(target=lambda: answers.append(get(server, "/render?view=attribute&attr=striped")))
        slow.start()
        assert projecting.wait(30)  # projecting the labelled images, for ever at 10**7 steps, now inside a step
        times = []
        for query in ("view=samples&n=4", "view=interpolate&a=1&b=2", "view=samples&seed=3"):
            start = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
            connection.request("GET", "/render?" + query)
            assert connection.getresponse().status == 200
            connection.close()
            times.append(time.monotonic() - start)
        assert max(times) < 2.0 and slow.is_alive() and not answers, times  # no view waits for a projection step
        explorer.stop()
        hold.set()
        slow.join(30)
    assert answers[0][0] == 503 and b"server stopping" in answers[0][2]


def test_attribute_vectors_are_cached_on_disk_by_what_they_depend_on(tmp_path, monkeypatch):
    render_module = importlib.import_module("genlab.explore.render")  # the package's render() shadows the module
    cache = tmp_path / "explore-cache"
    first, _ = tiny_gan(labelled=labelled_digits(), labelled_count=4, project_steps=3, cache_dir=cache)
    image = first.render("view=attribute&attr=striped&scale=2&n=2")
    files = sorted(cache.glob("attribute-striped-*.safetensors"))
    assert len(files) == 1 and not list(cache.glob(".*"))  # written atomically: no temporary file left behind

    def no_projection(*args, **kwargs):
        raise AssertionError("the cached vector should have been read")

    monkeypatch.setattr(render_module, "attribute_vector", no_projection)
    again, _ = tiny_gan(labelled=labelled_digits(), labelled_count=4, project_steps=3, cache_dir=cache)
    assert np.array_equal(again.render("view=attribute&attr=striped&scale=2&n=2"), image)
    monkeypatch.undo()
    other, _ = tiny_gan(labelled=labelled_digits(), labelled_count=4, project_steps=4, cache_dir=cache)  # other settings
    other.render("view=attribute&attr=striped&scale=2&n=2")
    assert len(list(cache.glob("attribute-striped-*.safetensors"))) == 2
    files[0].write_bytes(b"damaged")  # a damaged file is recomputed, not trusted
    again, _ = tiny_gan(labelled=labelled_digits(), labelled_count=4, project_steps=3, cache_dir=cache)
    assert np.array_equal(again.render("view=attribute&attr=striped&scale=2&n=2"), image)


def test_ctrl_c_during_a_projection_stops_cleanly_and_the_client_gets_a_reply(tmp_path):
    from genlab import checkpoint as ckpt
    from tiny_configs import TINY

    torch.manual_seed(0)
    model_dir = tmp_path / "gan"
    ckpt.save_model(build_model("gan", TINY["gan:dcgan"].config), model_dir)
    process = start_cli(str(model_dir), "--port", "0", "--project-steps", "10000000")
    try:
        url = read_line(process).split(" at ")[1].split()[0]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        answers = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def upload():
            connection.request("POST", "/upload", body=png_file(np.full((16, 16), 128, np.uint8)))
            response = connection.getresponse()
            answers.append((response.status, response.read()))

        client = threading.Thread(target=upload)
        client.start()
        time.sleep(2.0)  # the projection is under way (it would take hours)
        out, err = stop(process)
        client.join(30)
    finally:
        process.kill()
    assert process.returncode == 0 and "stopped" in out, (process.returncode, out, err)
    assert "terminate called" not in err and "Traceback" not in err, err
    assert answers and answers[0][0] == 503 and b"server stopping" in answers[0][1]
