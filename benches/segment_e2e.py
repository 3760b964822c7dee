#!/usr/bin/env python3
"""`fusebox segment` end to end vs Polars on the same files (issue 13 §1).

Not part of `cargo test` or `cargo bench`: it needs Python with `polars` (`pip install
polars`) and a release build (`cargo build --release`), and writes ~2.5 GB of data.

    python3 benches/segment_e2e.py prepare [--customers 1000000] [--events 10000000]
    python3 benches/segment_e2e.py run [--reps 3] [--threads 2]

`prepare` writes the workload into `target/segbench/data/` (reused when present):
`fusebox gen` (customers.parquet, events.jsonl, segments.yaml: the 13-segment group of
`fusebox gen`), then events.parquet from events.jsonl in the layout `fusebox segment` reads
(`id`, `customer_id` u64, `type`, `timestamp` datetime[us, UTC], `process`, `properties` as
JSON text).

`run` alternates the sides, `--reps` rounds, each in a fresh process measured from outside
(wall clock, and peak RSS from `wait4`'s rusage):
- **fusebox**: `target/release/fusebox segment --events events.parquet` (and, once per round,
  `--events events.jsonl`); its compute time is `elapsed_ms` of `segments.json`;
- **polars**: this script's `polars-side` in a child process: `read_parquet` of both files
  and the three properties the group reads decoded once from the JSON column
  (`str.json_decode` to a struct, unnested) — its "read" — then the same group as one lazy
  query per segment through `collect_all` (references inlined) — its "compute".
Every round checks that both sides' member sets are equal, segment by segment. Prints
medians and the ratios of the issue's targets.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "segbench"
DATA = WORK / "data"
FUSEBOX = ROOT / "target" / "release" / "fusebox"


def prepare(args):
    import polars as pl

    DATA.mkdir(parents=True, exist_ok=True)
    if not (DATA / "events.jsonl").exists():
        subprocess.run(
            [str(FUSEBOX), "gen", "--customers", str(args.customers), "--events",
             str(args.events), "--seed", "1", "--out", str(DATA)],
            check=True,
        )
    out = DATA / "events.parquet"
    if out.exists():
        print(f"{out} exists")
        return
    started = time.time()
    # One string column with every line; the fields are taken out with JSON paths, so
    # `properties` stays the object's JSON text, as `fusebox segment` reads it.
    lines = pl.read_csv(
        DATA / "events.jsonl", has_header=False, separator="\x1f", quote_char=None,
        new_columns=["line"], schema={"line": pl.String},
    )
    field = lambda name: pl.col("line").str.json_path_match(f"$.{name}")
    events = lines.select(
        field("id").alias("id"),
        field("customer_id").cast(pl.UInt64).alias("customer_id"),
        field("type").alias("type"),
        field("timestamp").str.to_datetime(time_unit="us", time_zone="UTC").alias("timestamp"),
        field("process").alias("process"),
        field("properties").alias("properties"),
    )
    del lines
    events.write_parquet(out)
    print(f"wrote {out}: {events.height} rows in {time.time() - started:.1f} s")


# ---- the Polars side: the `fusebox gen` group (cli/src/commands/segments.yaml) ----

DAY_US = 86_400_000_000


def polars_side(args):
    import polars as pl

    t0 = time.perf_counter()
    customers = pl.read_parquet(DATA / "customers.parquet")
    # The group reads three properties: decoded once, typed, as part of reading the events.
    events = pl.read_parquet(args.events).with_columns(
        pl.col("properties")
        .str.json_decode(pl.Struct({"total": pl.Float64, "value": pl.Float64, "url": pl.String}))
        .struct.unnest()
    ).drop("properties", "id", "process")
    t1 = time.perf_counter()
    as_of = events.select(pl.col("timestamp").max()).item()
    as_of_us = int(as_of.timestamp() * 1_000_000) if not isinstance(as_of, int) else as_of
    members = compute_group(pl, customers, events, as_of)
    t2 = time.perf_counter()
    if args.members:
        with open(args.members, "w") as f:
            json.dump({k: v for k, v in members.items()}, f)
    print(json.dumps({"read_s": t1 - t0, "compute_s": t2 - t1, "as_of_us": as_of_us,
                      "counts": {k: len(v) for k, v in members.items()}}))


def compute_group(pl, customers, events, as_of):
    from datetime import timedelta

    c = customers.lazy()
    e = events.lazy()
    now = pl.lit(as_of)
    # Customer timestamps are naive UTC; event timestamps carry the UTC zone.
    now_naive = pl.lit(as_of.replace(tzinfo=None) if hasattr(as_of, "tzinfo") else as_of)
    day = timedelta(days=1)

    def window(ty, days):
        """Events of `ty` with now - days < t <= now (fusebox's `within`)."""
        return e.filter(
            (pl.col("type") == ty)
            & (pl.col("timestamp") > now - day * days)
            & (pl.col("timestamp") <= now)
        )

    def prop(name, dtype):
        return pl.col(name)

    def agg(frame, name, expr):
        return frame.group_by("customer_id").agg(expr.alias(name))

    orders30 = window("order.completed", 30)
    aggs = [
        agg(orders30, "o30_n", pl.len()),
        agg(orders30, "o30_sum", prop("total", pl.Float64).sum()),
        agg(window("order.completed", 7), "o7_n", pl.len()),
        agg(window("cart.abandoned", 7), "c7_n", pl.len()),
        agg(window("cart.abandoned", 30), "c30_sum", prop("value", pl.Float64).sum()),
        agg(window("page.viewed", 14).filter(prop("url", pl.String) == "/sale"), "sale14_n",
            pl.len()),
        agg(window("page.viewed", 30), "pv30_n", pl.len()),
        agg(e.filter((pl.col("type") == "customer.registered") & (pl.col("timestamp") <= now)),
            "reg_first", pl.col("timestamp").min()),
        agg(e.filter((pl.col("type") == "order.completed") & (pl.col("timestamp") <= now)),
            "order_last", pl.col("timestamp").max()),
    ]
    wide = c
    for a in aggs:
        wide = wide.join(a, left_on="id", right_on="customer_id", how="left")
    n = lambda col: pl.col(col).fill_null(0)
    active = n("o30_n") >= 1
    loyal = (pl.col("orders_count") >= 5) & (n("o30_n") >= 2)
    high_value = (pl.col("total_spent") >= 2000) | (n("o30_sum") >= 500)
    tags = pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    segs = {
        "active-buyers": active,
        "loyal": loyal,
        "high-value": high_value,
        "vip": high_value
        & pl.col("tier").is_in(["gold", "silver"])
        & (pl.col("email_opt_in") == True)  # noqa: E712
        & ~(pl.col("unsubscribed") == True),  # noqa: E712
        "cart-abandoners": (n("c7_n") >= 1) & (n("o7_n") == 0)
        & (pl.col("email_opt_in") == True),  # noqa: E712
        "sale-browsers": (n("sale14_n") >= 3) & (n("o30_n") == 0),
        "lapsed": (pl.col("last_order_at") < now_naive - day * 90) & ~active,
        "new-registrations": (pl.col("reg_first") > now - day * 14)
        & pl.col("email").is_not_null(),
        "reachable": pl.col("email").is_not_null()
        & (pl.col("email_opt_in") == True)  # noqa: E712
        & (pl.col("unsubscribed") == False),  # noqa: E712
        "berlin-mobile": (pl.col("city") == "Berlin")
        & tags.list.contains("mobile") & (n("pv30_n") >= 1),
        "eco-or-premium-buyers": (tags.list.contains("eco") | tags.list.contains("premium"))
        & (pl.col("points") >= 100) & (n("o30_n") >= 1),
        "loyal-at-risk": loyal & (pl.col("order_last") < now - day * 7),
        "big-carts-no-order": (n("c30_sum") >= 300) & ~active
        & ((pl.col("tier") == "bronze")
           | (pl.col("points") < 50)),
    }
    wide = wide.cache()
    names = list(segs)
    frames = pl.collect_all(
        [wide.filter(expr).select(pl.col("id").sort()) for expr in segs.values()]
    )
    return {name: f.get_column("id").to_list() for name, f in zip(names, frames)}


# ---- the driver ----


def run_rusage(cmd, env=None):
    """Runs `cmd` with its output in files; wall seconds, peak RSS (MiB), stdout, stderr."""
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "child.out", "wb") as out, open(WORK / "child.err", "wb") as err:
        started = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, rusage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - started
    stdout = (WORK / "child.out").read_text()
    stderr = (WORK / "child.err").read_text()
    if status != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({status}):\n{stderr}")
    return wall, rusage.ru_maxrss / 1024.0, stdout, stderr


def fusebox_members(out_dir):
    import polars as pl

    df = pl.read_parquet(out_dir / "members.parquet")
    return {
        seg: sorted(g.get_column("customer_id").to_list())
        for (seg,), g in df.group_by("segment_id")
    }


def run(args):
    env = dict(os.environ, POLARS_MAX_THREADS=str(args.threads))
    sides = {"fusebox parquet": [], "fusebox jsonl": [], "polars": []}
    compute = {"fusebox parquet": [], "fusebox jsonl": [], "polars": []}
    rss = {k: [] for k in sides}
    polars_read = []
    fusebox_sets = {}
    for rep in range(args.reps):
        for side in args.order.split(","):
            if side == "polars":
                members_file = WORK / "polars-members.json"
                wall, mb, out, _ = run_rusage(
                    [sys.executable, __file__, "polars-side", "--events",
                     str(DATA / "events.parquet"), "--members", str(members_file)],
                    env=env,
                )
                report = json.loads(out.strip().splitlines()[-1])
                sides["polars"].append(wall)
                compute["polars"].append(report["compute_s"])
                polars_read.append(report["read_s"])
                rss["polars"].append(mb)
                polars_members = json.loads(members_file.read_text())
            else:
                fmt = side.split()[1]
                key = f"fusebox {fmt}"
                out_dir = WORK / f"out-{fmt}"
                wall, mb, _, stderr = run_rusage(
                    [args.fusebox, "segment", "--customers", str(DATA / "customers.parquet"),
                     "--events", str(DATA / f"events.{fmt}"), "--segments",
                     str(DATA / "segments.yaml"), "--out", str(out_dir), "--threads",
                     str(args.threads)],
                    env=env,
                )
                summary = json.loads((out_dir / "segments.json").read_text())
                sides[key].append(wall)
                compute[key].append(summary["elapsed_ms"] / 1e3)
                rss[key].append(mb)
                fusebox_sets[fmt] = fusebox_members(out_dir)
            print(f"round {rep}: {side}: {wall:.2f} s, peak RSS {mb:.0f} MiB", flush=True)
        for fmt, sets in fusebox_sets.items():
            check_equal(sets, polars_members, f"fusebox {fmt}")
    print()
    print(f"{args.reps} interleaved rounds, medians (threads {args.threads}):")
    print("| side | whole process | compute | peak RSS |")
    print("|---|---|---|---|")
    med = statistics.median
    for key in sides:
        if sides[key]:
            print(f"| {key} | {med(sides[key]):.2f} s | {med(compute[key]):.3f} s | "
                  f"{med(rss[key]):.0f} MiB |")
    if polars_read:
        print(f"| polars read_parquet + collect_all (in process) | "
              f"{med([r + c for r, c in zip(polars_read, compute['polars'])]):.2f} s | "
              f"{med(compute['polars']):.3f} s | |")
        fb = sides["fusebox parquet"]
        if fb:
            pol = med([r + c for r, c in zip(polars_read, compute["polars"])])
            print()
            print(f"fusebox parquet whole process ÷ polars read+collect_all: "
                  f"{med(fb) / pol:.2f} (target ≤ 1)")
            print(f"fusebox peak RSS ÷ polars peak RSS: "
                  f"{med(rss['fusebox parquet']) / med(rss['polars']):.2f} (target ≤ 1.5)")
            print(f"polars compute ÷ fusebox compute: "
                  f"{med(compute['polars']) / med(compute['fusebox parquet']):.2f} (target ≥ 2)")
    print("member sets equal on every round: yes")


def check_equal(fusebox_sets, polars_sets, side):
    for seg, ids in polars_sets.items():
        mine = fusebox_sets.get(seg, [])
        if mine != ids:
            sys.exit(f"segment {seg}: {side} has {len(mine)} members, polars {len(ids)}; "
                     f"first differences: {sorted(set(mine) ^ set(ids))[:10]}")
    extra = set(fusebox_sets) - set(polars_sets)
    if extra:
        sys.exit(f"segments only fusebox computed: {extra}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--events", type=int, default=10_000_000)
    r = sub.add_parser("run")
    r.add_argument("--reps", type=int, default=3)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--order", default="fusebox parquet,polars,fusebox jsonl")
    r.add_argument("--fusebox", default=str(FUSEBOX), help="the fusebox binary to measure")
    s = sub.add_parser("polars-side")
    s.add_argument("--events", required=True)
    s.add_argument("--members")
    args = ap.parse_args()
    {"prepare": prepare, "run": run, "polars-side": polars_side}[args.cmd](args)


if __name__ == "__main__":
    main()
