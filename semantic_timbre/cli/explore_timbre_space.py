"""Explore the trained VAE's timbre space by ear: a local web page with the latent map (click a
note to hear it and its reconstruction), generation from a description, interpolation between two
notes, and a descriptor applied to your own note; every result downloadable as a WAV.

The page and everything it loads (plotly.js included) are served by this command: it works offline.
"""

from __future__ import annotations

import argparse
import socket
import sys

from semantic_timbre.cli import entry_point
from semantic_timbre.errors import UserError
from semantic_timbre.cli.generation_options import add_inversion_options, parse_generation_arguments
from semantic_timbre.runtime.inference import add_model_options


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default: 8000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this computer only; 0.0.0.0 opens it "
                             "to the network)")
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in the default browser")
    add_model_options(parser)
    parser.add_argument("--method", choices=("pca", "tsne"), default="pca",
                        help="the map's 2-D reduction: PCA (default: instant) or t-SNE as the thesis's plot "
                             "(a minute or more on the whole data set)")
    add_inversion_options(parser)
    return parser


def parse_arguments(argv):
    arguments = parse_generation_arguments(build_parser(), argv)
    if not 0 < arguments.port < 65536:
        raise UserError(f"--port {arguments.port} is not a port number (1-65535)")
    return arguments


def check_port_free(host: str, port: int) -> None:
    """Refuse, before the model loads, a port another program holds or an address not of this computer.

    The probe sets SO_REUSEADDR, as uvicorn's own socket does: a port whose last connections
    are still in TIME_WAIT (the explorer just stopped) is free to listen on, one that a program
    listens on is not."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}): choose another --port, or a --host "
                        f"of this computer") from None


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    check_port_free(arguments.host, arguments.port)
    from semantic_timbre.explorer import create_app, serve

    app = create_app(arguments.model_dir, arguments.spectrograms_dir, arguments.minmax_dir, arguments.audio_dir,
                     runtime=arguments.runtime, method=arguments.method,
                     griffin_lim_iters=arguments.griffin_lim_iters, log=lambda line: print(line, file=sys.stderr),
                     host=arguments.host, port=arguments.port)
    serve(app, arguments.host, arguments.port, open_browser=not arguments.no_browser)
    return 0


run = entry_point(main)  # `semantic-timbre-explore` (pyproject.toml)
