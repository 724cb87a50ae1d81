"""Hard-link the pinned packages this environment already holds into a fresh virtual environment.

Used by scripts/check_wheel.sh: the fresh environment it installs the wheel into is 1.6 GB (torch
alone 750 MB), and a second copy of everything .venv already holds ran a CI machine out of disk
("No space left on device") before a single check ran. Hard links cost no space. pip in the fresh
environment then finds those packages installed at the pinned versions, exactly as after installing
the same wheels, and still resolves the speechreps wheel's requirements against them, installs
whatever is missing or pinned at another version, and the check still compares what ends up
installed with the lock.

    python scripts/link_installed.py CONSTRAINTS DEST_VENV

Run with the interpreter of the environment to link from. Links each `name==version` line of
CONSTRAINTS that is installed here at that version (a local label such as +cpu is ignored).
Exits 3 with nothing linked when the two environments are on different file systems or use
another Python. Console scripts are copied with their first line pointing at DEST_VENV's python.
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
import sysconfig
from pathlib import Path


def pinned(constraints: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (comments and other lines skipped)."""
    pins = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


def link_distribution(dist: metadata.Distribution, dest_venv: Path) -> int:
    """Link (or, for console scripts, rewrite) every file pip recorded for `dist`; the count."""
    linked: list[Path] = []
    try:
        for entry in dist.files or []:
            src = Path(os.path.normpath(dist.locate_file(entry)))
            if not src.is_file():
                continue  # RECORD lists files pip may not have written (.pyc under no-compile)
            rel = src.relative_to(sys.prefix)
            dest = dest_venv / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            head = src.read_bytes()[:2] if rel.parts[0] == "bin" else b""
            if head == b"#!":  # a console script: its first line names this env's python
                lines = src.read_text().splitlines(keepends=True)
                lines[0] = f"#!{dest_venv / 'bin' / 'python'}\n"
                dest.write_text("".join(lines))
                dest.chmod(src.stat().st_mode)
            else:
                os.link(src, dest)
            linked.append(dest)
    except (OSError, ValueError) as e:
        for path in linked:  # nothing half linked: pip then installs this one itself
            path.unlink(missing_ok=True)
        print(f"link_installed: {dist.metadata['Name']} not linked: {e}", file=sys.stderr)
        return 0
    return len(linked)


def main(constraints: Path, dest_venv: Path) -> int:
    src_site = Path(sysconfig.get_paths()["purelib"])
    dest_site = dest_venv / src_site.relative_to(sys.prefix)
    if not dest_site.is_dir():
        print(f"link_installed: no {dest_site} (another Python version?)", file=sys.stderr)
        return 3
    if os.stat(src_site).st_dev != os.stat(dest_site).st_dev:
        print(f"link_installed: {src_site} and {dest_site} are on different file systems",
              file=sys.stderr)
        return 3
    names, files = [], 0
    for name, version in pinned(constraints).items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version.split("+")[0] != version:
            continue
        count = link_distribution(dist, dest_venv)
        if count:
            names.append(name)
            files += count
    print(f"link_installed: {len(names)} pinned packages ({files} files) linked from {sys.prefix}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python scripts/link_installed.py CONSTRAINTS DEST_VENV", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]).resolve()))
