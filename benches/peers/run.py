#!/usr/bin/env python3
"""Runs W1-W8 on the plain-tokio floor, otp-core, ractor, kameo and actix, the scaling
workloads on the floor and otp-core, and W9 (the pipeline manager's own bench, `cargo bench
-p benches --bench pipeline`), each in a fresh process, N times (default 5); writes
benches/RESULTS.md (medians, min-max, ratios to the floor measured in the same run, the exact
versions, rustc and the machine) and benches/scaling.png.

    python3 benches/peers/run.py            # everything, 5 runs each (about 17 minutes)
    python3 benches/peers/run.py --runs 1 --only w1,w2
    python3 benches/peers/run.py --only w9  # rewrites only the W9 section of RESULTS.md
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = os.path.dirname(HERE)
BINARY = os.path.join(HERE, "target", "release", "peers")

# "otp-core" is the main row: callers are plain tokio tasks, as for every peer.
# "otp-core-processes" is the second, labelled row: callers are otp-core processes.
CONTENDERS = ["floor", "otp-core", "otp-core-processes", "ractor", "kameo", "actix"]

# workload -> (title, [(metric, unit, lower_is_better)])
WORKLOADS = {
    "w1": ("W1 call", [("ns_per_call", "ns/call", True)]),
    "w2": ("W2 cast", [("ns_per_msg", "ns/msg", True)]),
    "w3": ("W3 fan-in", [("calls_per_s", "calls/s", False)]),
    "w4": ("W4 spawn / stop", [("us_per_spawn", "µs/spawn", True), ("us_per_stop", "µs/stop", True)]),
    "w5": ("W5 supervised start / shutdown", [("us_per_start_child", "µs/child", True),
                                               ("us_per_child_shutdown", "µs/child", True)]),
    "w6": ("W6 restart", [("p50_us", "µs p50", True), ("p99_us", "µs p99", True)]),
    "w7": ("W7 idle memory", [("bytes_per_server", "B/server", True)]),
    "w8": ("W8 registry", [("ns_per_lookup", "ns/lookup", True),
                           ("ns_per_lookup_call", "ns/lookup+call", True)]),
}

# The scaling workloads: (workload, contenders).
SCALING = [
    ("scale-call-idle-1k", ["floor", "otp-core"]),
    ("scale-call-idle-100k", ["floor", "otp-core"]),
    ("scale-memory-1m", ["floor", "otp-core"]),
    ("scale-dynsup-1k", ["floor", "otp-core"]),
    ("scale-dynsup-100k", ["floor", "otp-core"]),
    ("scale-dynsup-1m", ["floor", "otp-core"]),
    ("scale-restart-history-0", ["otp-core"]),
    ("scale-restart-history-10k", ["otp-core"]),
]

# otp-core's targets (issue 5): metric -> ("ratio" | "abs", bound, "<=" | ">=").
TARGETS = {
    "ns_per_call": ("ratio", 1.2, "<="),
    "ns_per_msg": ("ratio", 1.3, "<="),
    "calls_per_s": ("ratio", 0.8, ">="),
    "us_per_spawn": ("ratio", 1.3, "<="),
    "us_per_start_child": ("ratio", 1.5, "<="),
    "us_per_child_shutdown": ("abs", 2.0, "<="),
    "p50_us": ("ratio", 1.5, "<="),
    "p99_us": ("abs", 15.0, "<="),
    "bytes_per_server": ("abs", 800.0, "<="),
    "ns_per_lookup": ("ratio", 1.0, "<="),
    "ns_per_lookup_call": ("ratio", 1.3, "<="),
}


# W9 has no peers and no plain-tokio floor: its reference is the in-memory row measured in the
# same runs. (label, metric, unit, target: (op, bound) or None)
W9_ROWS = [
    ("`run_pipeline`, in memory (`StoreConfig::Memory`)", "memory_per_s", "executions/s", (">=", 150_000)),
    ("`run_pipeline`, SQLite store (default)", "store_per_s", "executions/s", (">=", 50_000)),
    ("`list_executions` (the board), 10k executions", "board_list_10k_ms", "ms", ("<=", 2)),
    ("list 10k executions from the store (the CLI's reader)", "store_list_10k_ms", "ms", ("<=", 10)),
    ("one execution of 16,000 no-op steps", "long_us_per_step", "µs/step", None),
    ("a real `true` step, in a PID namespace", "real_namespace_per_s", "executions/s", None),
    ("a real `true` step, under the subreaper", "real_subreaper_per_s", "executions/s", None),
]
W9_HEADING = "## W9 pipeline, with and without the store"


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=HERE, check=True)


# A run that takes longer than this has hung (every workload takes seconds).
RUN_TIMEOUT_S = 120


def run_once(contender, workload):
    """One run's figures; `None` if a peer's run failed or hung (its sample is left out and the
    report says so). A failing otp-core or floor run stops everything: those are ours."""
    try:
        done = subprocess.run(
            [BINARY, contender, workload], capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        failure = f"hung (no result in {RUN_TIMEOUT_S} s)"
    else:
        if done.returncode == 0:
            return json.loads(done.stdout)
        failure = f"failed:\n{done.stderr}"
    if contender.startswith("otp-core") or contender == "floor":
        sys.exit(f"peers {contender} {workload} {failure}")
    print(f"  warning: {contender} {workload} {failure}; sample left out", file=sys.stderr)
    return None


def measure(pairs, runs):
    """Runs every (contender, workload) pair `runs` times, round-robin so that a noisy moment
    of the machine spreads over all contenders; returns {(contender, workload): [dict]}."""
    results = {pair: [] for pair in pairs}
    for run in range(runs):
        for contender, workload in pairs:
            print(f"  run {run + 1}/{runs}: {contender} {workload}", file=sys.stderr, flush=True)
            sample = run_once(contender, workload)
            if sample is not None:
                results[(contender, workload)].append(sample)
    return results


def run_w9(runs):
    """W9's figures, one dict per run (the bench's last line with `--json`)."""
    samples = []
    for run in range(runs):
        print(f"  run {run + 1}/{runs}: pipeline w9", file=sys.stderr, flush=True)
        done = subprocess.run(
            ["cargo", "bench", "--quiet", "-p", "benches", "--bench", "pipeline", "--", "--json"],
            cwd=BENCHES, capture_output=True, text=True, timeout=10 * RUN_TIMEOUT_S,
        )
        if done.returncode != 0:
            sys.exit(f"the pipeline bench failed:\n{done.stderr}")
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return samples


def w9_section(samples, runs):
    memory = summary(samples, "memory_per_s")
    lines = [
        W9_HEADING,
        "",
        f"`cargo bench -p benches --bench pipeline -- --json`, {runs} runs, median and (min–max): "
        "10,000 sequential `run_pipeline`s of a one-step no-op pipeline from one caller (a task on "
        "the runtime), until all report completed. The BEAM reference (the fixed Elixir seed) is "
        "47,376 executions/s and 91 ms to list 10,000. What sets these figures: the README's "
        "Performance section.",
        "",
        "| W9 row | unit | median (min–max) | × in memory | target |",
        "|---|---|---:|---:|---|",
    ]
    for label, metric, unit, target in W9_ROWS:
        got = summary(samples, metric)
        if got is None:
            continue
        median, low, high = got
        ratio = f"{median / memory[0]:.2f}×" if metric == "store_per_s" and memory else "—"
        if target is None:
            verdict_text = "—"
        else:
            op, bound = target
            met = median <= bound if op == "<=" else median >= bound
            verdict_text = f"{'met' if met else 'missed'} ({op} {fmt(bound)})"
        lines.append(f"| {label} | {unit} | {fmt(median)} ({fmt(low)}–{fmt(high)}) | {ratio} | {verdict_text} |")
    return "\n".join(lines) + "\n"


def summary(samples, metric):
    values = [s[metric] for s in samples if metric in s]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt(value):
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def verdict(metric, median, floor_median):
    if metric not in TARGETS:
        return ""
    kind, bound, op = TARGETS[metric]
    value = median / floor_median if kind == "ratio" else median
    met = value <= bound if op == "<=" else value >= bound
    what = f"{op} {bound}× floor" if kind == "ratio" else f"{op} {fmt(bound)}"
    return f"{'met' if met else 'missed'} ({what})"


def lock_versions():
    versions = {}
    text = open(os.path.join(HERE, "Cargo.lock")).read()
    for name, version in re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"', text):
        if name in ("ractor", "kameo", "actix", "tokio", "otp-core"):
            versions[name] = version
    return versions


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    return f"{os.cpu_count()} cores, {model}, {int(mem) / 2**20:.0f} GiB, {platform.system()} {platform.release()}"


def table(results, workloads, contenders):
    lines = []
    for workload in workloads:
        title, metrics = WORKLOADS[workload]
        lines.append(f"### {title}\n")
        lines.append("| contender | " + " | ".join(
            f"{unit} median (min–max) | × floor" for _, unit, _ in metrics) + " | otp-core target |")
        lines.append("|---|" + "---:|---:|" * len(metrics) + "---|")
        for contender in contenders:
            samples = results.get((contender, workload), [])
            if samples and "does_not_fit" in samples[0]:
                lines.append(f"| {contender} | does not fit: {samples[0]['does_not_fit']} |"
                             + " |" * (2 * len(metrics) - 1) + " |")
                continue
            cells, verdicts = [], []
            for metric, _, _ in metrics:
                got = summary(samples, metric)
                floor = summary(results.get(("floor", workload), []), metric)
                if got is None:
                    cells += ["—", "—"]
                    continue
                median, low, high = got
                cells.append(f"{fmt(median)} ({fmt(low)}–{fmt(high)})")
                cells.append(f"{median / floor[0]:.2f}×" if floor else "—")
                if contender == "otp-core" and floor:
                    verdicts.append(verdict(metric, median, floor[0]))
            lines.append(f"| {contender} | " + " | ".join(cells) + f" | {'; '.join(v for v in verdicts if v)} |")
        lines.append("")
    return "\n".join(lines)


def scaling_table(results):
    rows = [
        ("call latency, 1 server alive (W1)", "w1", "ns_per_call", "ns/call"),
        ("call latency, 1k idle servers alive", "scale-call-idle-1k", "ns_per_call", "ns/call"),
        ("call latency, 100k idle servers alive", "scale-call-idle-100k", "ns_per_call", "ns/call"),
        ("start_child, 1k children", "scale-dynsup-1k", "us_per_start_child", "µs/child"),
        ("start_child, 100k children", "scale-dynsup-100k", "us_per_start_child", "µs/child"),
        ("start_child, 1M children", "scale-dynsup-1m", "us_per_start_child", "µs/child"),
        ("shutdown, 1k children", "scale-dynsup-1k", "us_per_child_shutdown", "µs/child"),
        ("shutdown, 100k children", "scale-dynsup-100k", "us_per_child_shutdown", "µs/child"),
        ("shutdown, 1M children", "scale-dynsup-1m", "us_per_child_shutdown", "µs/child"),
        ("restart p50, 0 restarts in the window", "scale-restart-history-0", "p50_us", "µs"),
        ("restart p50, 10k restarts in the window", "scale-restart-history-10k", "p50_us", "µs"),
        ("restart p99, 0 restarts in the window", "scale-restart-history-0", "p99_us", "µs"),
        ("restart p99, 10k restarts in the window", "scale-restart-history-10k", "p99_us", "µs"),
        ("idle server, 100k servers (W7)", "w7", "bytes_per_server", "B"),
        ("idle server, 1M servers", "scale-memory-1m", "bytes_per_server", "B"),
    ]
    lines = ["| what | unit | floor median | otp-core median (min–max) | × floor |", "|---|---|---:|---:|---:|"]
    for label, workload, metric, unit in rows:
        ours = summary(results.get(("otp-core", workload), []), metric)
        floor = summary(results.get(("floor", workload), []), metric)
        if ours is None:
            continue
        ratio = f"{ours[0] / floor[0]:.2f}×" if floor else "—"
        lines.append(f"| {label} | {unit} | {fmt(floor[0]) if floor else '—'} | "
                     f"{fmt(ours[0])} ({fmt(ours[1])}–{fmt(ours[2])}) | {ratio} |")
    return "\n".join(lines)


def plot(results, path):
    try:
        import matplotlib
    except ImportError:
        venv = os.path.join(HERE, "target", "plot-venv")
        python = os.path.join(venv, "bin", "python3")
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([python, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
        data = {f"{c}|{w}": v for (c, w), v in results.items()}
        subprocess.run([python, __file__, "--plot-only", path], input=json.dumps(data), text=True, check=True)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(contender, workloads, metric):
        points = [summary(results.get((contender, w), []), metric) for w in workloads]
        return [p[0] if p else float("nan") for p in points]

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    sizes = [1, 1_000, 100_000]
    for contender, style in (("floor", "o--"), ("otp-core", "s-")):
        axes[0][0].plot(sizes, series(contender, ["w1", "scale-call-idle-1k", "scale-call-idle-100k"],
                                      "ns_per_call"), style, label=contender)
    axes[0][0].set(xscale="log", title="call latency vs servers alive", xlabel="servers alive", ylabel="ns/call")
    children = [1_000, 100_000, 1_000_000]
    dynsup = ["scale-dynsup-1k", "scale-dynsup-100k", "scale-dynsup-1m"]
    for contender, marker in (("floor", "o"), ("otp-core", "s")):
        axes[0][1].plot(children, series(contender, dynsup, "us_per_start_child"), marker + "-",
                        label=f"{contender} start_child")
        axes[0][1].plot(children, series(contender, dynsup, "us_per_child_shutdown"), marker + ":",
                        label=f"{contender} shutdown")
    axes[0][1].set(xscale="log", title="supervised start / shutdown per child", xlabel="children",
                   ylabel="µs/child")
    history = ["scale-restart-history-0", "scale-restart-history-10k"]
    for metric, style in (("p50_us", "s-"), ("p99_us", "s:")):
        axes[1][0].plot([0, 10_000], series("otp-core", history, metric), style, label=f"otp-core {metric[:3]}")
    floor_w6 = summary(results.get(("floor", "w6"), []), "p50_us")
    if floor_w6:
        axes[1][0].axhline(floor_w6[0], linestyle="--", color="grey", label="floor p50")
    axes[1][0].set(title="restart latency vs restarts in the window", xlabel="restarts in the window",
                   ylabel="µs")
    ratios = []
    labels = []
    for workload, (title, metrics) in WORKLOADS.items():
        for metric, unit, lower in metrics:
            ours = summary(results.get(("otp-core", workload), []), metric)
            floor = summary(results.get(("floor", workload), []), metric)
            if ours and floor:
                ratio = ours[0] / floor[0]
                ratios.append(ratio if lower else 1 / ratio)
                labels.append(f"{title.split()[0]} {unit}")
    axes[1][1].barh(labels, ratios, color=["tab:green" if r <= 1.3 else "tab:orange" for r in ratios])
    axes[1][1].axvline(1.0, color="black", linewidth=1)
    axes[1][1].set(title="otp-core cost as a multiple of the tokio floor (lower is better)", xlabel="× floor")
    for ax in axes.flat[:3]:
        ax.legend(fontsize=8)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="comma-separated workloads (w1..w9, scale)")
    parser.add_argument("--plot-only", help=argparse.SUPPRESS)
    parser.add_argument("--from-json", help="rewrite the report from a saved raw results file")
    args = parser.parse_args()
    if args.plot_only:
        data = json.loads(sys.stdin.read())
        plot({tuple(k.split("|")): v for k, v in data.items()}, args.plot_only)
        return
    only = set(args.only.split(",")) if args.only else None
    raw = os.path.join(HERE, "target", "results.json")
    results_md = os.path.join(BENCHES, "RESULTS.md")
    if only == {"w9"}:
        # W9 alone: its section of RESULTS.md is rewritten, the rest is kept as it is.
        section = w9_section(run_w9(args.runs), args.runs)
        with open(results_md) as current:
            kept = current.read().split(W9_HEADING)[0].rstrip("\n")
        with open(results_md, "w") as out:
            out.write(kept + "\n\n" + section)
        print(f"wrote the W9 section of {results_md}", file=sys.stderr)
        return
    if args.from_json:
        with open(args.from_json) as saved:
            results = {tuple(k.split("|")): v for k, v in json.load(saved).items()}
    else:
        build()
        pairs = [(c, w) for w in WORKLOADS for c in CONTENDERS if only is None or w in only]
        if only is None or "scale" in only:
            pairs += [(c, w) for w, cs in SCALING for c in cs]
        results = measure(pairs, args.runs)
        if only is None or "w9" in only:
            results[("pipeline", "w9")] = run_w9(args.runs)
        with open(raw, "w") as out:
            json.dump({f"{c}|{w}": v for (c, w), v in results.items()}, out)
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    versions = lock_versions()
    workloads = [w for w in WORKLOADS if only is None or w in only]
    report = [
        "# Benchmark results",
        "",
        f"Written by `python3 benches/peers/run.py` on {datetime.date.today()}: every workload in a fresh "
        f"process, {args.runs} runs, median and (min–max). Definitions: `shared/bench/WORKLOADS.md`; "
        "the code: `benches/peers/src/`. Absolute times vary between machines and from minute to minute "
        "on a shared one; the ratios to the floor measured in the same run are what hold.",
        "",
        f"- machine: {machine()}",
        f"- {rustc}; tokio {versions.get('tokio')}, ractor {versions.get('ractor')}, "
        f"kameo {versions.get('kameo')}, actix {versions.get('actix')}, otp-core {versions.get('otp-core')}",
        "- floor: a hand-written tokio task with an unbounded mpsc mailbox and oneshot replies; for W5/W6 "
        "a hand-written minimal supervisor task; for W8 `parking_lot::RwLock<HashMap>`.",
        "- callers are plain tokio tasks for every contender, otp-core included (the `otp-core` row), as users call from handlers, `main` and tests; the `otp-core-processes` row runs the workload and its callers as otp-core processes (supervised tasks), as code inside a supervision tree calls.",
        "- actix runs on its own single-threaded `System`: its figures are single-thread figures.",
        "",
        "## Side by side",
        "",
        table(results, workloads, CONTENDERS),
    ]
    if only is None or "scale" in only:
        report += ["## How the cost grows (floor and otp-core)", "", scaling_table(results), "",
                   "![scaling](scaling.png)", ""]
        plot(results, os.path.join(BENCHES, "scaling.png"))
    if ("pipeline", "w9") in results:
        report += [w9_section(results[("pipeline", "w9")], args.runs)]
    with open(results_md, "w") as out:
        out.write("\n".join(report))
    print(f"wrote {results_md}", file=sys.stderr)


if __name__ == "__main__":
    main()
