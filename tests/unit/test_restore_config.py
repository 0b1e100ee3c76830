"""makoctl cluster restore starts a new cluster from a backup's config: its
logs begin afresh, so slots that moved before the backup (``serving``)
become its first assignment, and the file still loads."""

from __future__ import annotations

import yaml

from makod.config import default_config_dict, load_config_file
from makoctl import procs
from makoctl.backup import restore_config


def test_moved_slots_become_the_restored_clusters_first_assignment(tmp_path):
    raw = default_config_dict(2, 1, 23000)
    raw["shards"][0]["serving"] = ["4096-8191"]
    raw["shards"][1]["serving"] = ["0-4095", "8192-16383"]
    raw["shards"][1]["replicas"][0]["joined"] = True
    (tmp_path / procs.CONFIG_NAME).write_text(yaml.safe_dump(raw))
    path = restore_config(str(tmp_path), 24000)
    cfg = load_config_file(path)
    assert [s.slots for s in cfg.shards] == [[(4096, 8191)], [(0, 4095), (8192, 16383)]]
    assert all(s.serving is None for s in cfg.shards)
    assert [r.resp_port for r in cfg.replicas] == [24000, 24001]
    assert not any(r.joined for r in cfg.replicas)


def test_a_serving_field_must_cover_every_slot_once(tmp_path):
    raw = default_config_dict(2, 1, 23000)
    raw["shards"][0]["serving"] = ["0-100"]
    raw["shards"][1]["serving"] = ["50-16383"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    try:
        load_config_file(str(path))
        raise AssertionError("loaded")
    except Exception as exc:  # ConfigError: names the file, the field and what was expected
        assert "shards[1].serving" in str(exc) and "do not overlap" in str(exc) and str(path) in str(exc)
