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

`run` alternates the sides (`--sides`), `--reps` rounds, each in a fresh process measured
from outside (wall clock, and peak RSS from `wait4`'s rusage):
- **fusebox**: `target/release/fusebox segment --events events.parquet` (and, once per round,
  `--events events.jsonl`); its compute time is `elapsed_ms` of `segments.json`; `--before
  BINARY` adds an older build as side `before:parquet` (how the "before" figures were taken);
- **polars**: this script's `polars-side` in a child process: `read_parquet` of the customers
  and of `events-typed.parquet` (the same events with the three properties the group reads as
  typed columns `total`, `value`, `url` instead of the JSON column: Polars' natural layout,
  and the issue's baseline) — its "read" — then the same group as one lazy query per segment
  through `collect_all` (references inlined) — its "compute";
- **polars-json**: the same on `events.parquet` itself, the three properties taken out of the
  JSON text with `str.extract` regexes (`json_decode` of 10M objects took ~40 s) as part of
  the read.
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
    if not out.exists():
        write_events_parquet(pl, out)
    typed = DATA / "events-typed.parquet"
    if not typed.exists():
        # For the Polars baseline: the three properties the group reads as typed columns.
        pl.read_parquet(out).with_columns(
            pl.col("properties").str.json_decode(PROPERTIES).struct.unnest()
        ).drop("properties").write_parquet(typed)
        print(f"wrote {typed}")


PROPERTIES = None  # set in main(): pl.Struct of total, value, url


def write_events_parquet(pl, out):
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
    events = pl.read_parquet(args.events)
    if "properties" in events.columns:
        # The JSON column: the three properties the group reads, taken out with regexes.
        grab = lambda name, pattern: pl.col("properties").str.extract(
            f'"{name}":\\s*{pattern}', 1)
        events = events.with_columns(
            grab("total", r"(-?[0-9][0-9.eE+-]*)").cast(pl.Float64).alias("total"),
            grab("value", r"(-?[0-9][0-9.eE+-]*)").cast(pl.Float64).alias("value"),
            grab("url", r'"([^"]*)"').alias("url"),
        )
    events = events.drop("properties", "id", "process", strict=False)
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


def fusebox_side(binary, fmt, out_name, threads, env):
    """One `fusebox segment` run: (wall s, compute s, peak RSS MiB, member sets)."""
    out_dir = WORK / out_name
    wall, mb, _, _ = run_rusage(
        [binary, "segment", "--customers", str(DATA / "customers.parquet"),
         "--events", str(DATA / f"events.{fmt}"), "--segments", str(DATA / "segments.yaml"),
         "--out", str(out_dir), "--threads", str(threads)],
        env=env,
    )
    summary = json.loads((out_dir / "segments.json").read_text())
    return wall, summary["elapsed_ms"] / 1e3, mb, fusebox_members(out_dir)


def polars_run(env, events):
    """One Polars run: (wall s, compute s, peak RSS MiB, member sets, in-process read s)."""
    members_file = WORK / "polars-members.json"
    wall, mb, out, _ = run_rusage(
        [sys.executable, __file__, "polars-side", "--events", str(DATA / events),
         "--members", str(members_file)],
        env=env,
    )
    report = json.loads(out.strip().splitlines()[-1])
    return wall, report["compute_s"], mb, json.loads(members_file.read_text()), report["read_s"]


def run(args):
    env = dict(os.environ, POLARS_MAX_THREADS=str(args.threads))
    sides = {}
    for side in args.sides.split(","):
        label, _, fmt = side.partition(":")
        if label == "polars":
            sides["polars"] = lambda: polars_run(env, "events-typed.parquet")
        elif label == "polars-json":
            sides["polars-json"] = lambda: polars_run(env, "events.parquet")
        else:
            binary = args.fusebox if label == "fusebox" else args.before
            if not binary:
                sys.exit(f"side {side}: pass --before BINARY")
            key = f"{label} {fmt}"
            sides[key] = (lambda b=binary, f=fmt, k=key: fusebox_side(
                b, f, "out-" + k.replace(" ", "-"), args.threads, env))
    results = {k: [] for k in sides}
    for rep in range(args.reps):
        sets = {}
        for key, go in sides.items():
            r = go()
            results[key].append(r)
            sets[key] = r[3]
            print(f"round {rep}: {key}: {r[0]:.2f} s, compute {r[1]:.3f} s, "
                  f"peak RSS {r[2]:.0f} MiB", flush=True)
        reference = sets.get("polars") or next(iter(sets.values()))
        for key, got in sets.items():
            check_equal(got, reference, key)
    med = statistics.median
    print()
    print(f"{args.reps} interleaved rounds, medians (--threads {args.threads}, "
          f"POLARS_MAX_THREADS={args.threads}):")
    print()
    print("| side | whole process | compute | peak RSS |")
    print("|---|---|---|---|")
    for key, rs in results.items():
        print(f"| {key} | {med(r[0] for r in rs):.2f} s | {med(r[1] for r in rs):.3f} s | "
              f"{med(r[2] for r in rs):.0f} MiB |")
    if "polars" in results:
        pol = results["polars"]
        in_process = med(r[4] + r[1] for r in pol)
        print(f"| polars read + collect_all (in process) | {in_process:.2f} s | "
              f"{med(r[1] for r in pol):.3f} s | |")
        print()
        for key, rs in results.items():
            if key.startswith("polars"):
                continue
            print(f"{key}: whole process ÷ polars read + collect_all = "
                  f"{med(r[0] for r in rs) / in_process:.2f} (target ≤ 1); "
                  f"peak RSS ÷ polars = {med(r[2] for r in rs) / med(r[2] for r in pol):.2f} "
                  f"(target ≤ 1.5); polars compute ÷ compute = "
                  f"{med(r[1] for r in pol) / med(r[1] for r in rs):.2f} (target ≥ 2)")
    print()
    print(f"member sets equal on every round: yes ({', '.join(results)})")


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
    r.add_argument("--sides", default="fusebox:parquet,polars,fusebox:jsonl,polars-json",
                   help="comma-separated, in round order: fusebox:FMT, before:FMT, polars, "
                   "polars-json")
    r.add_argument("--fusebox", default=str(FUSEBOX), help="the fusebox binary to measure")
    r.add_argument("--before", help="an older fusebox binary (side before:FMT)")
    s = sub.add_parser("polars-side")
    s.add_argument("--events", required=True)
    s.add_argument("--members")
    args = ap.parse_args()
    if args.cmd != "run":
        import polars as pl

        global PROPERTIES
        PROPERTIES = pl.Struct({"total": pl.Float64, "value": pl.Float64, "url": pl.String})
    {"prepare": prepare, "run": run, "polars-side": polars_side}[args.cmd](args)


if __name__ == "__main__":
    main()
