"""Inspector: RSS of 10k x 8 KiB records and the HAR export time, in a separate process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from bench import arms as armlib
from bench.experiments.common import Ctx
from bench.report import Headline, Section, verdict
from bench.stats import Spread

# --------------------------------------------------------------------------- inspector


async def inspector(ctx: Ctx) -> None:
    """RSS of a LiveBuffer holding 10k records of 8 KiB bodies; HAR export time of them."""
    sec = Section("Inspector — 10k records of 8 KiB bodies")
    argv = [
        sys.executable, "-m", "bench.inspector", "--records", "10000", "--body-kib", "8",
        "--budget-s", str(ctx.plan.inspector_budget_s),
    ]  # fmt: skip
    out = await asyncio.to_thread(
        subprocess.run,
        armlib.pinned(armlib.ROUTER_CORE, argv),
        capture_output=True,
        text=True,
        cwd=armlib.ROOT,
        timeout=ctx.plan.inspector_budget_s * 4 + 120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    full = data["records"] >= data["target_records"]
    reached = (
        ""
        if full
        else f" (only {data['records']} records within the {ctx.plan.inspector_budget_s:.0f} s fill budget)"
    )
    sec.para(
        f"A LiveBuffer filled in its own process with {data['records']} records{reached}: RSS"
        f" {data['rss_mb']:.1f} MB ({data['buffer_mb']:.1f} MB over the {data['rss_base_mb']:.1f}"
        f" MB interpreter), fill {data['fill_s']:.2f} s ({data['fill_s'] / max(1, data['records']) * 1000:.2f}"
        f" ms/record), HAR build + json.dumps {data['har_s']:.2f} s for {data['har_entries']}"
        f" entries ({data['har_mb']:.1f} MB)."
    )
    ctx.sections.append(sec)
    ctx.extra["inspector"] = data
    rss = Spread(data["rss_mb"], data["rss_mb"], data["rss_mb"], 1)
    har = Spread(data["har_s"], data["har_s"], data["har_s"], 1)
    suffix = "" if full else f" @ {data['records']} records"
    rss_v = verdict(rss, at_most=150) if full else "n/a (10k not reached)"
    har_v = verdict(har, at_most=1.0) if full else ("MISSED" if data["har_s"] > 1 else "n/a")
    ctx.headline.append(
        Headline(
            f"Inspector RSS, 10k × 8 KiB (MB){suffix}", {"llmtap": rss.fmt(1)}, "< 150 MB", rss_v
        )
    )
    ctx.headline.append(
        Headline(
            f"Inspector HAR export, 10k records (s){suffix}", {"llmtap": har.fmt(2)}, "< 1 s", har_v
        )
    )
    if "MISSED" in (rss_v, har_v) or not full:
        ctx.misses.append(("Inspector fill / HAR export", "inspector"))
