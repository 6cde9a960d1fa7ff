#!/usr/bin/python3
"""Median of per-repetition ratios from the shared harness's raw.tsv (issue 18, item 6).

For each scenario, the proxy CPU µs per request and the p99 of CASE divided by each other case's
in the same repetition (the harness interleaves the cases within a repetition, so a ratio
compares measurements taken seconds apart), then the median, min and max over the repetitions.
Rows the harness marks noisy (unaccounted CPU over QUIET_MAX %, default 10) are left out, as
summarize.py does. Usage: bench/ratios.py RAW.TSV [CASE]   (CASE defaults to gatehouse)
"""
import csv
import os
import statistics
import sys

QUIET_MAX = float(os.environ.get("QUIET_MAX", "10"))


def main(raw, subject="gatehouse"):
    rows = [r for r in csv.DictReader(open(raw), delimiter="\t")
            if float(r["unaccounted_pct"]) <= QUIET_MAX and r["proxy_us_per_req"] not in ("", "NA")]
    at = {(r["scenario"], r["case"], r["rep"]): r for r in rows}
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    cases = list(dict.fromkeys(r["case"] for r in rows))
    print(f"| scenario | {subject} / peer | CPU µs/req ratio | p99 ratio | reps |")
    print("|---|---|---|---|---|")
    for s in scenarios:
        for peer in cases:
            if peer in (subject, "direct"):
                continue
            cpu, p99 = [], []
            for (sc, c, rep), r in at.items():
                if sc != s or c != subject or (s, peer, rep) not in at:
                    continue
                p = at[(s, peer, rep)]
                if float(p["proxy_us_per_req"]) > 0:
                    cpu.append(float(r["proxy_us_per_req"]) / float(p["proxy_us_per_req"]))
                if float(p["p99_ms"]) > 0:
                    p99.append(float(r["p99_ms"]) / float(p["p99_ms"]))
            if not cpu:
                continue
            fmt = lambda v: (f"{statistics.median(v):.3f} ({min(v):.3f}–{max(v):.3f})"
                             if v else "n/a")
            print(f"| {s} | {peer} | {fmt(cpu)} | {fmt(p99)} | {len(cpu)} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
