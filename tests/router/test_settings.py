"""Settings layers: CLI flags > LLMTAP_* env > settings stored in the DB > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.errors import BadRequest
from router.settings import Settings, build
from router.settings import load as load_settings
from router.store import config, db


def test_defaults() -> None:
    s = build(env={})
    assert (s.host, s.port, s.proxy_port, s.buffer_size) == ("127.0.0.1", 20128, 8080, 1000)
    assert s.data_dir == Path.home() / ".llmtap"


def test_each_layer_wins_over_the_next(tmp_path: Path) -> None:
    stored = {"port": 1111, "proxy_port": 2222, "buffer_size": 3333, "guard_minutes": 44}
    env = {"LLMTAP_PORT": "5555", "LLMTAP_PROXY_PORT": "6666"}
    cli = {"port": 7777, "data_dir": tmp_path}
    s = build(cli=cli, env=env, stored=stored)
    assert s.port == 7777  # cli over env and stored
    assert s.proxy_port == 6666  # env over stored
    assert s.buffer_size == 3333  # stored over default
    assert s.max_body_kb == Settings().max_body_kb  # default


def test_cli_none_means_not_given() -> None:
    s = build(cli={"port": None}, env={"LLMTAP_PORT": "4242"})
    assert s.port == 4242


def test_bad_values_are_field_level_errors() -> None:
    with pytest.raises(BadRequest) as err:
        build(env={"LLMTAP_PORT": "not-a-port"})
    assert err.value.details[0].field == "port"
    with pytest.raises(BadRequest):
        build(cli={"unknown_setting": 1})


def test_load_settings_reads_the_database_of_the_chosen_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db.open_database(data / "llmtap.db")
    config.set_settings({"buffer_size": 77, "proxy_port": 9191})
    db.close_database()
    s = load_settings({"data_dir": data}, env={"LLMTAP_PROXY_PORT": "9292"})
    assert s.buffer_size == 77
    assert s.proxy_port == 9292
