"""``speechreps`` command line: one sub-command per module in :mod:`speechreps.commands`.

Each command module defines ``register(subparsers)`` (adding its parser with ``func=run``) and an
integer ``ORDER`` for the help listing. Heavy imports (torch, librosa) stay inside ``run`` so that
``--help`` is instant. A :class:`~speechreps.errors.UserError` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

from . import __version__
from .errors import DataWarning, UserError


def _command_modules():
    from . import commands

    mods = [importlib.import_module(f"{commands.__name__}.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    return sorted((m for m in mods if hasattr(m, "register")), key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechreps",
        description="Train self-supervised frame-level speech representations (APC, CPC, CAPC, frame AE/CAE), "
        "measure their same-different word discrimination, and extract them as features.",
    )
    parser.add_argument("--version", action="version", version=f"speechreps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        mod.register(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Data warnings are for users: one plain line, no source location."""
    if issubclass(category, DataWarning):
        print(f"speechreps: warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def run_cli(parser: argparse.ArgumentParser, argv: list[str] | None, prog: str) -> int:
    """Parse, dispatch, and turn user errors into one line + exit 2 (shared by both CLIs)."""
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    warnings.showwarning = _show_warning
    try:
        result = args.func(args)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system that refuses an output (read-only, full, ...): one line too
        from .fileio import os_user_error

        user = os_user_error(exc)
        if user is None:
            raise
        print(f"{prog}: error: {user}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv, "speechreps")


if __name__ == "__main__":
    sys.exit(main())
