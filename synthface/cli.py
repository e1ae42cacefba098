"""The ``synth`` command line: one group, commands contributed by each package.

Each package keeps its commands next to its code (``synthface.pipeline.cli`` in ``pipeline/cli.py``,
``synthface.generator.cli``, ``synthface.trainer.cli``); this module only assembles them and turns ``SynthError`` into a one-line
message and a non-zero exit.
"""

from __future__ import annotations

import importlib
import sys

import click

from synthface import __version__
from synthface.errors import SynthError

COMMAND_MODULES = (
    "synthface.pipeline.cli",
    "synthface.generator.cli",
    "synthface.generator.discofacegan.cli",
    "synthface.trainer.cli",
)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SynthError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="synth")
def main():
    """Build synthetic face-recognition datasets of non-existent people, and train on them.

    \b
    Quick start:
      synth preview --out preview.png          # what a build will look like
      synth build --ids 1000 --per-id 20 --out data/syn_1k_20
      synth verify data/syn_1k_20
    """


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if not _exc.name or not (_name == _exc.name or _name.startswith(_exc.name + ".")):
            raise
        continue
    for _command in getattr(_module, "COMMANDS", ()):
        main.add_command(_command)


if __name__ == "__main__":
    main()
