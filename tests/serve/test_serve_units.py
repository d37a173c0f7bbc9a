"""Unit tests of the server's parts: image references, settings and bind safety, the batching
engine without HTTP, and the ``citrusv serve`` command's functions."""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import os

import numpy as np
import pytest
from conftest import random_image

from citrusv.processing.image import LoadedImage
from citrusv.serve.errors import APIError
from citrusv.serve.images import decode_image_reference, medical_format
from citrusv.serve.settings import ServeSettings, check_bind_address, is_loopback


def _png(height: int = 20, width: int = 30) -> bytes:
    buffer = io.BytesIO()
    random_image(height, width).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def folders(tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "sub" / "a.png").write_bytes(_png())
    (tmp_path / "outside.png").write_bytes(_png())
    os.symlink(tmp_path / "outside.png", allowed / "out_link.png")
    os.symlink(tmp_path, allowed / "dir_link")
    return allowed


# ----------------------------------------------------------------------------- image references
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_data_urls_of_common_formats(fmt):
    buffer = io.BytesIO()
    random_image(20, 30).save(buffer, format=fmt)
    url = f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()
    loaded = decode_image_reference(url, ServeSettings())
    assert isinstance(loaded, LoadedImage) and loaded.size_hw == (20, 30)


def test_allowed_file_paths(folders):
    settings = ServeSettings(allowed_dirs=(folders,))
    assert decode_image_reference(str(folders / "sub" / "a.png"), settings).size_hw == (20, 30)
    assert decode_image_reference((folders / "sub" / "a.png").as_uri(), settings).size_hw == (20, 30)
    assert decode_image_reference(str(folders / "sub" / ".." / "sub" / "a.png"), settings).size_hw == (20, 30)


# (reference relative to the allowed folder or absolute, expected status)
ILL_PATHS = [
    ("{allowed}/../outside.png", 403),
    ("{allowed}/sub/../../outside.png", 403),
    ("{allowed}/out_link.png", 403),          # symlink to a file outside
    ("{allowed}/dir_link/outside.png", 403),  # symlinked folder pointing outside
    ("/etc/passwd", 403),
    ("file://{allowed}/../outside.png", 403),
    ("file://{allowed}/%2e%2e/outside.png", 403),
    ("{allowed}/sub", 400),                   # a folder
    ("{allowed}/missing.png", 400),
    ("sub/a.png", 400),                       # relative
    ("file://host/{allowed}/sub/a.png", 400),
]


@pytest.mark.parametrize("reference, status", ILL_PATHS)
def test_path_traversal_and_symlinks_refused(folders, reference, status):
    with pytest.raises(APIError) as err:
        decode_image_reference(reference.format(allowed=folders), ServeSettings(allowed_dirs=(folders,)))
    assert err.value.status == status
    assert "outside.png" not in err.value.message  # the resolved target is not revealed


def test_sources_disabled_by_default(folders):
    with pytest.raises(APIError, match="file paths are disabled"):
        decode_image_reference(str(folders / "sub" / "a.png"), ServeSettings())
    with pytest.raises(APIError, match="remote image URLs are disabled"):
        decode_image_reference("https://example.com/a.png", ServeSettings())


def test_remote_urls_when_enabled(tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "a.png").write_bytes(_png())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        settings = ServeSettings(allow_remote_urls=True)
        assert decode_image_reference(f"{base}/a.png", settings).size_hw == (20, 30)
        with pytest.raises(APIError, match="HTTP 404"):
            decode_image_reference(f"{base}/missing.png", settings)
        with pytest.raises(APIError) as err:
            decode_image_reference(f"{base}/a.png", ServeSettings(allow_remote_urls=True, max_image_bytes=100))
        assert err.value.status == 413
    finally:
        server.shutdown()
    with pytest.raises(APIError, match="fetching the image URL failed"):
        decode_image_reference(f"{base}/a.png", ServeSettings(allow_remote_urls=True, remote_timeout_s=2))


def test_image_limits():
    data = _png(40, 40)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    with pytest.raises(APIError) as err:
        decode_image_reference(url, ServeSettings(max_image_bytes=len(data) // 2))
    assert err.value.status == 413
    with pytest.raises(APIError, match="exceeds the limit of 1000") as err:
        decode_image_reference(url, ServeSettings(max_image_pixels=1000))
    assert err.value.status == 400


def test_medical_formats_are_recognised_and_read_through_medio(tmp_path):
    dicom = b"\x00" * 128 + b"DICM" + b"\x00" * 100
    nifti = bytearray(352)
    nifti[344:348] = b"n+1\x00"
    assert medical_format(dicom) == "dicom"
    assert medical_format(bytes(nifti)) == "nifti" and medical_format(gzip.compress(bytes(nifti))) == "nifti"
    assert medical_format(_png()) is None and medical_format(b"\x1f\x8bgarbage") is None
    for data in (dicom, gzip.compress(bytes(nifti))):  # recognised, but not readable: a clear 400
        with pytest.raises(APIError) as err:
            decode_image_reference("data:application/octet-stream;base64," + base64.b64encode(data).decode(),
                                   ServeSettings())
        assert err.value.status == 400 and err.value.code == "invalid_image"
    # A real CT slice: HU rescaled and windowed into an 8-bit RGB image of the same size.
    from citrusv.medio.synthetic import synthetic_ct_dataset

    stored = (np.arange(20 * 24, dtype=np.uint16).reshape(20, 24) * 3)
    path = tmp_path / "ct.dcm"
    synthetic_ct_dataset(stored).save_as(path, enforce_file_format=True)
    loaded = decode_image_reference("data:application/dicom;base64," + base64.b64encode(path.read_bytes()).decode(),
                                    ServeSettings())
    assert loaded.image.size == (24, 20) and loaded.image.mode == "RGB"


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.5", True), ("localhost", True),
                                            ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.4", False), ("example.com", False)])
def test_bind_safety(host, loopback):
    assert is_loopback(host) == loopback
    if loopback:
        check_bind_address(host, None)
    else:
        with pytest.raises(ValueError, match="without an API key"):
            check_bind_address(host, None)
        check_bind_address(host, "secret")


@pytest.mark.parametrize("kwargs, match", [({"api_key": " "}, "api_key"), ({"max_pending": 0}, "max_pending"),
                                           ({"default_max_tokens": 10, "max_new_tokens_limit": 5}, "default_max_tokens"),
                                           ({"allowed_dirs": ("/nonexistent/folder",)}, "does not exist"),
                                           ({"max_wait_ms": -1}, "max_wait_ms")])
def test_settings_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ServeSettings(**kwargs)


# ----------------------------------------------------------------------------- engine without HTTP
def test_engine_fails_bad_requests_alone_and_refuses_when_full(native_checkpoint):
    from citrusv.inference import CitrusVPipeline
    from citrusv.inference.pipeline import GenerationSettings
    from citrusv.serve import BatchingEngine, QueueFullError

    pipeline = CitrusVPipeline.from_pretrained(native_checkpoint, device="cpu")
    engine = BatchingEngine(pipeline, max_batch_size=4, max_wait_ms=200, max_pending=3, max_prompt_tokens=80)
    with pytest.raises(RuntimeError, match="not running"):
        engine.submit([{"role": "user", "content": "hi"}], [], GenerationSettings(max_new_tokens=2))
    engine.start()
    try:
        settings = GenerationSettings(max_new_tokens=2)
        good = engine.submit([{"role": "user", "content": "hi"}], [], settings)
        reserved = engine.submit([{"role": "user", "content": "[SEG]"}], [], settings)
        long = engine.submit([{"role": "user", "content": "word " * 100}], [], settings)
        with pytest.raises(QueueFullError):
            engine.submit([{"role": "user", "content": "hi"}], [], settings)
        assert good.result(30).result.num_generated_tokens == 2 and good.result().batch_size == 1
        assert reserved.exception(30).status == 400
        assert long.exception(30).code == "context_length_exceeded"
        assert engine.pending == 0
        assert engine.submit([{"role": "user", "content": "again"}], [], settings).result(30).prompt_tokens > 0
    finally:
        engine.stop()
    assert not engine.running


# ----------------------------------------------------------------------------- the command
def _parse(argv):
    from citrusv.cli import serve

    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_cli_settings_and_api_key_from_environment(monkeypatch, tmp_path):
    from citrusv.cli.serve import settings_from_args

    monkeypatch.delenv("CITRUSV_API_KEY", raising=False)
    args = _parse(["--model", "m", "--allowed-dir", str(tmp_path), "--max-pending", "5", "--max-body-mb", "1"])
    assert args.host == "127.0.0.1"
    settings = settings_from_args(args)
    assert settings.api_key is None and settings.allowed_dirs == (tmp_path.resolve(),)
    assert settings.max_pending == 5 and settings.max_body_bytes == 1024 * 1024 and not settings.allow_remote_urls
    with pytest.raises(ValueError, match="without an API key"):
        settings_from_args(_parse(["--model", "m", "--host", "0.0.0.0"]))
    monkeypatch.setenv("CITRUSV_API_KEY", "from-env")
    assert settings_from_args(_parse(["--model", "m", "--host", "0.0.0.0"])).api_key == "from-env"
    assert settings_from_args(_parse(["--model", "m", "--api-key", "flag"])).api_key == "flag"


def test_cli_run_refuses_before_loading_and_starts_uvicorn(monkeypatch, native_checkpoint):
    import uvicorn

    from citrusv.cli import serve

    monkeypatch.delenv("CITRUSV_API_KEY", raising=False)
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    with pytest.raises(ValueError, match="without an API key"):
        serve.run(_parse(["--model", "/nonexistent", "--host", "0.0.0.0"]))
    assert serve.run(_parse(["--model", str(native_checkpoint), "--port", "9999", "--device", "cpu"])) == 0
    [(app, kwargs)] = calls
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 9999 and kwargs["access_log"] is False
    assert app.state.settings.model_name == "citrus-v"
