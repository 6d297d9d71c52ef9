"""Payload types and RTP header-extension ids that stay fixed for the life of a connection.

JSEP (RFC 8829, 5.2.2 and 5.3.1) wants every later offer to reuse the payload types and
header-extension ids already negotiated, and within one BUNDLE group an id or payload type may
never change meaning. aiortc's ``createOffer`` numbers from its own table every time (opus 96,
VP8 97 + RTX 98, H264 99-102; ``sdes:mid`` 1, ``ssrc-audio-level`` 2, ``abs-send-time`` 3),
whatever the client chose in its first offer. Chrome then refuses the re-offer ("RTP extension
ID reassignment not supported") or sends with the new payload types while aiortc's receivers,
started once, keep routing by the old ones, so media is silently dropped.

:class:`Numbering` remembers, per peer connection, what every description exchanged so far
used (codec → payload type, extension URI → id) and rewrites the worker's offers to the same
numbers. A codec or extension not seen yet keeps aiortc's number when that is free, or gets the
lowest free one. It works on the SDP text only: no aiortc internals are involved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: dynamic payload type ranges (RFC 3551 96-127; RFC 5761 also lets 35-63 be used)
_DYNAMIC_PTS = (*range(96, 128), *range(35, 64))
#: one-byte header extension ids (RFC 8285); aiortc writes one-byte headers only
_EXT_IDS = range(1, 15)

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)(?:/(\d+))?")
_FMTP = re.compile(r"^a=fmtp:(\d+) (.*)$")
_EXTMAP = re.compile(r"^a=extmap:(\d+)(/\w+)? (\S+)(.*)$")
_PT_LINE = re.compile(r"^a=(rtpmap|fmtp|rtcp-fb):(\d+)(.*)$")

CodecKey = tuple[str, ...]


def _params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split(";"):
        name, _, value = item.strip().partition("=")
        if name:
            out[name.lower()] = value.strip()
    return out


def _sections(lines: list[str]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` line ranges of the audio and video m-sections."""
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        if lines[start].startswith(("m=audio", "m=video")):
            yield start, end


def _mid(section: list[str]) -> str | None:
    return next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)


def _codec_keys(section: list[str]) -> dict[int, CodecKey]:
    """Payload type → what it means, comparable across descriptions of both ends.

    H264 differs by profile and packetization mode; RTX by the codec it repairs.
    """
    rtpmap: dict[int, tuple[str, str, str]] = {}
    fmtp: dict[int, dict[str, str]] = {}
    for line in section:
        m = _RTPMAP.match(line)
        if m:
            rtpmap[int(m[1])] = (m[2].lower(), m[3], m[4] or "")
            continue
        f = _FMTP.match(line)
        if f:
            fmtp[int(f[1])] = _params(f[2])
    keys: dict[int, CodecKey] = {}
    for pt, (name, clock, channels) in rtpmap.items():
        if name == "rtx":
            continue
        key: CodecKey = (name, clock, channels)
        if name == "h264":
            params = fmtp.get(pt, {})
            key += (
                params.get("profile-level-id", "42e01f").lower(),
                params.get("packetization-mode", "0"),
            )
        keys[pt] = key
    for pt, (name, clock, _channels) in rtpmap.items():
        apt = fmtp.get(pt, {}).get("apt", "")
        if name == "rtx" and apt.isdigit() and int(apt) in keys:
            keys[pt] = ("rtx", clock, *keys[int(apt)])
    return keys


class Numbering:
    """The payload types and header-extension ids of one peer connection.

    Payload types are kept per m-section (mid): a codec may have different numbers in two
    m-sections of one BUNDLE group (a browser that adds a section later picks its own), but a
    number never means two codecs. Extension ids are one map for the whole connection (BUNDLE).
    """

    def __init__(self) -> None:
        #: mid → codec → payload type, as negotiated in that m-section
        self.by_mid: dict[str, dict[CodecKey, int]] = {}
        #: codec → the payload type new m-sections get (the first one seen)
        self.payload_types: dict[CodecKey, int] = {}
        self.extension_ids: dict[str, int] = {}
        self._pt_meaning: dict[int, CodecKey] = {}
        self._used_ids: set[int] = set()

    def learn(self, sdp: str) -> None:
        """Remember the numbers a description uses (the first meaning of a number wins).

        Feed it every description applied, in the order they are applied; give the answer the
        worker makes before the offer it answers, so that what was accepted wins.
        """
        lines = sdp.splitlines()
        for start, end in _sections(lines):
            section = lines[start:end]
            mid = _mid(section)
            for pt, key in _codec_keys(section).items():
                if self._pt_meaning.setdefault(pt, key) != key:
                    continue  # the peer reuses a number for another codec: not ours to keep
                if mid is not None:
                    self.by_mid.setdefault(mid, {}).setdefault(key, pt)
                self.payload_types.setdefault(key, pt)
            for line in section:
                m = _EXTMAP.match(line)
                if m:
                    ext_id, uri = int(m[1]), m[3]
                    if uri not in self.extension_ids and ext_id not in self._used_ids:
                        self.extension_ids[uri] = ext_id
                    self._used_ids.add(ext_id)

    def apply(self, sdp: str) -> str:
        """Rewrite an offer of the worker to the remembered numbers (new ones are remembered)."""
        eol = "\r\n" if "\r\n" in sdp else "\n"
        lines = sdp.split(eol)
        for start, end in _sections(lines):
            section = lines[start:end]
            keys = _codec_keys(section)
            negotiated = self.by_mid.setdefault(_mid(section) or "", {})
            # base codecs first, so that a new RTX never takes its base codec's number
            order = sorted(keys, key=lambda pt: keys[pt][0] == "rtx")
            mapping: dict[int, int] = {}
            for pt in order:
                key = keys[pt]
                if key not in negotiated:
                    negotiated[key] = self._payload_type(key, pt)
                mapping[pt] = negotiated[key]
            lines[start:end] = [self._rewrite(line, mapping) for line in section]
        return eol.join(lines)

    def _payload_type(self, key: CodecKey, preferred: int) -> int:
        if key in self.payload_types:
            return self.payload_types[key]
        if preferred not in _DYNAMIC_PTS:
            return preferred  # a static payload type means the same everywhere
        free = [pt for pt in _DYNAMIC_PTS if pt not in self._pt_meaning]
        if not free:
            raise ValueError("no free dynamic payload type left")
        pt = preferred if preferred not in self._pt_meaning else free[0]
        self.payload_types[key] = pt
        self._pt_meaning[pt] = key
        return pt

    def _extension_id(self, uri: str, preferred: int) -> int:
        if uri in self.extension_ids:
            return self.extension_ids[uri]
        free = [i for i in _EXT_IDS if i not in self._used_ids]
        if not free:
            raise ValueError("no free header extension id left")
        ext_id = preferred if preferred in free else free[0]
        self.extension_ids[uri] = ext_id
        self._used_ids.add(ext_id)
        return ext_id

    def _rewrite(self, line: str, mapping: dict[int, int]) -> str:
        if line.startswith("m="):
            parts = line.split(" ")
            fmt = [str(mapping.get(int(p), int(p))) if p.isdigit() else p for p in parts[3:]]
            return " ".join(parts[:3] + fmt)
        m = _PT_LINE.match(line)
        if m:
            pt = int(m[2])
            rest = re.sub(r"apt=(\d+)", lambda a: f"apt={mapping.get(int(a[1]), int(a[1]))}", m[3])
            return f"a={m[1]}:{mapping.get(pt, pt)}{rest}"
        e = _EXTMAP.match(line)
        if e:
            return f"a=extmap:{self._extension_id(e[3], int(e[1]))}{e[2] or ''} {e[3]}{e[4]}"
        return line
