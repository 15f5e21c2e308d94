"""Where the demo writes: its timeline to stdout, its failure to stderr.

The demo has its own consoles rather than the CLI's, so that the library never imports the
command line (docs/architecture.md, "Layers").
"""

from __future__ import annotations

from rich.console import Console

#: The timeline, tables and the closing line.
out = Console(highlight=False, soft_wrap=False)
#: The failure message.
err = Console(stderr=True, highlight=False)
