"""The CLI takes a name wherever the API has one (and still an id): ``providers test openai``,
``combos rm mycombo``, ``keys revoke mylaptop``; ``combos list`` reads as names and
``model x weight``."""

from __future__ import annotations

from pathlib import Path

from tests.addons.test_cli import llmtap, ok_json
from tests.fakes.upstream import FakeUpstream


async def test_names_work_wherever_ids_do(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    data = tmp_path / "data"
    conn = await ok_json(
        data, "providers", "add", "openai", fake_upstream.url + "/v1", "--name", "myopenai",
        "--key", "sk-cli-names-0123456789abcdef", "--models", "gpt-4o-mini",
    )  # fmt: skip
    assert (await ok_json(data, "providers", "test", "myopenai"))["ok"] is True
    await ok_json(
        data, "combos", "add", "mycombo", "--strategy", "weighted",
        "--node", "myopenai:gpt-4o-mini:3", "--node", "myopenai:gpt-4o",
    )  # fmt: skip
    code, out, err = await llmtap(data, "combos", "list")
    assert code == 0, err
    assert "myopenai/gpt-4o-mini x3" in out and "myopenai/gpt-4o x1" in out
    assert conn["id"] not in out  # names, not ids
    await ok_json(data, "keys", "create", "mylaptop")
    assert (await ok_json(data, "keys", "revoke", "mylaptop"))["isActive"] is False
    assert (await ok_json(data, "combos", "rm", "mycombo"))["deleted"] is True
    code, _, err = await llmtap(data, "providers", "rm", "nosuch")
    assert code == 2 and "nosuch" in err and "not found" in err
    assert (await ok_json(data, "providers", "rm", "myopenai"))["deleted"] is True
    assert await ok_json(data, "providers", "list") == []
