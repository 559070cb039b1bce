"""The bench's targets and its printed table (from the results dict run.py writes)."""

from __future__ import annotations

TARGETS = {  # name: (comparison, threshold, printed target)
    "w1_seconds": ("<=", 15.0, "<= 15 s"),
    "w1_compile_seconds": ("<=", 20.0, "<= 20 s"),
    "baseline_speedup": (">=", 10.0, ">= 10x"),
    "efficiency": (">=", 0.4, ">= 0.4"),
    "peak_rss_gb": ("<", 4.0, "< 4 GB"),
    "measures_share": ("<=", 0.25, "<= 0.25"),
}


def verdict(name: str, value) -> str:
    if value is None:
        return "n/a"
    op, thr, _ = TARGETS[name]
    ok = {"<=": value <= thr, ">=": value >= thr, "<": value < thr}[op]
    return "PASS" if ok else "FAIL"


def table(res: dict) -> str:
    m = res["machine"]
    d = res["details"]
    w1 = d["w1"]
    lines = [f"redshift_jax benchmarks ({'QUICK sizes: targets not meaningful' if res['quick'] else 'full sizes'})"
             f" - {res['timestamp']}",
             f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; jax {m['jax']} / jaxlib {m['jaxlib']}, "
             f"{m['backend']} ({m['device_kind']}); load avg at start {m['load_average_at_start']}",
             ""]
    hdr = f"{'figure':<26} {'value':>12}  {'target':<10} {'':<5} how it was measured"
    lines += [hdr, "-" * 118]

    def row(label, value, fmt, target_key=None, note="", target_text=""):
        v = "-" if value is None else format(value, fmt)
        tgt = TARGETS[target_key][2] if target_key else target_text
        ok = verdict(target_key, value) if target_key else ""
        lines.append(f"{label:<26} {v:>12}  {tgt:<10} {ok:<5} {note}")

    n = w1["networks"]
    row("W1 wall (warm) s", res["w1_seconds"], ".2f", "w1_seconds",
        f"run_sweep of {n:,} networks, best of 3 warm runs in-process; chunk {w1['warm_attrs']['chunk_size']}, "
        f"CPU use {w1['warm_cpu_utilization']:.2f} cores")
    row("W1 compile s", res["w1_compile_seconds"], ".2f", "w1_compile_seconds",
        f"(cold - cold chunk time) - (warm - warm chunk time); engine compile wait "
        f"{w1['cold_attrs']['compile_wait_seconds']} s; plain cold - warm {w1['cold_minus_warm_seconds']:.1f} s")
    row("W1 networks/s", res["networks_per_second"], ",.0f", None, f"{n:,} / warm wall")
    ms = d["measures"]
    row("measures share", res["measures_share"], ".3f", "measures_share", ms["method"])
    for name, pm in ms["per_measure"].items():
        row(f"  {name} share", pm["w1_seconds_projected"] / res["w1_seconds"], ".3f", None,
            f"{pm['w1_seconds_projected']:.2f} s: this measure alone on the sample, projected (1 timed run)")
    for name, v in ms.get("new_variants", {}).items():
        row(f"  {name}/nrs", v["ratio_to_fourier_nrs"], ".2f", None,
            f"{v['w1_seconds_projected']:.2f} s projected to W1 ({v['w1_seconds_projected'] / res['w1_seconds']:.3f} "
            "of W1); best of 3 alternating with fourier nrs on the same sample; target <= 1.5x",
            target_text="<= 1.5x")
    row("  forward share", ms["forward_share"], ".3f", None,
        f"{ms['forward_seconds_projected']:.2f} s: the networks' forward on the same sample (all devices, as the "
        "engine), projected")
    w2 = d["w2"]
    row("W2 efficiency", res["efficiency"], ".3f", "efficiency",
        f"{w2['forward_gflops']:.1f} GFLOP/s forward ({w2['networks']} nets, {w2['form']}, chunks of {w2['chunk']}) / "
        f"{w2['matmul_gflops']:.1f} GFLOP/s {w2['matmul_n']}^3 matmul (best of 5, max before/after)")
    row("  best chunk efficiency", w2["efficiency_best_chunk"], ".3f", None, "fastest single chunk / same matmul")
    row(f"  {w2['other_form']} form efficiency", w2["other_form_efficiency"], ".3f", None,
        f"W2 batched with {'jax.lax.map' if w2['other_form'] == 'map' else 'jax.vmap'} instead of "
        f"{'jax.vmap' if w2['form'] == 'vmap' else 'jax.lax.map'}, {w2['other_form_networks']} networks (info only)")
    bl = d["baseline"]
    row("baseline speedup", res["baseline_speedup"], ".1f", "baseline_speedup",
        f"W1 nets/s / {bl['networks_per_second']:.1f} nets/s: {bl['networks']} W1 networks, one jitted call each "
        f"({len(bl['pairs'])} activation/depth pairs, mean depth {bl['mean_depth']:.1f}; best of 3 passes "
        f"interleaved with W1's warm runs, "
        f"{bl['cpu_utilization']:.2f} cores busy)")
    bd = d["bound"]
    row("  W1 bound s", bd["seconds"], ".2f", None,
        f"matmuls at the {bd['matmul_gflops']:.0f} GFLOP/s reference {bd['matmul_seconds']:.2f} s + activation "
        f"passes {bd['activation_seconds']:.2f} s, nothing else; W1 reaches {bd['w1_fraction_of_bound']:.2f} of it")
    row("  speedup at the bound", bd["speedup_ceiling"], ".1f", None,
        f"the most this machine allows against this loop; 10x needs W1 <= {bd['w1_seconds_for_10x']:.2f} s")
    row("peak RSS GB", res["peak_rss_gb"], ".2f", "peak_rss_gb",
        "peak resident memory (VmHWM): main process and every scaling subprocess, each its own")
    st = res.get("store")
    if st and "verification_overhead" in st:
        b = st["best_seconds"]
        row("store verification", 100 * st["verification_overhead"], "+.1f", None,
            f"% extra wall time: {st['sweep']} ({st['networks']:,} networks) written verified {b['verified']:.2f} s "
            f"vs unverified {b['unverified']:.2f} s (benchmarks/store_bench.py, best of "
            f"{len(st['seconds']['verified'])} interleaved)", target_text="< 5% (info)")
    lines.append("")
    lines.append("scaling (relu depth 2, width 64, 64x64, fourier; fresh process per size; compile excluded)")
    lines.append(f"{'networks':>10} {'seconds':>9} {'nets/s':>9} {'us/net':>8} {'RSS GB':>7} {'chunk':>6}  RSS < 4 GB")
    for r in d["scaling"]["rows"]:
        if "error" in r:
            lines.append(f"{r['networks']:>10} error: {r['error']}")
            continue
        lines.append(f"{r['networks']:>10,} {r['seconds']:>9.2f} {r['networks'] / r['seconds']:>9.0f} "
                     f"{1e6 * r['seconds'] / r['networks']:>8.1f} {r['peak_rss_gb']:>7.2f} "
                     f"{r.get('chunk_size', 0):>6}  {verdict('peak_rss_gb', r['peak_rss_gb'])}")
    lin = d["scaling"].get("linearity")
    if lin:
        lines.append(f"per-network cost at the largest size / at 10^3: {lin:.2f} (1.0 = linear)")
    for note in d["scaling"]["notes"]:
        lines.append(note)
    lines.append("")
    if st is None:
        lines.append("store: skipped (--skip-store)")
    elif "skipped" in st:
        lines.append(f"store: skipped ({st['skipped']})")
    tr = res.get("train")
    if tr is None:
        lines.append("train: skipped (--skip-train)")
    elif "skipped" in tr:
        lines.append(f"train: skipped ({tr['skipped']})")
    else:
        for act, r in tr.get("activations", {}).items():
            compile_s = "-" if r.get("compile_seconds") is None else f"{r['compile_seconds']:.1f}"
            lines.append(f"train {act}: {r['ms_per_network_step']:.4f} ms/network-step "
                         f"(loop {r['loop_ms_per_network_step']:.4f}, speedup {r['speedup_vs_loop']:.1f}x, "
                         f"compile {compile_s} s)")
        if "full_grid_projection_seconds" in tr:
            lines.append(f"train full grid projected: {tr['full_grid_projection_seconds']} s "
                         f"(target relu {tr.get('target_ms_per_network_step_relu')} ms/network-step)")
    lines.append(f"total bench wall time {res['bench_wall_seconds']:.0f} s")
    return "\n".join(lines)
