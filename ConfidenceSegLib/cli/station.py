"""``confidenceseg station``: a browser review station for a batch QC folder (pip extra ``station``)."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from ..contract import REVIEW_CSV

DEFAULT_HOST = "127.0.0.1"
STATION_EXTRA = "pip install 'confidenceseg[station]'"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "station", help="review a batch QC folder in a browser, drawn by Slicer's own slice view (trame-slicer)",
        description=f"Serves DIR (the output of `confidenceseg review`: {REVIEW_CSV} and the cases' files) as a web "
                    "page: the cases in review order (REVIEW first) beside a Slicer slice view of the selected case "
                    "(image, segmentation outline, uncertainty heatmap; a frame slider for stacks). Keys: j/k next/"
                    "previous flagged case, up/down any case, left/right frame, a accept, c needs correction, "
                    f"r reject, n note. Decisions are saved at once to DIR/decisions.csv (as in the Slicer module). "
                    f"Binds {DEFAULT_HOST}. Every request needs the station's token (a random one is generated "
                    "and printed in the URL unless --token is given) and must come from the station's own "
                    f"origin (or one given with --origin). Needs the station extra: {STATION_EXTRA}.")
    parser.add_argument("--review", required=True, metavar="DIR", help="batch QC folder (from confidenceseg review)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST}, this "
                                                             "machine only)")
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, a free one; the URL is printed)")
    parser.add_argument("--token", help="access token required by every request (at least 22 characters, 10 "
                                        "different ones and 128 bits, e.g. `openssl rand -hex 16`; read it from a "
                                        "file: --token \"$(cat FILE)\"); default: a new random one, printed in the URL")
    parser.add_argument("--origin", action="append", default=[], metavar="URL",
                        help="another origin the page is opened from, e.g. a reverse proxy's https://qc.example.org "
                             "(repeatable); requests from any other site are refused")
    parser.set_defaults(func=run)


def check_port_free(host: str, port: int) -> None:
    """Refuse, before the heavy start, a ``--port`` that another program (another station) listens on."""
    from ..contract import ConfidenceSegError

    if port == 0:
        return
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise ConfidenceSegError(f"cannot listen on {host}:{port} ({error.strerror or error}): another program "
                                 "(another station?) uses it; choose another --port or leave it out") from None


def run(args: argparse.Namespace) -> int:
    from ..contract import ConfidenceSegError
    from ..station.access import Access, is_wildcard, station_token, station_url
    from ..station.cohort import Cohort

    if not 0 <= args.port <= 65535:
        raise ConfidenceSegError(f"--port must be in 0..65535, got {args.port}")
    check_port_free(args.host, args.port)
    token = station_token(args.token)
    # A wildcard address is where the station listens, not one a browser can open: name the machine.
    shown_host = socket.gethostname() if is_wildcard(args.host) else args.host
    access = Access.for_host(args.host, shown_host, token, args.origin)
    Cohort.open(args.review)  # a clear error for a folder that is not a batch QC folder, before the heavy imports
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # offscreen rendering
    try:
        from ..station.app import ReviewStation
    except ImportError as error:
        raise ConfidenceSegError(f"the review station needs its extra ({error.name} is missing): "
                                 f"{STATION_EXTRA}") from None
    station = ReviewStation(args.review, access=access)

    def announce(**_) -> None:
        print(f"Review station for {station.cohort.folder}: {station_url(shown_host, station.server.port, token)}",
              flush=True)
        print("Stop it with Ctrl+C.", flush=True)

    station.ctrl.on_server_ready.add(announce)
    sys.argv = sys.argv[:1]  # trame reads its own options from the command line: ours are already applied
    station.server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=False, timeout=0)
    return 0
