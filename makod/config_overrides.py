"""CONFIG REWRITE: a node's live settings (CONFIG SET) kept across restarts.

The cluster config is one file for every node; what CONFIG SET changed on
one node is that node's own. So REWRITE writes every setting that CONFIG SET
can change to ``DATA_DIR/NODE/config-overrides.yaml``, and makod applies
that file over the cluster config when it starts. A file that does not
parse or holds a bad value stops the start with the file, the field and
what was expected.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from makod.config import ConfigError
from makod.kv.errors import CommandError

FILE_NAME = "config-overrides.yaml"


def path_of(data_dir: str, node_name: str) -> str:
    return os.path.join(data_dir, node_name, FILE_NAME)


def rewrite(info: Any, path: str) -> None:
    """Write the node's settable parameters (atomically: a crash leaves the old file or the new)."""
    settings = {name: getter() for name, (getter, setter) in info.params().items() if setter is not None}
    text = "# Written by CONFIG REWRITE; applied over the cluster config at start.\n"
    text += yaml.safe_dump(settings, sort_keys=True)
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # requirepass may be in it
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise CommandError(f"ERR Rewriting config file: {exc.strerror or exc}") from None


def load(info: Any, path: str) -> list[str]:
    """Apply the overrides file, if there is one; the names applied."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return []
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, "(file)", "a YAML mapping of CONFIG parameters", str(exc)) from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError(path, "(top level)", "a mapping of CONFIG parameters to values", data)
    params = info.params()
    for name, value in data.items():
        param = params.get(str(name).lower())
        if param is None or param[1] is None:
            raise ConfigError(path, str(name), "a parameter CONFIG SET can change", name)
        try:
            info.config_set([(str(name), "" if value is None else str(value))])
        except CommandError as exc:
            raise ConfigError(path, str(name), f"a value CONFIG SET accepts ({exc.text})", value) from None
    return [str(n) for n in data]
