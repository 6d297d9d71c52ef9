"""The worker's offers keep the payload types and header-extension ids already negotiated."""

from __future__ import annotations

import re

from gateway.media.numbering import Numbering

# Chrome's numbering (what a browser's first offer uses): opus 111, VP8 96 + RTX 97, H264
# 42001f 102 + RTX 103, 42e01f 106 + RTX 107; audio-level 1, abs-send-time 2, mid 4
CHROME_PT = {
    "audio": {96: 111},
    "video": {97: 96, 98: 97, 99: 102, 100: 103, 101: 106, 102: 107},
}
CHROME_EXT = {
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 1,
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2,
    "urn:ietf:params:rtp-hdrext:sdes:mid": 4,
}


def renumber_like_chrome(sdp: str) -> str:
    """Rewrite an aiortc offer to Chrome's numbers (stands in for a browser's first offer)."""
    out = []
    kind = ""
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            kind = line[2:7]
            parts = line.split(" ")
            pts = CHROME_PT.get(kind, {})
            line = " ".join(parts[:3] + [str(pts.get(int(p), p)) for p in parts[3:]])
        elif kind in CHROME_PT:
            pts = CHROME_PT[kind]
            m = re.match(r"^a=(rtpmap|fmtp|rtcp-fb):(\d+)(.*)$", line)
            if m:
                rest = re.sub(
                    r"apt=(\d+)", lambda a, pts=pts: f"apt={pts.get(int(a[1]), a[1])}", m[3]
                )
                line = f"a={m[1]}:{pts.get(int(m[2]), m[2])}{rest}"
            e = re.match(r"^a=extmap:(\d+) (\S+)$", line)
            if e:
                line = f"a=extmap:{CHROME_EXT[e[2]]} {e[2]}"
        out.append(line)
    return "\r\n".join(out)


def numbers(sdp: str) -> list[tuple[str, dict[str, int], dict[str, int]]]:
    """Per m-section: kind, codec name → payload type (RTX as rtx/<base>), URI → id."""
    sections = []
    for block in sdp.split("\r\nm=")[1:]:
        kind = block.split(" ", 1)[0]
        names = {int(pt): name for pt, name in re.findall(r"a=rtpmap:(\d+) ([^/]+)/", block)}
        apt = {int(pt): int(base) for pt, base in re.findall(r"a=fmtp:(\d+) apt=(\d+)", block)}
        codecs: dict[str, int] = {}
        for pt, name in names.items():
            label = f"rtx/{names[apt[pt]]}" if name == "rtx" else name
            codecs.setdefault(label, pt)
        exts = {uri: int(i) for i, uri in re.findall(r"a=extmap:(\d+) (\S+)", block)}
        sections.append((kind, codecs, exts))
    return sections


AIORTC_REOFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "a=recvonly",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=mid:0",
        "a=rtpmap:96 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
        "a=recvonly",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=mid:1",
        "a=rtpmap:97 VP8/90000",
        "a=rtcp-fb:97 nack pli",
        "a=rtpmap:98 rtx/90000",
        "a=fmtp:98 apt=97",
        "m=video 9 UDP/TLS/RTP/SAVPF 99 100",
        "a=sendonly",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=mid:2",
        "a=rtpmap:99 H264/90000",
        "a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        "a=rtpmap:100 rtx/90000",
        "a=fmtp:100 apt=99",
        "",
    ]
)


CHROME_FIRST = "\r\n".join(
    [
        "v=0",
        "o=- 2 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99",
        "a=mid:1",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:13 urn:3gpp:video-orientation",
        "a=sendonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:98 VP9/90000",
        "a=rtpmap:99 rtx/90000",
        "a=fmtp:99 apt=98",
        "",
    ]
)


def test_reoffer_keeps_the_numbers_of_the_first_offer_and_avoids_taken_ones():
    numbering = Numbering()
    numbering.learn(CHROME_FIRST)

    rewritten = numbering.apply(AIORTC_REOFFER)

    audio, vp8, h264 = numbers(rewritten)
    assert audio == ("audio", {"opus": 111}, {CHROME_EXT_MID: 4, CHROME_EXT_LEVEL: 1})
    assert vp8 == ("video", {"VP8": 96, "rtx/VP8": 97}, {CHROME_EXT_MID: 4, CHROME_EXT_ABS: 2})
    # H264 was never negotiated: aiortc's 99 is VP9's RTX here, 100 is free
    assert h264 == ("video", {"H264": 100, "rtx/H264": 101}, {CHROME_EXT_MID: 4, CHROME_EXT_ABS: 2})
    assert "a=fmtp:97 apt=96" in rewritten
    assert "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n" in rewritten
    # and the next offer says the same
    assert numbering.apply(AIORTC_REOFFER) == rewritten


def test_a_new_codec_never_takes_a_number_the_peer_uses():
    numbering = Numbering()
    # the peer uses 99 and 100 for something else (and 3 for another extension)
    numbering.learn(
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 99 100\r\na=extmap:3 urn:x-other\r\n"
        "a=rtpmap:99 AV1/90000\r\na=rtpmap:100 rtx/90000\r\na=fmtp:100 apt=99\r\n"
    )
    rewritten = numbering.apply(AIORTC_REOFFER)
    _, _, h264 = numbers(rewritten)
    pts = set(h264[1].values())
    assert not pts & {96, 97, 98, 99, 100}  # aiortc's other codecs and the peer's
    assert len(pts) == 2
    assert h264[2]["http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"] not in (1, 2, 3)


def test_payload_types_are_kept_per_m_section():
    # a watch-only client (data channel first) got the worker's numbers for its receiving
    # sections; promoted, it offers a new sending section with its own number for opus
    numbering = Numbering()
    numbering.learn(
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 opus/48000/2\r\n"
    )
    numbering.learn(
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 opus/48000/2\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:3\r\na=rtpmap:111 opus/48000/2\r\n"
    )
    raw = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 opus/48000/2\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=rtpmap:96 opus/48000/2\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:4\r\na=rtpmap:96 opus/48000/2\r\n"
    )
    assert [codecs for _, codecs, _ in numbers(numbering.apply(raw))] == [
        {"opus": 96},
        {"opus": 111},  # what that section negotiated, not the connection's first number
        {"opus": 96},
    ]


CHROME_EXT_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
CHROME_EXT_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
CHROME_EXT_ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


async def test_worker_reoffers_keep_a_browsers_numbers_and_media_flows(
    client, room_opener, media_sources, worker, decode_errors
):
    video_cls, audio_cls = media_sources
    await room_opener("r1", "vp8")
    alice = await client("r1", "alice")
    await alice.offer(video_cls(), audio_cls(), munge=renumber_like_chrome)
    bob = await client("r1", "bob")
    await bob.offer(video_cls(), audio_cls())
    await alice.send("peer.subscribe", publisher="bob")
    await bob.send("peer.subscribe", publisher="alice")

    # both decode each other: alice's media, sent with Chrome's numbers, still reaches bob
    # after the worker re-offered to alice
    await alice.wait_for(
        lambda: alice.frames_from("bob", "video") >= 20 and alice.frames_from("bob", "audio") >= 20,
        within=20,
    )
    await bob.wait_for(
        lambda: bob.frames_from("alice", "video") >= 20 and bob.frames_from("alice", "audio") >= 20,
        within=20,
    )
    reoffers = alice.of_type("peer.offer")
    assert reoffers
    for kind, codecs, exts in numbers(reoffers[-1]["sdp"]):
        if kind == "audio":
            assert codecs == {"opus": 111}
            assert exts == {CHROME_EXT_MID: 4, CHROME_EXT_LEVEL: 1}
        else:
            assert codecs == {"VP8": 96, "rtx/VP8": 97}
            assert exts == {CHROME_EXT_MID: 4, CHROME_EXT_ABS: 2}
    assert decode_errors.messages == []
