#!/usr/bin/python3
"""Serve video files as RTSP "site cameras" with GStreamer's rtsp-server.

Run by the *system* interpreter (``/usr/bin/python3``) because python3-gi and the
GstRtspServer typelib live there, not in the project's virtualenv/pyenv. Only the
standard library and ``gi`` are used. The project-side wrapper is
``smarteye/sim/rtsp_server.py``.

Usage::

    /usr/bin/python3 rtsp_server_main.py --port 8554 --mount /cam1=/path/a.mp4 --loop

Every mount is one shared pipeline (decode, re-encode to H.264, RTP-payload), so all
clients of a camera see the same frames at the same time, like a real camera.

Prints exactly one line ``READY <port>`` on stdout once the server listens.
Errors (missing file, port in use) give one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as exc:  # pragma: no cover - depends on the host
    print(f"rtsp_server_main: GStreamer Python bindings unavailable: {exc}", file=sys.stderr, flush=True)
    sys.exit(3)

# Initialise before the GObject subclass below is registered, so every GStreamer type
# its vfuncs and signals refer to already exists.
Gst.init(None)

# The file path is set as a property after parsing (never interpolated into the launch
# string), so spaces, quotes or '!' in a path cannot break or inject into the pipeline.
# decodebin exposes only raw video (caps=) and the autoplug-continue handler below keeps
# it from decoding audio/data streams nobody would consume.
LAUNCH = (
    "( filesrc name=src ! decodebin name=dec caps=video/x-raw ! videoconvert name=conv"
    " ! x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max=30"
    " ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)

_NONE = Gst.CLOCK_TIME_NONE


def _log(msg: str) -> None:
    print(f"rtsp_server_main: {msg}", file=sys.stderr, flush=True)


def _video_only(_dec: Gst.Element, _pad: Gst.Pad, caps: Gst.Caps) -> bool:
    """decodebin autoplug-continue: stop plugging (decoding) audio, subtitles and data."""
    if caps.get_size() == 0:
        return True
    name = caps.get_structure(0).get_name()
    return not name.startswith(("audio/", "text/", "subpicture/", "meta/", "closedcaption/", "subtitle/"))


def _answer_not_seekable(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    """Make the looping media look unseekable, like a live camera.

    rtsp-media seeks the pipeline on every PLAY that carries a Range (FFmpeg always
    sends ``npt=0.000-``): a flushing seek that would rewind all shared clients and
    reset running time under the loop's offset. Answering the SEEKING query as handled
    leaves it at its defaults (seekable=FALSE), so rtsp-media skips the seek; the query
    cannot be written from Python (PyGObject holds a second ref), hence no set_seeking().
    """
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


class _Looper:
    """Replays the decoded video forever, seamlessly, for any container.

    Why not SEGMENT seeks: tsdemux rejects them ("seek flags 0x9 are not supported").
    Instead, at the decoder/encoder boundary (videoconvert's sink pad) EOS is swallowed,
    the demuxer is flush-seeked back to 0 from another thread, the resulting flushes are
    kept from reaching the encoder and sinks, and the pad offset shifts the new segment
    so running time (RTP timestamps, client pts) continues where the last pass ended.
    GStreamer applies pad offsets to QoS events too, so the decoder never sees
    timestamps from the "future".
    """

    def __init__(self, pad: Gst.Pad) -> None:
        self._pad = pad
        self._segment: Gst.Segment | None = None
        self._end = 0  # running time (ns) at the end of the latest buffer
        self._frame = 0  # duration (ns) of the latest buffer, for buffers without one
        self._rewinding = False
        self._buffers_since_rewind = 0
        pad.add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH,
            self._probe,
        )

    def _probe(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.type & Gst.PadProbeType.BUFFER:
            self._on_buffer(info.get_buffer())
            return Gst.PadProbeReturn.OK
        event = info.get_event()
        etype = event.type
        if etype == Gst.EventType.SEGMENT:
            self._segment = event.parse_segment()
            if self._rewinding:
                self._rewinding = False
            return Gst.PadProbeReturn.OK
        if etype == Gst.EventType.EOS:
            if self._buffers_since_rewind == 0:
                return Gst.PadProbeReturn.OK  # nothing decodable: let it end, don't spin
            self._rewinding = True
            self._buffers_since_rewind = 0
            threading.Thread(target=self._rewind, name="rtsp-loop", daemon=True).start()
            return Gst.PadProbeReturn.DROP
        if self._rewinding and etype in (
            Gst.EventType.FLUSH_START,
            Gst.EventType.FLUSH_STOP,
            Gst.EventType.STREAM_START,
        ):
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    def _on_buffer(self, buf: Gst.Buffer) -> None:
        self._buffers_since_rewind += 1
        seg = self._segment
        if seg is None or buf.pts == _NONE:
            return
        if buf.duration != _NONE:
            self._frame = buf.duration
        running = seg.to_running_time(Gst.Format.TIME, buf.pts)
        if running != _NONE:
            self._end = max(self._end, running + self._frame)

    def _rewind(self) -> None:
        # After a flushing seek the demuxer's segment starts again at running time 0.
        self._pad.set_offset(self._end)
        seek = Gst.Event.new_seek(
            1.0,
            Gst.Format.TIME,
            Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT,
            Gst.SeekType.SET,
            0,
            Gst.SeekType.NONE,
            -1,
        )
        # push_event on a sink pad sends the event upstream, into decodebin.
        if not self._pad.push_event(seek):
            _log("loop seek failed; the stream ends here")
            self._rewinding = False


class FileFactory(GstRtspServer.RTSPMediaFactory):
    """One shared pipeline per mount, built from LAUNCH with the file path set safely."""

    def __init__(self, path: str, loop: bool, keyframe_interval: int = 30) -> None:
        super().__init__()
        self._path = path
        self._loop = loop
        self._keyframe_interval = keyframe_interval
        self.set_shared(True)

    def do_create_element(self, url: object) -> Gst.Element:
        element = Gst.parse_launch(LAUNCH)
        element.get_by_name("src").set_property("location", self._path)
        element.get_by_name("enc").set_property("key-int-max", self._keyframe_interval)
        element.get_by_name("dec").connect("autoplug-continue", _video_only)
        if self._loop:
            pay_sink = element.get_by_name("pay0").get_static_pad("sink")
            pay_sink.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, _answer_not_seekable)
            # The pad probe holds the looper, so it lives exactly as long as this pipeline.
            _Looper(element.get_by_name("conv").get_static_pad("sink"))
        return element


def _parse_mount(spec: str) -> tuple[str, str]:
    mount, sep, path = spec.partition("=")
    if not sep or not mount.startswith("/") or len(mount) < 2 or not path:
        raise argparse.ArgumentTypeError(f"expected /name=/path/to/file, got {spec!r}")
    return mount, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8554, help="0 picks a free port (see READY)")
    parser.add_argument("--address", default="0.0.0.0", help="bind address (default: all interfaces)")
    parser.add_argument("--mount", type=_parse_mount, action="append", default=[], metavar="/NAME=FILE")
    parser.add_argument("--loop", action="store_true", help="replay each file forever")
    parser.add_argument(
        "--keyframe-interval", type=int, default=30, help="frames between keyframes (cameras' GOP: 1-10 s and more)"
    )
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="exit when stdin closes, so a crashed parent leaves no orphan server",
    )
    args = parser.parse_args(argv)

    if not args.mount:
        _log("no --mount given")
        return 2
    if not 0 <= args.port < 65536:
        _log(f"invalid port {args.port}")
        return 2
    seen: set[str] = set()
    for mount, path in args.mount:
        if mount in seen:
            _log(f"duplicate mount {mount}")
            return 2
        seen.add(mount)
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            _log(f"file not found or not readable for {mount}: {path}")
            return 2

    for needed in ("filesrc", "decodebin", "videoconvert", "x264enc", "rtph264pay"):
        if Gst.ElementFactory.find(needed) is None:
            _log(f"GStreamer element {needed!r} missing (install gstreamer1.0-plugins-*)")
            return 3

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for mount, path in args.mount:
        mounts.add_factory(mount, FileFactory(os.path.abspath(path), args.loop, args.keyframe_interval))

    # attach() binds and listens; it returns 0 (after a GLib warning) when it cannot.
    source_id = server.attach(None)
    if not source_id:
        _log(f"cannot listen on {args.address}:{args.port} (port in use?)")
        return 1

    main_loop = GLib.MainLoop()

    def _quit(*_args: object) -> bool:
        main_loop.quit()
        return GLib.SOURCE_REMOVE

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, _quit)

    if args.exit_with_stdin:

        def _stdin_ready(fd: int, _condition: GLib.IOCondition) -> bool:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                return _quit()
            return GLib.SOURCE_CONTINUE

        GLib.io_add_watch(
            sys.stdin.fileno(),
            GLib.PRIORITY_DEFAULT,
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
            _stdin_ready,
        )

    print(f"READY {server.get_bound_port()}", flush=True)
    try:
        main_loop.run()
    finally:
        GLib.source_remove(source_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
