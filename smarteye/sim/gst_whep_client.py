"""A WHEP viewer made of GStreamer's webrtcbin, to prove the WHEP endpoints interoperate with it.

Run under the system python (python3-gi; the venv has no gi), as a child process:

    /usr/bin/python3 smarteye/sim/gst_whep_client.py URL [--token T] [--frames N] [--timeout S]

It POSTs webrtcbin's offer (recvonly H.264, DTLS role actpass as webrtcbin writes it), applies the answer,
decodes what arrives and prints one JSON line: {"frames": n, "width", "height", "connection", "error"}.
Exit 0 when N frames were decoded. Standard library + gi only (it must not import the project).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.error
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--token")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()

    Gst.init(None)
    pipeline = Gst.Pipeline.new("whep")
    webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipeline.add(webrtc)
    loop = GLib.MainLoop()
    result: dict[str, object] = {"frames": 0, "width": None, "height": None, "connection": None, "error": None}
    done = threading.Event()

    def finish(error: str | None = None) -> None:
        if error and not result["error"]:
            result["error"] = error
        done.set()
        GLib.idle_add(loop.quit)

    caps = Gst.Caps.from_string(  # as browsers offer it: constrained baseline, non-interleaved
        "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
        "packetization-mode=(string)1,profile-level-id=(string)42e01f"
    )
    webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)

    def on_sample(sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        structure = sample.get_caps().get_structure(0)
        result["width"], result["height"] = structure.get_value("width"), structure.get_value("height")
        result["frames"] = int(result["frames"]) + 1  # type: ignore[call-overload]
        if int(result["frames"]) >= args.frames:  # type: ignore[call-overload]
            finish()
        return Gst.FlowReturn.OK

    def on_pad(_: Gst.Element, pad: Gst.Pad) -> None:
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.parse_bin_from_description(
            "rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB ! "
            "appsink name=sink emit-signals=true sync=false max-buffers=2 drop=true",
            True,
        )
        pipeline.add(decode)
        decode.sync_state_with_parent()
        decode.get_by_name("sink").connect("new-sample", on_sample)
        pad.link(decode.get_static_pad("sink"))

    def on_connection(element: Gst.Element, _: object) -> None:
        state = element.get_property("connection-state")
        result["connection"] = state.value_nick
        if state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            finish("connection failed (ICE or DTLS)")

    def post_offer() -> None:
        offer = webrtc.get_property("local-description").sdp.as_text()
        headers = {"Content-Type": "application/sdp"}
        if args.token:
            headers["Authorization"] = f"Bearer {args.token}"
        request = urllib.request.Request(args.url, data=offer.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = response.read().decode()
        except urllib.error.HTTPError as error:
            finish(f"WHEP POST answered {error.code}: {error.read().decode(errors='replace')[:300]}")
            return
        except OSError as error:
            finish(f"WHEP POST failed: {error}")
            return
        _, message = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        webrtc.emit("set-remote-description", description, Gst.Promise.new())

    def on_gathering(element: Gst.Element, _: object) -> None:
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            threading.Thread(target=post_offer, daemon=True).start()  # no trickle: the offer holds every candidate

    def on_offer(promise: Gst.Promise) -> None:
        reply = promise.get_reply()
        if reply is None or not reply.has_field("offer"):
            finish(f"webrtcbin made no offer: {reply.to_string() if reply is not None else 'no reply'}")
            return
        offer = reply.get_value("offer")
        webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_negotiation(element: Gst.Element) -> None:
        element.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer))

    webrtc.connect("on-negotiation-needed", on_negotiation)
    webrtc.connect("pad-added", on_pad)
    webrtc.connect("notify::connection-state", on_connection)
    webrtc.connect("notify::ice-gathering-state", on_gathering)
    GLib.timeout_add(int(args.timeout * 1000), lambda: finish(f"no {args.frames} frames within {args.timeout} s"))
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps(result), flush=True)
    return 0 if int(result["frames"]) >= args.frames else 1  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
