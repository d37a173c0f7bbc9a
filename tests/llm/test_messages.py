"""Message builders: images become base64 data URLs whose bytes decode back unchanged."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from citrusv.llm import assistant_message, image_part, image_to_data_url, system_message, user_message
from citrusv.llm.fake_server import decode_data_url
from citrusv.llm.messages import sniff_image_mime


def _png_bytes(size=(7, 5), color=(10, 200, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_text_only_user_message_is_a_string():
    assert user_message("hi") == {"role": "user", "content": "hi"}
    assert system_message("s") == {"role": "system", "content": "s"}
    assert assistant_message("a") == {"role": "assistant", "content": "a"}


def test_images_first_then_text_and_pil_is_lossless_png():
    image = Image.new("RGB", (9, 4), (1, 2, 3))
    message = user_message("what is this?", images=[image, _png_bytes()])
    parts = message["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    mime, data = decode_data_url(parts[0]["image_url"]["url"])
    assert mime == "image/png"
    decoded = Image.open(io.BytesIO(data))
    assert decoded.size == (9, 4) and decoded.getpixel((0, 0)) == (1, 2, 3)
    assert decode_data_url(parts[1]["image_url"]["url"]) == ("image/png", _png_bytes())


def test_file_path_keeps_bytes_and_sniffs_type(tmp_path):
    path = tmp_path / "scan.bin"  # the extension is ignored: the signature decides
    buffer = io.BytesIO()
    Image.new("L", (6, 6), 128).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    mime, data = decode_data_url(image_to_data_url(path))
    assert mime == "image/jpeg" and data == buffer.getvalue()
    assert decode_data_url(image_to_data_url(str(path)))[1] == buffer.getvalue()


def test_one_bare_image_and_urls_pass_through():
    message = user_message("x", images=_png_bytes())
    assert len(message["content"]) == 2
    assert image_to_data_url("https://example.org/a.png") == "https://example.org/a.png"
    assert image_part("data:image/png;base64,AAAA", detail="low")["image_url"] == {
        "url": "data:image/png;base64,AAAA", "detail": "low"}


def test_cmyk_is_converted_for_png():
    _, data = decode_data_url(image_to_data_url(Image.new("CMYK", (3, 3))))
    assert Image.open(io.BytesIO(data)).mode == "RGB"


@pytest.mark.parametrize("data, mime", [
    (b"\x89PNG\r\n\x1a\n....", "image/png"),
    (b"\xff\xd8\xff\xe0", "image/jpeg"),
    (b"GIF89a..", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"II*\x00", "image/tiff"),
    (b"hello", None),
])
def test_sniff(data, mime):
    assert sniff_image_mime(data) == mime


@pytest.mark.parametrize("image, error, match", [
    (b"not an image", ValueError, "not a PNG"),
    (b"", ValueError, "empty"),
    (3.5, TypeError, "float"),
    ("/no/such/file.png", FileNotFoundError, "file.png"),
])
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        user_message("x", images=[image])


def test_bad_detail_and_text():
    with pytest.raises(ValueError, match="detail"):
        image_part(_png_bytes(), detail="medium")
    with pytest.raises(TypeError, match="text"):
        user_message(None)  # type: ignore[arg-type]
