"""Shared test helpers."""

import pytest
import yaml


@pytest.fixture
def extend_run():
    """Raise a finished run's budget in its config.yaml, so `--resume` continues it:
    extend_run(run_dir, "budget", "iterations", value=8)."""

    def extend(run_dir, *keys, value):
        path = run_dir / "config.yaml"
        cfg = yaml.safe_load(path.read_text())
        node = cfg
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        path.write_text(yaml.safe_dump(cfg))

    return extend
