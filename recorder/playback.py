"""Offline playback composition: one file per session, participants in a grid, audio mixed.

Transcoding is fine here (it is offline); the work runs in an ``ffmpeg`` child process
(Debian's ffmpeg, which must be installed), so the media worker's interpreter only waits.
Call :func:`compose` from a thread (``asyncio.to_thread``) or a process pool.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

from config.errors import RecorderError
from recorder.layout import session_runs
from recorder.manifest import parse_iso_utc, read_manifest


def compose(
    session_dir: Path,
    output: Path,
    *,
    cell: tuple[int, int] = (640, 360),
    fps: int = 25,
    ffmpeg: str = "ffmpeg",
    timeout: float | None = None,
) -> Path:
    """Render ``output`` (H264 + AAC MP4) from a session's files, placed by wall clock.

    Args:
        session_dir: the session directory (every run's files are composed).
        output: the MP4 to write.
        cell: width and height of each participant's cell in the grid.
        fps: output frame rate.
        ffmpeg: the ffmpeg executable.
        timeout: seconds before the ffmpeg process is killed.

    Returns:
        ``output``.
    """
    executable = shutil.which(ffmpeg)
    if executable is None:
        raise RecorderError(f"playback needs ffmpeg, not found: {ffmpeg!r}")
    files = [
        {**f, "path": str(target.path / f["path"])}
        for target in session_runs(session_dir)
        for f in read_manifest(target.path).get("files", [])
        if f.get("started_at") and f.get("ended_at") and (target.path / f["path"]).exists()
    ]
    if not files:
        raise RecorderError(f"no playable media in {str(session_dir)!r}")
    start = min(parse_iso_utc(f["started_at"]) for f in files)
    end = max(parse_iso_utc(f["ended_at"]) for f in files)
    peers = list(dict.fromkeys(str(f["peer"]) for f in files))
    cols = math.ceil(math.sqrt(len(peers)))
    rows = math.ceil(len(peers) / cols)
    width, height = cell
    args = [executable, "-nostdin", "-n", "-loglevel", "error"]
    parts = [f"color=c=black:s={width * cols}x{height * rows}:r={fps}:d={end - start:.3f}[base0]"]
    audio_labels = []
    layer = 0
    for index, file in enumerate(files):
        args += ["-i", file["path"]]
        offset = parse_iso_utc(file["started_at"]) - start
        slot = peers.index(str(file["peer"]))
        x, y = (slot % cols) * width, (slot // cols) * height
        if "video" in file.get("codecs", {}):
            parts.append(
                f"[{index}:v]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,"
                f"setpts=PTS-STARTPTS+{offset:.3f}/TB[v{index}]"
            )
            parts.append(f"[base{layer}][v{index}]overlay={x}:{y}:eof_action=pass[base{layer + 1}]")
            layer += 1
        if "audio" in file.get("codecs", {}):
            delay = round(offset * 1000)
            parts.append(
                f"[{index}:a]aresample=48000,asetpts=PTS-STARTPTS,adelay={delay}:all=1[a{index}]"
            )
            audio_labels.append(f"[a{index}]")
    graph_maps = ["-map", f"[base{layer}]"]
    if audio_labels:
        parts.append(
            f"{''.join(audio_labels)}amix=inputs={len(audio_labels)}:normalize=0:"
            "duration=longest[aout]"
        )
        graph_maps += ["-map", "[aout]", "-c:a", "aac", "-b:a", "96k"]
    args += ["-filter_complex", ";".join(parts), *graph_maps]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p"]
    args += ["-movflags", "+faststart", "-t", f"{end - start:.3f}", str(output)]
    try:
        subprocess.run(args, check=True, capture_output=True, timeout=timeout)
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace")[-500:]
        raise RecorderError(f"ffmpeg failed composing {str(output)!r}: {message}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RecorderError(f"ffmpeg timed out composing {str(output)!r}") from exc
    return output
