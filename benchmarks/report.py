"""Markdown tables and matplotlib plots from a results.json dictionary."""

from __future__ import annotations

import os

from .engines import PEERS

SHORT = {"ours": "ours", "torch": "torch eager", "torch_cl": "torch CL", "jit": "jit frozen", "ort": "ORT",
         "ov": "OpenVINO"}

# The bar of issue 13 (Performance III), checked by goals() for every model of a run.
BAR_ORT = 1.10            # ours at least 1.10x ONNX Runtime on every cell ...
BAR_ORT_EFFICIENTNET = 1.30   # ... and 1.30x on every EfficientNet cell
BAR_OV_RESNET = 1.00      # level with OpenVINO on every ResNet-family cell
BAR_SCALING = {8: 1.8, 1: 1.5}   # 2 threads over 1 thread, by batch
BAR_PEAK_RESNET50 = 90.0  # % of the FMA peak by executed multiplies, resnet50 batch 8


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    if "median_ms" not in r:
        return r.get("status", "missing")
    return f"{r['median_ms']:.1f}"


def _row(res: dict, model: str, threads: int, batch: int) -> dict | None:
    return next((r for r in res["rows"] if r["model"] == model and r["threads"] == threads and r["batch"] == batch),
                None)


def goals(res: dict) -> list[dict]:
    """Every check of the issue's bar that this run can answer: one dict per check with the model, what was
    checked, the measured value, the bar and whether it was met (None where a peer did not run)."""
    out: list[dict] = []
    models = list(dict.fromkeys(r["model"] for r in res["rows"]))
    for m in models:
        eff = m.startswith("efficientnet")
        resnet_family = not eff
        for row in [r for r in res["rows"] if r["model"] == m]:
            cell = f"{row['threads']}T b{row['batch']}"
            for k, bar in (("ort", BAR_ORT_EFFICIENTNET if eff else BAR_ORT),
                           ("ov", BAR_OV_RESNET if resnet_family else None)):
                if bar is None or k not in res["engines"]:
                    continue
                ratio = row["engines"].get(k, {}).get("ours_over_peer_throughput")
                out.append({"model": m, "check": f"{cell} vs {SHORT[k]}", "value": ratio, "bar": bar,
                            "met": None if ratio is None else ratio >= bar})
        for b, bar in sorted(BAR_SCALING.items(), reverse=True):
            r1, r2 = _row(res, m, 1, b), _row(res, m, 2, b)
            if r1 and r2:
                v = r1["engines"]["ours"]["median_ms"] / r2["engines"]["ours"]["median_ms"]
                out.append({"model": m, "check": f"b{b} 2T / 1T speed-up", "value": v, "bar": bar, "met": v >= bar})
        if m == "resnet50":
            for t in sorted({r["threads"] for r in res["rows"]}):
                r8 = _row(res, m, t, 8)
                if r8:
                    v = r8["engines"]["ours"]["pct_peak"]
                    out.append({"model": m, "check": f"{t}T b8 % of FMA peak (executed)", "value": v,
                                "bar": BAR_PEAK_RESNET50, "met": v >= BAR_PEAK_RESNET50})
        mem = {r["engine"]: r.get("peak_rss_mib") for r in res.get("memory", []) if r["model"] == m}
        if mem.get("ours") is not None and "ort" in mem:
            ort = mem["ort"]
            out.append({"model": m, "check": "peak RSS ours / ORT", "value": None if ort is None else mem["ours"] / ort,
                        "bar": 1.0, "met": None if ort is None else mem["ours"] <= ort, "lower_is_better": True})
    return out


def goals_section(res: dict) -> list[str]:
    """The Markdown lines of the bar's checks (empty when the run answers none)."""
    checks = goals(res)
    if not checks:
        return []
    missed = [c for c in checks if c["met"] is False]
    out = ["", "## The bar (issue 13)", "",
           f"At least {BAR_ORT:.2f}x ONNX Runtime on every cell ({BAR_ORT_EFFICIENTNET:.2f}x on EfficientNet), "
           f"level with OpenVINO on every ResNet-family cell, 2 threads at least {BAR_SCALING[8]}x one thread "
           f"at batch 8 and {BAR_SCALING[1]}x at batch 1, resnet50 batch 8 at {BAR_PEAK_RESNET50:.0f}% of "
           f"the FMA peak, peak RSS at or below ONNX Runtime's. {len(checks) - len(missed)} of {len(checks)} "
           f"checks met; misses in **bold**.", "",
           "| model | check | value | bar | met |", "|---|---|---|---|---|"]
    for c in checks:
        v = "-" if c["value"] is None else f"{c['value']:.2f}"
        met = "n/a" if c["met"] is None else ("yes" if c["met"] else "**no**")
        if c["met"] is False:
            v = f"**{v}**"
        bar = f"<= {c['bar']:.2f}" if c.get("lower_is_better") else f">= {c['bar']:.2f}"
        out.append(f"| {c['model']} | {c['check']} | {v} | {bar} | {met} |")
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    engines = list(res["engines"])
    peers = [k for k in engines if k in PEERS]
    peak = res.get("peak_gflops") or res.get("peak_gflops_start", {})
    out = [f"# pyflame_vision benchmark, {res['started_utc']}", ""]
    out.append(f"- Machine: {m.get('cpu', '?')} ({m.get('cpu_family_model', '?')}), {m.get('cpus', '?')} CPUs, "
               f"{m.get('memory_gib', '?')} GiB; SIMD: {', '.join(m.get('simd', [])) or 'none'}; "
               f"{m.get('platform', '')}, Python {m.get('python', '')}")
    out.append(f"- pyflame_vision tier: {res['isa']} (detected {res['detected_isa']})")
    out.append("- Measured FP32 peak (" + res["isa"] + "): " + ", ".join(
        f"{t} thread(s) {v:.1f} GFLOP/s" for t, v in peak.items())
        + f" (start {res.get('peak_gflops_start')}, end {res.get('peak_gflops_end')})")
    out.append(f"- Load average: {res.get('load_average_start')} at the start, "
               f"{res.get('load_average_end')} at the end")
    for k, st in res["engines"].items():
        desc = st.get("describe") or st["label"]
        out.append(f"- {SHORT.get(k, k)}: {desc}" + (f" — **{st['status']}**: {st['reason']}"
                                                       if st["status"] != "ok" else ""))
    s = res["settings"]
    out.append(f"- Settings: {s['runs']} timed runs per engine and cell (fewer, down to {s['min_runs']}, where a cell "
               f"would exceed {s['cell_budget_s']:.0f} s; the 'runs' column says), {s['warmup']} warm-up, "
               f"interleaved blocks; output check tolerance {s['tolerance']:g}")
    out.append(f"- Command: `{res['command']}`; took {res.get('duration_s', 0) / 60:.1f} min")
    if res.get("failures"):
        out += ["", "**FAILED:** " + "; ".join(res["failures"])]
    out += ["", "## Latency (median ms) and ours/peer throughput ratio",
            "",
            "Ratio = peer median / our median: above 1, pyflame_vision is faster. "
            "GFLOP/s counts 2 x the MACs of a direct convolution (torchvision's convention) for every engine, "
            "one scale for all; pyflame_vision runs dense 3x3 stride-1 layers as Winograd F(2x2,3x3), which "
            "multiplies 2.25x less, so that rate can exceed the FMA peak. % of peak counts the multiplies "
            "actually executed (the library's count for ours, the direct count for the peers) over the measured "
            "peak for the thread count, so it never exceeds 100%.", ""]
    hdr = ["model", "size", "threads", "batch", "ours ms", "ours p90", "img/s", "GFLOP/s", "% peak", "runs"]
    for k in peers:
        hdr += [f"{SHORT[k]} ms", "ratio"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    for row in sorted(res["rows"], key=lambda r: (r["threads"], r["batch"])):
        o = row["engines"]["ours"]
        cells = [row["model"], str(row["size"]), str(row["threads"]), str(row["batch"]), f"{o['median_ms']:.1f}",
                 f"{o['p90_ms']:.1f}", f"{o['images_per_s']:.1f}", f"{o['gflops']:.1f}", f"{o['pct_peak']:.1f}%",
                 str(o["runs"])]
        for k in peers:
            r = row["engines"].get(k)
            cells.append(_cell(r))
            ratio = r.get("ours_over_peer_throughput") if r else None
            cells.append(f"**{ratio:.2f}**" if ratio is not None and ratio < 1 else
                         (f"{ratio:.2f}" if ratio is not None else "-"))
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "## Every engine: median / p90 ms, images/s, GFLOP/s, % of peak", ""]
    out.append("| model | threads | batch | engine | median ms | p90 ms | img/s | GFLOP/s | % peak | runs | "
               "rel. diff vs ours |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in sorted(res["rows"], key=lambda r: (r["threads"], r["batch"])):
        for k in engines:
            r = row["engines"].get(k, {})
            if "median_ms" not in r:
                out.append(f"| {row['model']} | {row['threads']} | {row['batch']} | {SHORT.get(k, k)} | "
                           f"{r.get('status', 'missing')} | | | | | | |")
                continue
            err = r.get("rel_err_vs_ours")
            out.append(f"| {row['model']} | {row['threads']} | {row['batch']} | {SHORT.get(k, k)} | "
                       f"{r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['images_per_s']:.2f} | {r['gflops']:.1f} | "
                       f"{r['pct_peak']:.1f}% | {r['runs']} | {'' if err is None else f'{err:.1e}'} |")
    if res.get("memory"):
        mem = res["memory"]
        models = list(dict.fromkeys(r["model"] for r in mem))
        b = max(res["settings"]["batch"])
        t = max(res["settings"]["threads"])
        out += ["", f"## Peak resident memory (MiB), each engine in its own process (batch {b}, {t} threads)", "",
                "Peak RSS after loading the model and running it twice; in brackets, the part above the process "
                "after its imports (interpreter and libraries).", ""]
        out.append("| model | " + " | ".join(SHORT.get(k, k) for k in engines) + " |")
        out.append("|---|" + "---|" * len(engines))
        for mname in models:
            cells = []
            for k in engines:
                r = next((r for r in mem if r["model"] == mname and r["engine"] == k), None)
                if r is None:
                    cells.append("-")
                elif "peak_rss_mib" in r:
                    cells.append(f"{r['peak_rss_mib']:.0f} ({r['model_rss_mib']:.0f})")
                else:
                    cells.append(r.get("status") or r.get("error", "?"))
            out.append(f"| {mname} | " + " | ".join(cells) + " |")
    out += goals_section(res)
    kern = res.get("kernels")
    if kern:
        out += ["", f"## Kernels ({kern['isa']}, median of {kern['repeats']} samples, batch 1)", "",
                "GFLOP/s = 2 x direct-convolution MACs / time, also for Winograd layers; % of peak counts the "
                "multiplies each layer's implementation executes (see above).", "",
                "### Per model: all convolution and linear layers (sum over layers of count x time)", "",
                "| model | threads | layers | GMAC | ms | GFLOP/s | % peak |", "|---|---|---|---|---|---|---|"]
        for r in kern["totals"]:
            out.append(f"| {r['model']} | {r['threads']} | {r['layers']} | {r['gmacs']:.3f} | {r['ms']:.2f} | "
                       f"{r['gflops']:.1f} | {r['pct_peak']:.1f}% |")
        out += ["", "### GEMM (y[m,n] = x[m,k] W^T, packed W)", "",
                "| threads | m | n | k | us | GFLOP/s | % peak |", "|---|---|---|---|---|---|---|"]
        for r in kern["gemm"]:
            out.append(f"| {r['threads']} | {r['m']} | {r['n']} | {r['k']} | {r['median_us']:.1f} | "
                       f"{r['gflops']:.1f} | {r['pct_peak']:.1f}% |")
        out += ["", "### Every layer shape (conv N H W C_in C_out KH KW SH SW PH PW DH DW G; linear ROWS IN OUT)",
                "", "| threads | shape | used by | algorithm | us | GFLOP/s | % peak |",
                "|---|---|---|---|---|---|---|"]
        for r in kern["layers"]:
            users = "; ".join(f"{m} x{len(v)}" for m, v in r["used_by"].items())
            out.append(f"| {r['threads']} | `{r['shape']}` | {users} | {r['algorithm']} | {r['median_us']:.1f} | "
                       f"{r['gflops']:.1f} | {r['pct_peak']:.1f}% |")
    return "\n".join(out) + "\n"


def plots(res: dict, out_dir: str) -> list[str]:
    """latency.png (per model and engine) and gflops.png (against the peak); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    engines = list(res["engines"])
    rows = res["rows"]
    cells = sorted({(r["threads"], r["batch"]) for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    peak = {int(t): v for t, v in (res.get("peak_gflops") or res["peak_gflops_start"]).items()}
    paths = []
    for what, fname in (("median_ms", "latency.png"), ("gflops", "gflops.png")):
        fig, axes = plt.subplots(len(cells), 1, figsize=(max(8, 1.1 * len(models) + 3), 3.6 * len(cells)),
                                 squeeze=False)
        width = 0.8 / len(engines)
        for ax, (t, b) in zip(axes[:, 0], cells):
            x = np.arange(len(models))
            for i, k in enumerate(engines):
                vals = []
                for mname in models:
                    r = next((r for r in rows if r["model"] == mname and r["threads"] == t and r["batch"] == b), None)
                    e = r["engines"].get(k, {}) if r else {}
                    vals.append(e.get(what, np.nan))
                ax.bar(x + (i - (len(engines) - 1) / 2) * width, vals, width, label=SHORT.get(k, k))
            ax.set_xticks(x)
            ax.set_xticklabels(models, rotation=30, ha="right", fontsize=8)
            if what == "median_ms":
                ax.set_yscale("log")
                ax.set_ylabel("median latency (ms, log)")
            else:
                ax.axhline(peak[t], color="k", linestyle="--", linewidth=1)
                ax.text(len(models) - 0.5, peak[t], f" FP32 peak {peak[t]:.0f}", va="bottom", ha="right",
                        fontsize=8)
                ax.set_ylabel("GFLOP/s")
                ax.set_ylim(0, peak[t] * 1.12)
            ax.set_title(f"{t} thread(s), batch {b}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        axes[0, 0].legend(fontsize=8, ncol=len(engines), loc="upper left")
        fig.suptitle(f"pyflame_vision vs peers — {res['machine'].get('cpu', '')}, {res['started_utc']}", fontsize=11)
        fig.tight_layout()
        path = os.path.join(out_dir, fname)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
