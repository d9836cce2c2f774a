"""The report of a run: the figures against their targets, as Markdown, JSON and a PNG chart."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from typing import Any

from .scenarios import RELAYED_TARGET

__all__ = ["Figure", "figures", "machine", "write_report"]


@dataclass
class Figure:
    """One headline number: what it is, its value, the target and whether it was met (None: context only)."""

    scenario: str
    figure: str
    value: float
    unit: str
    target: str
    met: bool | None
    context: str


def machine() -> dict[str, Any]:
    """The machine the run happened on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _ratio(a: float, b: float) -> float:
    """a / b, 0 when b is 0."""
    return a / b if b else 0.0


def figures(results: dict[str, Any]) -> list[Figure]:
    """The headline figures of the scenarios that ran."""
    out: list[Figure] = []
    burst = results.get("burst")
    if burst:
        for clients, by_target in burst["clients"].items():
            lean = by_target["lean_chat"]["tokensPerSecond"]
            ref = by_target["reference"]["tokensPerSecond"]
            token_floor = by_target["floor-token"]["tokensPerSecond"]
            batch_floor = by_target["floor-batch"]["tokensPerSecond"]
            context = f"lean_chat {lean:,.0f} tok/s, reference {ref:,.0f} tok/s"
            out.append(
                Figure(
                    "burst",
                    f"{clients} clients: lean_chat / reference",
                    _ratio(lean, ref),
                    "x",
                    ">= 10",
                    _ratio(lean, ref) >= 10,
                    context,
                )
            )
            out.append(
                Figure(
                    "burst",
                    f"{clients} clients: lean_chat / one-send-per-token floor",
                    _ratio(lean, token_floor),
                    "x",
                    "> 1",
                    _ratio(lean, token_floor) > 1,
                    f"floor {token_floor:,.0f} tok/s",
                )
            )
            out.append(
                Figure(
                    "burst",
                    f"{clients} clients: lean_chat / batched floor",
                    _ratio(lean, batch_floor),
                    "x",
                    "",
                    None,
                    f"floor {batch_floor:,.0f} tok/s",
                )
            )
    relay = results.get("relay")
    if relay:
        lean = relay["targets"]["lean_chat"]["tokensPerSecond"]
        ref = relay["targets"]["reference"]["tokensPerSecond"]
        out.append(
            Figure(
                "relay",
                "lean_chat / reference",
                _ratio(lean, ref),
                "x",
                ">= 10",
                _ratio(lean, ref) >= 10,
                f"lean_chat {lean:,.0f} tok/s, reference {ref:,.0f} tok/s",
            )
        )
    many = results.get("many_streams")
    if many:
        lean_n = many["targets"]["lean_chat"]["largest"]
        ref_n = many["targets"]["reference"]["largest"]
        floor_n = many["targets"]["floor-paced"]["largest"]
        out.append(
            Figure(
                "many streams",
                "lean_chat largest N (all done, first-token p99 <= 250 ms, gap p99 <= 75 ms)",
                lean_n,
                "streams",
                ">= 5000",
                lean_n >= 5000,
                f"reference {ref_n}, bare floor {floor_n}; " + _failure_note(many["targets"]["lean_chat"]),
            )
        )
        out.append(Figure("many streams", "lean_chat / reference", _ratio(lean_n, ref_n), "x", "", None, ""))
        cost = {name: _cpu_per_token(data["probes"]) for name, data in many["targets"].items()}
        out.append(
            Figure(
                "many streams",
                "lean_chat server CPU per token sent",
                cost["lean_chat"],
                "us",
                "",
                None,
                f"reference {cost['reference']:.1f} us, bare floor (sleep + one send per token) "
                f"{cost['floor-paced']:.1f} us (medians over the probes)",
            )
        )
        memory = many["memory"]
        lean_kb = memory["lean_chat"]["perStream"] / 1024.0
        ref_kb = memory["reference"]["perStream"] / 1024.0
        first = " (first probe, fresh server)" if memory["lean_chat"].get("firstProbe") else ""
        out.append(
            Figure(
                "memory",
                f"lean_chat RSS per open stream at N={memory['lean_chat']['streams']}",
                lean_kb,
                "KB",
                "<= 10",
                lean_kb <= 10,
                f"reference {ref_kb:.1f} KB at N={memory['reference']['streams']}"
                + (
                    f"; bare floor {memory['floor-paced']['perStream'] / 1024.0:.1f} KB "
                    f"at N={memory['floor-paced']['streams']}"
                    if "floor-paced" in memory
                    else ""
                )
                + first,
            )
        )
    relayed = results.get("many_relayed_streams")
    if relayed:
        out.extend(_relayed_figures(relayed))
    crowd = results.get("crowd")
    if crowd:
        from .crowd import crowd_figures  # crowd.py builds on this module's Figure

        out.extend(crowd_figures(crowd))
    clients = results.get("relay_clients")
    if clients:
        measured = {name: c for name, c in clients["clients"].items() if not c.get("missing")}
        lean = measured.get("lean")
        httpx_own = measured.get("httpx")
        if lean and httpx_own:
            others = ", ".join(
                f"{name} {c['cpuPerChunkUs']:.1f} us, first byte p50 {c['firstByteP50Ms']:.0f} ms"
                for name, c in measured.items()
                if name != "lean"
            )
            out.append(
                Figure(
                    "relay clients",
                    f"httpx's transport / lean transport CPU per upstream chunk ({clients['streams']} streams)",
                    _ratio(httpx_own["cpuPerChunkUs"], lean["cpuPerChunkUs"]),
                    "x",
                    "",
                    None,
                    f"lean {lean['cpuPerChunkUs']:.1f} us, first byte p50 {lean['firstByteP50Ms']:.0f} ms; {others}",
                )
            )
    conversation = results.get("long_conversation")
    if conversation:
        lean = conversation["lean_chat"]
        ref = conversation["reference"]
        out.append(
            Figure(
                "long conversation",
                f"lean_chat last / first turn time ({lean['turns']} turns)",
                lean["growth"],
                "x",
                "<= 1.5",
                lean["growth"] <= 1.5,
                f"lean_chat {lean['firstMs']:.2f} -> {lean['lastMs']:.2f} ms; reference {ref['growth']:.1f}x "
                f"({ref['firstMs']:.2f} -> {ref['lastMs']:.2f} ms)",
            )
        )
    stalls = results.get("loop_stalls")
    if stalls:
        lean = stalls["lean_chat"]["largestStallMs"]
        ref = stalls["reference"]["largestStallMs"]
        out.append(
            Figure(
                "loop stalls",
                f"lean_chat largest stall ({stalls['turns']} turns beside {stalls['streams']} streams)",
                lean,
                "ms",
                "<= 5",
                lean <= 5,
                f"wall-clock lateness {stalls['lean_chat']['largestLatenessMs']:.1f} ms (includes time other "
                f"programs held the core); reference {ref:.1f} ms",
            )
        )
    latency = results.get("added_latency")
    if latency:
        lean = latency["lean_chat"]
        ref = latency["reference"]
        out.append(
            Figure(
                "added latency",
                "lean_chat median (TTFT through server - direct)",
                lean["medianMs"],
                "ms",
                "<= 0.5",
                lean["medianMs"] <= 0.5,
                f"p99 {lean['p99Ms']:.2f} ms, server CPU {lean.get('serverCpuPerRequestMs', 0.0):.2f} ms a request; "
                f"reference median {ref['medianMs']:.2f} ms, p99 {ref['p99Ms']:.2f} ms",
            )
        )
    from .postgres import postgres_figures

    return out + postgres_figures(results)


def _at_largest(target: dict[str, Any]) -> dict[str, Any]:
    """The probe at a target's largest passing N (else its first probe)."""
    probes = target["probes"]
    return next((p for p in probes if p["streams"] == target["largest"] and p["passed"]), probes[0])


def _failure_note(target: dict[str, Any]) -> str:
    """The first failing probe's figures: which criterion it missed."""
    failed = next((p for p in target["probes"] if not p["passed"]), None)
    if failed is None:
        return "no probe failed"
    return (
        f"at N={failed['streams']}: {failed['ok']} done, first token p99 {failed.get('p99FirstTokenMs', 0):.0f} ms, "
        f"gap p99 {failed['p99GapMs']:.0f} ms"
    )


def _apparatus_note(probe: dict[str, Any] | None) -> str:
    """What the load generator saw reading the upstream directly (no server): the floor of the measurement itself."""
    if probe is None:
        return ""
    return (
        f"; the upstream read directly (no server) at N={probe['streams']}: first token p99 "
        f"{probe['p99FirstTokenMs']:.0f} ms, gap p99 {probe['p99GapMs']:.0f} ms"
    )


def _relayed_figures(relayed: dict[str, Any]) -> list[Figure]:
    """Many relayed streams: largest N against the reference and the relay floor; CPU per chunk; RSS per stream."""
    targets = relayed["targets"]
    lean, ref, floor = targets["lean_chat"], targets["reference"], targets["floor-relay"]
    at = _at_largest(lean)
    pace = f"{relayed['chunks']} chunks at one per {relayed['intervalMs']:g} ms"
    versus_ref = _ratio(lean["largest"], ref["largest"] or ref["firstFailure"])
    out = [
        Figure(
            "many relayed streams",
            "lean_chat largest N (all done, first-token p99 <= 250 ms, gap p99 <= 75 ms)",
            lean["largest"],
            "streams",
            f">= {RELAYED_TARGET}",
            lean["largest"] >= RELAYED_TARGET,
            f"{pace}; at N={at['streams']}: first token p50/p99 {at['p50FirstTokenMs']:.0f}/"
            f"{at['p99FirstTokenMs']:.0f} ms, gap p50/p99 {at['p50GapMs']:.0f}/{at['p99GapMs']:.0f} ms, "
            f"upstream CPU {at['upstreamCpu']:.0%}, load generator {at['loadCpu']:.0%}; "
            "first failure: " + _failure_note(lean) + _apparatus_note(relayed.get("apparatus")),
        ),
        Figure(
            "many relayed streams",
            "lean_chat / reference largest N",
            versus_ref,
            "x",
            ">= 4",
            versus_ref >= 4,
            ("(reference passed no N tried: vs its smallest failure, a lower bound) " if not ref["largest"] else "")
            + f"reference {ref['largest']} (first failure {ref['firstFailure'] or '-'}), "
            f"relay floor {floor['largest']} (first failure {floor['firstFailure'] or '-'})",
        ),
    ]
    # CPU per chunk compared at the first probe, where lean_chat and the floor ran the same N.
    lean_cpu = lean["probes"][0]["serverCpuPerTokenUs"]
    floor_cpu = floor["probes"][0]["serverCpuPerTokenUs"]
    out.append(
        Figure(
            "many relayed streams",
            f"lean_chat / relay floor server CPU per relayed chunk (N={lean['probes'][0]['streams']})",
            _ratio(lean_cpu, floor_cpu),
            "x",
            "<= 1.5",
            _ratio(lean_cpu, floor_cpu) <= 1.5,
            f"lean_chat {lean_cpu:.1f} us, relay floor {floor_cpu:.1f} us, "
            f"reference {ref['probes'][0]['serverCpuPerTokenUs']:.1f} us (N={ref['probes'][0]['streams']})",
        )
    )
    memory = relayed["memory"]
    lean_kb = memory["lean_chat"]["perStream"] / 1024.0
    note = " (first probe, fresh server)" if memory["lean_chat"].get("firstProbe") else ""
    out.append(
        Figure(
            "many relayed streams",
            f"lean_chat RSS per relayed stream at N={memory['lean_chat']['streams']}",
            lean_kb,
            "KB",
            "",
            None,
            f"reference {memory['reference']['perStream'] / 1024.0:.1f} KB at N={memory['reference']['streams']}, "
            f"relay floor {memory['floor-relay']['perStream'] / 1024.0:.1f} KB at "
            f"N={memory['floor-relay']['streams']}{note}",
        )
    )
    return out


def _cpu_per_token(probes: list[dict[str, Any]]) -> float:
    """Median server CPU microseconds per token over a target's probes."""
    values = sorted(p["serverCpuPerTokenUs"] for p in probes)
    return values[len(values) // 2] if values else 0.0


def _fmt(value: float) -> str:
    """A number for the table."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown table of the figures, with the run's date, machine and command."""
    host = report["machine"]
    lines = [
        f"Run of {report['date']} ({report['plan']} plan, medians of {report['runs']} runs where repeated), "
        f"on {host['cpu']}, {host['cores']} cores, Python {host['python']}, {host['system']}. "
        f"Servers pinned to one core, load generator and upstream on the other: {report['pinned']}. "
        f"Busiest the load generator got while measuring lean_chat or the reference: "
        f"{report['loadCpuPeak']:.0%} of a core (per-measurement shares are in the JSON).",
        "",
        "| scenario | figure | value | target | met | context |",
        "|---|---|---|---|---|---|",
    ]
    for f in report["figures"]:
        met = "" if f["met"] is None else ("yes" if f["met"] else "**no**")
        value = f"{_fmt(f['value'])} {f['unit']}"
        lines.append(f"| {f['scenario']} | {f['figure']} | {value} | {f['target']} | {met} | {f['context']} |")
    return "\n".join(lines) + "\n"


def _chart(report: dict[str, Any], path: str) -> None:
    """A PNG: each scenario's lean_chat value against the reference's (and the floors')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    panels: list[tuple[str, dict[str, float], str]] = []
    if "burst" in results:
        for clients, by_target in results["burst"]["clients"].items():
            values = {name: summary["tokensPerSecond"] for name, summary in by_target.items()}
            panels.append((f"burst, {clients} clients", values, "tokens/s"))
    if "relay" in results:
        values = {name: summary["tokensPerSecond"] for name, summary in results["relay"]["targets"].items()}
        panels.append(("relay (1,000 chunks)", values, "tokens/s"))
    if "many_streams" in results:
        values = {name: float(data["largest"]) for name, data in results["many_streams"]["targets"].items()}
        panels.append(("many streams: largest N", values, "streams"))
        values = {name: data["perStream"] / 1024.0 for name, data in results["many_streams"]["memory"].items()}
        panels.append(("RSS per open stream", values, "KB"))
    if "many_relayed_streams" in results:
        values = {name: float(data["largest"]) for name, data in results["many_relayed_streams"]["targets"].items()}
        panels.append(("many relayed streams: largest N", values, "streams"))
    if "long_conversation" in results:
        values = {name: data["growth"] for name, data in results["long_conversation"].items()}
        panels.append(("long conversation: last/first turn", values, "x"))
    if "loop_stalls" in results:
        values = {
            name: data["largestStallMs"] for name, data in results["loop_stalls"].items() if isinstance(data, dict)
        }
        panels.append(("largest loop stall", values, "ms"))
    if "added_latency" in results:
        values = {name: data["medianMs"] for name, data in results["added_latency"].items()}
        panels.append(("added latency (median)", values, "ms"))
    columns = 3 if len(panels) > 2 else max(1, len(panels))
    rows = max(1, (len(panels) + columns - 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    colours = {"lean_chat": "#2b7a3d", "reference": "#a33b3b"}
    for axis, (title, values, unit) in zip(axes.flat, panels, strict=False):
        names = list(values)
        axis.bar(names, [values[n] for n in names], color=[colours.get(n, "#888888") for n in names])
        axis.set_title(title, fontsize=9)
        axis.set_ylabel(unit, fontsize=8)
        axis.tick_params(axis="x", labelsize=7, rotation=20)
        axis.tick_params(axis="y", labelsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    fig.suptitle(f"lean_chat vs reference ({report['date']}, {report['plan']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(folder: str, report: dict[str, Any], stem: str = "latest") -> dict[str, str]:
    """Write STEM.md, STEM.json and STEM.png into the folder; return their paths."""
    os.makedirs(folder, exist_ok=True)
    report["figures"] = [asdict(f) for f in figures(report["results"])]
    paths = {kind: os.path.join(folder, f"{stem}.{kind}") for kind in ("md", "json", "png")}
    with open(paths["json"], "w") as out:
        json.dump(report, out, indent=1, sort_keys=True)
    with open(paths["md"], "w") as out:
        out.write("# lean_chat benchmarks: latest run\n\n" + markdown(report))
    _chart(report, paths["png"])
    return paths
