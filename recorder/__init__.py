"""recorder: forwarded encoded media to files without transcoding.

One WebM (VP8 + Opus) or Matroska (H264 + Opus) file per participant and segment, muxed in
a writer thread; a manifest per session with SHA-256 hashes chained across sessions
(``chain.jsonl``); verification, crash recovery, retention and offline playback composition.
It runs inside the media worker and reports only through return values and ``on_event``
callbacks. See docs/recording.md.
"""
