"""Settings as command-line flags: each subcommand lists only the settings it reads.

Every field of :class:`~shared.settings.Settings` can be given as ``--field-name``; its
help line is the first sentence of the field's docstring in ``shared/settings.py`` (read
from the source, so the flags and the settings cannot drift apart), followed by the
environment variable and the default.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import logging
import re
import sys
from collections.abc import Callable, Iterable

from shared import settings as settings_module
from shared.settings import ENV_PREFIX, Settings, SettingsError

__all__ = ["Command", "add_settings_flags", "run_command", "settings_from"]

Command = Callable[[argparse.Namespace], int]
"""What a subcommand runs: parsed flags in, exit status out."""


_UNDOCUMENTED = {"log_level": "Log level: debug, info, warning or error"}


@functools.cache
def _field_help() -> dict[str, str]:
    """Field name -> the first sentence of its docstring (empty when it has none)."""
    try:
        tree = ast.parse(inspect.getsource(settings_module))
    except (OSError, TypeError):  # installed without sources: flags keep their names only
        return {}
    helps: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            body = node.body
            for field, doc in zip(body, [*body[1:], None], strict=True):
                if not (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)):
                    continue
                text = ""
                if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
                    text = " ".join(str(doc.value.value).split()).replace("``", "")
                    text = re.split(r"(?<=[.;])\s+(?=[A-Z`])", text, maxsplit=1)[0].rstrip(".;")
                helps[field.target.id] = text
    return helps


def add_settings_flags(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Add ``--name`` for each setting in ``names``, with one help line and its default."""
    helps = _field_help()
    group = parser.add_argument_group("settings (each also read from its RELAYCAST_* variable)")
    for name in names:
        default = Settings.__struct_defaults__[Settings.fields().index(name)]
        shown = f"{default!r}" if isinstance(default, str) else str(default)
        text = helps.get(name) or _UNDOCUMENTED.get(name) or name.replace("_", " ")
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            metavar="V",
            help=f"{text} [{ENV_PREFIX}{name.upper()}, default {shown}]".replace("%", "%%"),
        )


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags given."""
    return Settings.load({n: getattr(args, n, None) for n in Settings.fields()})


def run_command(prog: str, args: argparse.Namespace) -> int:
    """Run the chosen subcommand; a bad setting is one line and exit 2, not a traceback."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    func: Command = args.func
    try:
        return int(func(args))
    except SettingsError as exc:
        print(f"{prog}: bad setting: {exc}", file=sys.stderr)
        return 2
