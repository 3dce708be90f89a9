"""A ``<video>`` in Chromium plays a WebM clip from ``trio-ws serve ROOT`` and seeks through a 206.

The clip is generated at test time by ffmpeg (VP8 in WebM, ~4.5 MB of noise so that it cannot be
fetched whole before the seek; Cues moved to the front so the browser can seek without reading the
end); no media file is committed. ``preload="metadata"`` makes Chromium stop after the head, so the
seek to the middle needs a new ``Range: bytes=N-`` request, answered by ``StaticFiles`` with a 206.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import Pages, evaluate, require_ffmpeg, run_server

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

DURATION = 6  # seconds
#: Matroska element ids: Cues (the seek index) and Cluster (the media data).
CUES_ID = bytes.fromhex("1c53bb6b")
CLUSTER_ID = bytes.fromhex("1f43b675")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clip</title><link rel="icon" href="data:,"></head>
<body><video id="video" src="clip.webm" preload="metadata" muted playsinline></video></body></html>
"""

#: Wait for metadata, seek to arg.target, wait for the seek and for a decodable frame, then play from
#: there until currentTime has advanced; report the element's state along the way.
SEEK_AND_PLAY = """
    const video = document.getElementById(arg.id);
    const event = (name) => new Promise((resolve) => video.addEventListener(name, resolve, {once: true}));
    if (video.readyState < 1) await event("loadedmetadata");
    const duration = video.duration;
    const seeked = event("seeked");
    video.currentTime = arg.target;
    await seeked;
    if (video.readyState < 2) await event("loadeddata");
    const afterSeek = {currentTime: video.currentTime, readyState: video.readyState};
    await video.play();
    while (video.currentTime < arg.target + 0.5 && !video.ended) await event("timeupdate");
    video.pause();
    return {
        duration, afterSeek, playedTo: video.currentTime, readyState: video.readyState,
        error: video.error && video.error.message, width: video.videoWidth, height: video.videoHeight,
    };
"""

#: The state of the video once a frame at the current position is decodable.
AFTER_SEEK = """
    const video = document.getElementById(arg.id);
    if (video.readyState < 2) await new Promise((resolve) => {
        video.addEventListener("loadeddata", resolve, {once: true});
    });
    return {currentTime: video.currentTime, readyState: video.readyState, duration: video.duration};
"""


@dataclass
class Clip:
    path: Path
    size: int


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A seekable VP8/WebM clip of DURATION seconds, 320x240 at 10 fps, about 4.5 MB."""
    ffmpeg = require_ffmpeg()
    path = tmp_path_factory.mktemp("media") / "clip.webm"
    # testsrc with noise at a fixed 12 Mbit/s: big enough that the browser must come back for the middle.
    subprocess.run(
        [
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi", "-i", f"testsrc=duration={DURATION}:size=320x240:rate=10",
            "-vf", "noise=alls=60:allf=t",
            "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
            "-b:v", "12M", "-minrate", "12M", "-maxrate", "12M", "-g", "10",
            "-cues_to_front", "1",
            str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    data = path.read_bytes()
    # Seekable: the Cues index is there, ahead of the first Cluster.
    assert 0 <= data.find(CUES_ID) < data.find(CLUSTER_ID), "clip.webm has no Cues before its Clusters"
    assert len(data) > 3_000_000, len(data)
    return Clip(path, len(data))


@dataclass
class Seen:
    status: int
    range: str | None
    content_range: str | None


def watch_clip(pages: Pages) -> tuple[Page, list[Seen]]:
    """A page on which the ``<video>``'s own responses for clip.webm are recorded (not fetch()es)."""
    page = pages.new()
    seen: list[Seen] = []

    def on_response(response: Response) -> None:
        if response.url.split("?")[0].endswith("/clip.webm") and response.request.resource_type == "media":
            headers = response.headers
            seen.append(
                Seen(response.status, response.request.headers.get("range"), headers.get("content-range"))
            )

    page.on("response", on_response)
    return page, seen


def mid_file_ranges(seen: list[Seen], size: int) -> list[int]:
    """Start offsets of the 206 answers for clip.webm that begin past byte 0."""
    starts = []
    for response in seen:
        if response.status != 206 or response.content_range is None:
            continue
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.content_range)
        assert match, response.content_range
        first, last, total = map(int, match.groups())
        assert total == size
        assert last == size - 1  # the browser asks for open ranges: bytes=N-
        if first > 0:
            starts.append(first)
    return starts


def check_played(result: dict[str, Any], target: float) -> None:
    assert result["error"] is None
    assert result["duration"] == pytest.approx(DURATION, abs=0.2)
    assert result["afterSeek"]["currentTime"] == pytest.approx(target, abs=0.05)
    assert result["afterSeek"]["readyState"] >= 2  # HAVE_CURRENT_DATA: a frame at the seek target
    assert result["playedTo"] >= target + 0.5  # and it plays on from there
    assert (result["width"], result["height"]) == (320, 240)


def make_root(clip: Clip, tmp_path: Path) -> Path:
    """ROOT: the clip and a page that shows it."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copyfile(clip.path, root / "clip.webm")  # a symlink out of ROOT would be refused
    (root / "index.html").write_text(PAGE)
    return root


def test_video_plays_and_seeks_through_206(clip: Clip, pages: Pages, tmp_path: Path) -> None:
    with run_server(str(make_root(clip, tmp_path)), log_dir=tmp_path) as server:
        page, seen = watch_clip(pages)
        page.goto(server.url + "/index.html")
        target = DURATION / 2
        result = evaluate(page, SEEK_AND_PLAY, {"id": "video", "target": target})
    check_played(result, target)
    assert seen, "no response for clip.webm"
    assert all(response.status == 206 for response in seen), seen
    # The seek to the middle went through a 206 starting past byte 0.
    assert mid_file_ranges(seen, clip.size), seen
    assert pages.errors() == []


def test_demo_media_page(clip: Clip, pages: Pages, tmp_path: Path) -> None:
    """``serve ROOT --demo``: the demo's media page plays the clip, seeks with its buttons, probes ranges."""
    with run_server(str(make_root(clip, tmp_path)), "--demo", log_dir=tmp_path) as server:
        page, seen = watch_clip(pages)
        page.goto(server.url + "/_demo/media.html?src=/clip.webm")
        page.wait_for_selector('body[data-ready="true"]')  # config.json applied
        assert page.locator("#media-note").get_attribute("data-root") == "true"
        page.wait_for_selector('#media-events .line[data-event="loadedmetadata"]')
        # The size probe (bytes=0-0) found the total size in Content-Range.
        page.wait_for_selector(f'#media-size[data-bytes="{clip.size}"]')

        page.click("#media-seek-50")
        page.wait_for_selector('#media-events .line[data-event="seeked"]')
        state = evaluate(page, AFTER_SEEK, {"id": "media-video"})
        assert state["duration"] == pytest.approx(DURATION, abs=0.2)
        assert state["currentTime"] == pytest.approx(DURATION / 2, abs=0.05)
        assert state["readyState"] >= 2
        # The page's own probe at the byte the seek maps to got a 206 for exactly the bytes asked.
        probe = page.locator('#range-log .line[data-source="seek"]').first
        probe.wait_for()
        assert probe.get_attribute("data-status") == "206"
        first = int(clip.size * 0.5)
        assert probe.get_attribute("data-content-range") == f"bytes {first}-{first + 1023}/{clip.size}"

        # The prober, by hand: bytes 100-131 of the clip, shown as hex.
        page.fill("#range-url", "/clip.webm")
        page.fill("#range-start", "100")
        page.fill("#range-end", "131")
        page.click("#range-fetch")
        page.wait_for_selector('#range-log .line[data-source="form"]')
        assert page.locator("#range-status").get_attribute("data-status") == "206"
        assert page.locator("#range-content-range").inner_text() == f"bytes 100-131/{clip.size}"
        assert page.locator("#range-received").inner_text() == "32"
        assert page.locator("#range-bytes").inner_text() == clip.path.read_bytes()[100:132].hex(" ")

    # The <video>'s own requests: 206s, one of them from the middle of the file.
    assert seen, "no media response for clip.webm"
    assert all(response.status == 206 for response in seen), seen
    assert mid_file_ranges(seen, clip.size), seen
    assert pages.errors() == []
