"""The edge node's live video: per stream one annotator pass and one encoder, and the outputs that share it
(WHEP viewers, UDP MPEG-TS, the uplink to the ground station).

Threads: each stream's encoder, each UDP output, and one asyncio loop ("video") for WebRTC, the WHEP
HTTP endpoint and the uplink.

The video runs at the camera's rate, not detection's: each source thread hands every decoded frame to `tap`
(latest wins in the encoder's one-frame slot; frames the encoder cannot keep up with are replaced there, counted
as `frames_replaced`), and the detection loop only tells `consume` which tracks its latest frame had. The encoder
draws, on its own copy of each frame, the latest detection's tracks moved to that frame's capture time
(edge/outputs/video/motion.py), so boxes are never more than one detection behind. A stream that is never tapped
(no source thread wired to it) is still drawn and encoded by `consume`, at the detection rate.

With `video.live.boxes: page` (edge/outputs/video/passthrough.py) a source already in browser-playable H.264 is
not encoded for its viewers: its packets go to them unchanged, each with its frame's boxes (the same motion-moved
tracks) for the page to draw. The encoder then runs only for the UDP MPEG-TS output (boxes burned in), or for the
viewers too when the source cannot be forwarded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hmac
import logging
import threading
import time
from collections.abc import Mapping, Sequence

import av
import numpy as np
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import TypeAdapter

from edge.config.video import VideoConfig
from edge.frame import Frame
from edge.metrics import EdgeMetrics
from edge.outputs.video.annotate import Annotator
from edge.outputs.video.encoder import StreamEncoder
from edge.outputs.video.motion import TrackMotion
from edge.outputs.video.mpegts_udp import MpegTsUdpOutput
from edge.outputs.video.passthrough import H264Passthrough
from edge.outputs.video.rate import SourceRate
from edge.outputs.video.uplink import VideoUplink
from edge.pipeline import StreamStats
from edge.track.tracker import TrackedBox
from smarteye.media.fanout import PacketFanout
from smarteye.media.listen import listen_or_next
from smarteye.media.packet import PtsClock
from smarteye.media.webrtc import WhepServer
from smarteye.media.whep_http import add_whep_routes
from smarteye.wire.messages import VideoBox, VideoState, VideoStreamState

log = logging.getLogger("edge.video")

BOX_LOG = 300  # frames of detected and of drawn boxes kept per stream (~10 s at 30 fps)
_BOX_LIST = TypeAdapter(list[VideoBox])


def _box_rows(boxes: Sequence[TrackedBox]) -> list[dict[str, float]]:
    return [
        {"track_id": b.track_id, "class_id": b.class_id, "x1": round(b.x1, 1), "y1": round(b.y1, 1),
         "x2": round(b.x2, 1), "y2": round(b.y2, 1)}
        for b in boxes
    ]  # fmt: skip


class LiveVideo:
    """Every source frame to its stream's one encoder (`tap`), with the boxes of the latest detection (`consume`)."""

    name = "video"

    def __init__(
        self,
        config: VideoConfig,
        node: str,
        streams: Sequence[str],
        class_names: dict[int, str],
        metrics: EdgeMetrics | None = None,
        rates: Mapping[str, StreamStats] | None = None,
        stream_class_names: Mapping[str, dict[int, str]] | None = None,
    ) -> None:
        """`rates`: the pipeline's per-stream records, for the overlay's fps (else the sink keeps its own).
        `stream_class_names`: the names of a stream whose model is not the node's (a per-stream `detector:`)."""
        try:
            av.codec.Codec("libx264", "w")
        except av.codec.codec.UnknownCodecError:
            raise RuntimeError("video: this PyAV build has no libx264 encoder (set video.enabled: false)") from None
        self.config = config
        self.node = node
        own_names = stream_class_names or {}
        self.annotators = {name: Annotator(config.annotation, own_names.get(name, class_names)) for name in streams}
        self.fanouts: dict[str, PacketFanout] = {}  # the viewers' (WHEP, uplink)
        self.burned: dict[str, PacketFanout] = {}  # the encoder's (boxes burned in): the viewers' too unless `page`
        self.encoders: dict[str, StreamEncoder] = {}
        self.passthrough: dict[str, H264Passthrough | None] = {}
        for name in streams:
            fanout = PacketFanout(name)
            page = config.live.mode(name) == "page"
            burned = PacketFanout(name) if page else fanout
            encoder = StreamEncoder(name, config.encoder, burned)
            burned.keyframe_requester = encoder.request_keyframe
            passthrough = None
            if page:  # one frame clock for both, so a viewer switched between them never goes back in time
                clock = PtsClock()
                encoder.clock = PtsClock(clock)
                passthrough = H264Passthrough(name, fanout, clock, config.live.max_keyframe_interval_s)
                fanout.keyframe_requester = functools.partial(self._viewer_keyframe, name)
            if metrics is not None:
                encoder.on_encoded = functools.partial(metrics.observe_stage, name, "encode")
            self.fanouts[name], self.burned[name], self.encoders[name] = fanout, burned, encoder
            self.passthrough[name] = passthrough
        self.udp_outputs = [MpegTsUdpOutput(self.burned[name], url) for name, url in config.udp_outputs.items()]
        self.whep = WhepServer(config.ice_servers, node=node, cors_origins=config.whep.cors_origins)
        self.uplink = VideoUplink(config.uplink, node, self.fanouts) if config.uplink else None
        self._shared_rates = rates is not None  # the pipeline records them: not a second time per frame
        self.rates = dict(rates) if rates is not None else {name: StreamStats() for name in streams}
        self.motion = {name: TrackMotion() for name in streams}
        self.source_rates = {name: SourceRate() for name in streams}
        self.source_frames = dict.fromkeys(streams, 0)  # every frame tapped, watched or not: the rate to keep up with
        # What was detected on which frame and what was drawn on which frame, recent and bounded, by capture time:
        # GET /streams/{stream}/boxes, so a test (or an operator) can check that drawn boxes follow the objects.
        self.detected = {name: collections.deque[dict[str, object]](maxlen=BOX_LOG) for name in streams}
        self.drawn = {name: collections.deque[dict[str, object]](maxlen=BOX_LOG) for name in streams}
        self._tapped: set[str] = set()  # streams whose source thread feeds `tap`: `consume` no longer encodes them
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="video", daemon=True)
        self._server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._uplink_task: asyncio.Task[None] | None = None

    # -- from the source threads -----------------------------------------------------------
    def tap(self, frame: Frame) -> None:
        """Every decoded frame of a source, before detection sees it (called on the source's thread).

        The picture is converted here, once, and shared read-only with detection (which would convert it anyway);
        the encoder draws on its own copy. Nothing is converted or encoded while nobody watches."""
        stream = frame.stream
        encoder = self.encoders.get(stream)
        if encoder is None:
            return
        self._tapped.add(stream)
        self.source_frames[stream] += 1
        source_rate = self.source_rates[stream]
        source_rate.observe(frame.seq, frame.pts, frame.capture_time)
        viewers, passthrough = self.fanouts[stream], self.passthrough[stream]
        forwarding = passthrough is not None and passthrough.active
        if forwarding and viewers.consumers:
            assert passthrough is not None
            if not passthrough.forward(frame, self._page_boxes(stream, frame.capture_time)):
                self._burn_for_viewers(stream)
                forwarding = False
        burned = self.burned[stream]
        if not (burned is not viewers and burned.consumers) and not (viewers.consumers and not forwarding):
            return  # nobody needs the encoder (nobody watches, or the viewers get the source's own packets)
        if source_rate.fps is None:
            return  # its first two or three frames: the stream starts once it can declare the real rate
        encoder.frame_rate = source_rate.fps
        encoder.submit(frame.bgr(), frame.capture_time, functools.partial(self._draw, stream, frame.capture_time))

    def _page_boxes(self, stream: str, capture_time: float) -> bytes:
        """The boxes the page draws on this frame (passthrough): the latest detection's, moved to its time."""
        motion = self.motion[stream]
        boxes = motion.at(capture_time)
        self.drawn[stream].append(
            {"capture_time": capture_time, "detection_time": motion.detection_time, "boxes": _box_rows(boxes)}
        )
        return _BOX_LIST.dump_json(self.annotators[stream].describe(boxes))

    def _burn_for_viewers(self, stream: str) -> None:
        """The source cannot be forwarded: the encoder (boxes burned in) serves the viewers too, from a keyframe."""
        encoder = self.encoders[stream]
        if encoder.also is None:
            encoder.also = self.fanouts[stream]
            encoder.request_keyframe()

    def _viewer_keyframe(self, stream: str) -> None:
        """A viewer needs a keyframe: the encoder makes one; a forwarded source's next one comes when it comes."""
        passthrough = self.passthrough[stream]
        if passthrough is None or not passthrough.active:
            self.encoders[stream].request_keyframe()

    def _draw(self, stream: str, capture_time: float, canvas: np.ndarray) -> None:
        """On the encoder's thread: the latest detection's tracks, moved to this frame's time, and the overlay."""
        fps = self.source_rates[stream].fps or 0.0
        detection_fps = self.rates[stream].fps()
        latency_ms = (time.time() - capture_time) * 1000
        overlay = f"{stream}  {fps:.1f} fps  detect {detection_fps:.1f} fps  {latency_ms:.0f} ms"
        motion = self.motion[stream]
        boxes = motion.at(capture_time)
        self.annotators[stream].draw(canvas, boxes, overlay)
        self.drawn[stream].append(
            {"capture_time": capture_time, "detection_time": motion.detection_time, "boxes": _box_rows(boxes)}
        )

    # -- from the detection loop -----------------------------------------------------------
    def consume(self, frame: Frame) -> None:
        """Sink: the finished frame's tracks become the ones drawn on the stream's next video frames."""
        rate = self.rates[frame.stream]
        if not self._shared_rates:
            rate.record(time.time(), frame.capture_time)
        self.motion[frame.stream].update(frame.capture_time, frame.tracks)
        self.detected[frame.stream].append({"capture_time": frame.capture_time, "boxes": _box_rows(frame.tracks)})
        if frame.stream not in self._tapped:  # no source thread feeds the video: it runs at the detection rate
            self.submit(frame.stream, frame.bgr(), frame.tracks, frame.capture_time, rate.fps())

    def submit(self, stream: str, image: np.ndarray, tracks: Sequence[TrackedBox], capture_time: float,
               fps: float) -> None:  # fmt: skip
        """Draw this frame's objects on its picture and hand it to the stream's encoder."""
        if self.passthrough[stream] is not None:  # no source packets reach here: the encoder serves the viewers
            self._burn_for_viewers(stream)
        if not self.fanouts[stream].consumers and not self.burned[stream].consumers:
            return  # nobody watches (no viewer, no UDP output, uplink down): neither draw nor encode
        overlay = f"{stream}  {fps:.1f} fps  {(time.time() - capture_time) * 1000:.0f} ms"
        self.annotators[stream].draw(image, tracks, overlay)
        self.encoders[stream].submit(image, capture_time)

    def source_state(self, stream: str, live: bool, reason: str | None) -> None:
        """The source went down (or came back): viewers see why instead of a frozen picture."""
        fanout = self.fanouts.get(stream)
        if fanout is None:
            return
        if not live:
            fanout.set_down(reason)
            if self.burned[stream] is not fanout:
                self.burned[stream].set_down(reason)
            self.motion[stream].clear()
            self.source_rates[stream].reset()
            passthrough = self.passthrough[stream]
            if passthrough is not None:  # it may come back as something else: try forwarding again
                passthrough.reset()
                self.encoders[stream].also = None
        state = VideoStreamState(
            node=self.node, stream=stream, state=VideoState.LIVE if live else VideoState.DOWN, reason=reason,
            width=fanout.width, height=fanout.height, time=time.time(),
        )  # fmt: skip
        if self.uplink is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.uplink.state_changed, state)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        for encoder in self.encoders.values():
            encoder.start()
        for output in self.udp_outputs:
            output.start()
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start_async(), self._loop).result(15)
        except BaseException:
            self.stop()
            raise

    async def _start_async(self) -> None:
        if self.uplink is not None:
            self._uplink_task = asyncio.create_task(self.uplink.run())
        settings = self.config.whep
        if settings.enabled:
            try:  # bound here: a taken port moves to the next free one (WHEP is optional), not uvicorn's exit
                sock = listen_or_next(settings.host, settings.port, "video.whep.port")
            except OSError as error:
                raise RuntimeError(
                    f"video.whep: cannot listen on {settings.host}:{settings.port}: {error.strerror or error}"
                ) from None
            self._server = uvicorn.Server(
                uvicorn.Config(self.whep_app(), log_level="warning", lifespan="off")
            )  # fmt: skip
            self._server_task = asyncio.create_task(self._server.serve(sockets=[sock]))
            while not self._server.started and not self._server_task.done():
                await asyncio.sleep(0.02)
            log.info("WHEP endpoint on %s", self.whep_url)

    @property
    def whep_url(self) -> str | None:
        if self._server is None or not self._server.servers:
            return None
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/whep"

    def whep_app(self) -> FastAPI:
        app = FastAPI(title=f"SmartEye edge {self.node}: WHEP", docs_url=None, redoc_url=None)
        # CORS: only video.whep.cors_origins, on the WHEP routes (smarteye.media.whep_http); never `*`.
        token = self.config.whep.token

        def guard(request: Request) -> None:
            given = request.headers.get("authorization", "")
            if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

        def resolve(params: dict[str, str]) -> tuple[PacketFanout, str] | None:
            fanout = self.fanouts.get(params.get("stream", ""))
            return (fanout, self.node) if fanout else None

        add_whep_routes(app, "/whep/{stream}", self.whep, resolve, dependencies=[Depends(guard)])

        @app.get("/streams", dependencies=[Depends(guard)])
        def streams() -> list[dict[str, object]]:
            return [self.describe(name) for name in self.fanouts]

        @app.get("/streams/{stream}/boxes", dependencies=[Depends(guard)])
        def boxes(stream: str) -> dict[str, list[dict[str, object]]]:
            if stream not in self.drawn:
                raise HTTPException(404, f"no stream named {stream!r}")
            return {"detected": list(self.detected[stream]), "drawn": list(self.drawn[stream])}

        return app

    def describe(self, stream: str) -> dict[str, object]:
        status = self.fanouts[stream].status()
        encoder = self.encoders[stream]
        passthrough = self.passthrough[stream]
        return {
            "stream": stream, "state": status.state.value, "reason": status.reason, "width": status.width,
            "height": status.height, "fps": status.fps, "viewers": self.whep.viewers(self.fanouts[stream]),
            "source_frames": self.source_frames[stream], "frames_in": encoder.frames_in,
            "frames_encoded": encoder.frames_encoded,
            "frames_replaced": encoder.frames_replaced, "source_fps": self.source_rates[stream].fps,
            "keyframes": encoder.keyframes, "keyframe_requests": encoder.keyframe_requests,
            "boxes": "page" if passthrough is not None and passthrough.active else "burn_in",
            "passthrough_refused": passthrough.refused if passthrough is not None else None,
            "frames_forwarded": passthrough.frames_forwarded if passthrough is not None else 0,
            "encode_seconds": round(encoder.encode_seconds, 3),
            "encode_cpu_seconds": round(encoder.encode_cpu_seconds, 3),
            "encode_ms": round(encoder.encode_seconds / encoder.frames_encoded * 1000, 2)
            if encoder.frames_encoded else None,
        }  # fmt: skip

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stop_async(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()
        for output in self.udp_outputs:
            output.stop()
        for encoder in self.encoders.values():
            encoder.stop()

    async def _stop_async(self) -> None:
        await self.whep.close_all()
        if self._server is not None:
            self._server.should_exit = True
        if self._uplink_task is not None:
            self._uplink_task.cancel()
        tasks = [t for t in (self._server_task, self._uplink_task) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
