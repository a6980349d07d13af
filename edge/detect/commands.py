"""`smarteye models export|bench`: the runtime export and comparison by hand (the node does the export itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(
    help="Detection models: export to a faster runtime, time each runtime here.", no_args_is_help=True
)

BACKEND_HELP = "auto (fastest on this host), openvino, onnx or tensorrt."


@models_app.command("export")
def models_export(
    model: Annotated[str, typer.Argument(help="A .pt model (a bare name is looked up in models/ and the assets).")],
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    imgsz: Annotated[int, typer.Option(help="Input size the export is fixed to (px).")] = 640,
    half: Annotated[bool, typer.Option(help="FP16 (GPU runtimes).")] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda:0.")] = "cpu",
) -> None:
    """Export MODEL to a runtime into the cache the node loads from (done on first use otherwise)."""
    from edge.detect.detector import ModelError, resolve_model_path
    from edge.detect.export import ExportError, export_model
    from edge.detect.runtime import RuntimeUnavailable, choose_backend

    try:
        chosen = choose_backend(backend, device)
        if chosen == "torch":
            raise ExportError(f"backend {backend} on {device} runs the .pt itself: nothing to export")
        weights = Path(resolve_model_path(model))
        if not weights.exists():
            raise ExportError(f"model file not found: {model}")
        typer.echo(f"{chosen}: {export_model(weights, chosen, imgsz, half, device)}")
    except (ExportError, RuntimeUnavailable, ModelError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


@models_app.command("bench")
def models_bench(
    model: Annotated[str, typer.Argument(help="Model to time.")] = "yolov8n.pt",
    backends: Annotated[
        list[str] | None, typer.Option("--backend", help="Runtimes to time (default: all here).")
    ] = None,
    video: Annotated[str, typer.Option(help="Sample video whose frames are timed.")] = "vtest.avi",
    frames: Annotated[int, typer.Option(min=1, help="Frames per round.")] = 30,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds (the median is reported).")] = 3,
    imgsz: Annotated[int, typer.Option(help="Input size (px).")] = 640,
    device: Annotated[str, typer.Option(help="cpu or cuda:0.")] = "cpu",
) -> None:
    """Print ms/frame per runtime on this host (median of the rounds, real frames): what `auto` picks and why."""
    from edge.assets import AssetMissing, sample_media
    from edge.detect.bench import decode_frames, host_backends, load_detectors, table, time_backends
    from edge.detect.detector import ModelError
    from edge.detect.runtime import choose_backend

    try:
        images = decode_frames(sample_media(video), frames)
        detectors = load_detectors(model, backends or host_backends(device), imgsz, device)
    except (AssetMissing, ModelError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    shape = images[0].shape
    typer.echo(
        f"{model} at imgsz {imgsz} on {device}: {len(images)} frames of {video} ({shape[1]}x{shape[0]}), "
        f"median of {rounds} rounds"
    )
    for line in table(time_backends(detectors, images, rounds), choose_backend("auto", device)):
        typer.echo(line)
