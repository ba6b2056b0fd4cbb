"""Run reports in the browser: `equilibria report RUN_DIR [RUN_DIR ...]`.

One self-contained HTML file per call (no network when it is viewed): every run's summary,
metric tables, interactive curves of every metric (zoom, hover, toggle series), its Markdown
result tables, a tournament's payoff heatmap with the meta-Nash mixture, its PNG plots, its
episode animations (play/pause, a step slider), its replays (transcript, roles on demand, every decision's
attempts) and its resolved config; several runs add a comparison (summaries
side by side, each shared metric overlaid). `--serve` serves the page and the run directory on
127.0.0.1, read-only, refusing every path outside the run directory.

The plotting library is uPlot (MIT, 51 KB minified, vendored in report_assets/ with its
license): it draws on a canvas, has drag-to-zoom, hover read-outs and legend toggles built in,
and at its size a report with hundreds of replays stays small. Plotly's bundle (4.6 MB) would
take most of a large report's budget; Vega-Lite needs three libraries (about 1 MB).

Run data enters the page only as JSON inside <script type="application/json"> (with <, > and &
escaped) and is put on the page by textContent, never parsed as HTML: model output in a replay
cannot run script.
"""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import http.server
import json
import math
import threading
import urllib.parse
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from equilibria.common.config import ConfigError
from equilibria.scenarios.runner import json_safe

MAX_METRIC_ROWS = 2000  # rows of metrics.csv kept per run (evenly thinned beyond)
MAX_IMAGE_BYTES = 2 << 20  # a larger PNG is listed, not embedded
TABLE_FILES = ("ranking.md", "results.md", "measures.md", "comparison.md")
NIGHT_EVENTS = ("proposal", "night_victim", "inspection", "protection")  # Werewolf events that reveal roles
MAX_EMBEDDED_REPLAYS = 12  # a file report samples this many replays evenly; --serve loads any on demand


def _asset(name: str) -> str:
    return resources.files("equilibria.scenarios").joinpath("report_assets", name).read_text(encoding="utf-8")


def _number(text: str) -> float | int | str | None:
    if text in ("", None):
        return None
    try:
        x = float(text)
    except ValueError:
        return text
    if not math.isfinite(x):
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 and "." not in text and "e" not in text.lower() else x


def read_metrics(path: Path) -> dict[str, Any] | None:
    """metrics.csv as {columns, rows} of numbers (None where blank), thinned to MAX_METRIC_ROWS."""
    if not path.exists():
        return None
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return None
    columns, body = rows[0], [[_number(c) for c in r] for r in rows[1:]]
    if len(body) > MAX_METRIC_ROWS:
        step = len(body) / MAX_METRIC_ROWS
        body = [body[int(i * step)] for i in range(MAX_METRIC_ROWS - 1)] + [body[-1]]
    return {"columns": columns, "rows": body}


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """The pipe tables of a Markdown text: (header, rows) each."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if len(block) >= 2:
            body = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            tables.append((block[0], body))
        block = []
    return tables


def replay_view(path: Path) -> dict[str, Any]:
    """A replay as the page shows it: players, the game's own transcript as plain text (with and
    without the players' roles, which the page reveals on demand) and every decision with its
    attempts (prompt, raw answer, parse error, option log-probabilities: whatever was recorded)."""
    from rich.text import Text

    from equilibria.games.replay import ReplayError, load_replay, render

    try:
        record = load_replay(path)
        full = [Text.from_markup(line).plain for line in render(record)]
        # the spectator's view: night actions (who proposes a kill, inspects, protects) name the
        # roles, so they are left out, and roles are taken out of the players' labels
        public = {**record, "events": [e for e in record.get("events", []) if e.get("type") not in NIGHT_EVENTS]}
        hidden = [Text.from_markup(line).plain for line in render(public)] if "events" in record else list(full)
        for p in record["players"]:
            if "role" in p and "name" in p:
                for a, b in ((f"{p['name']} ({p['role']}, {p['agent']})", f"{p['name']} ({p['agent']})"),
                             (f"{p['name']} ({p['role']})", str(p["name"]))):
                    hidden = [line.replace(a, b) for line in hidden]
        turns = [{k: t.get(k) for k in ("round", "phase", "seat", "agent", "role", "action", "fallback", "attempts")}
                 for t in record["turns"]]
        return json_safe({"name": path.name, "game": record["game"], "seed": record.get("seed"),
                           "outcome": record["outcome"], "players": record["players"], "transcript": full,
                           "transcript_hidden": hidden, "turns": turns})
    except ReplayError as err:
        return {"name": path.name, "error": str(err)}
    except Exception as err:  # a replay this version cannot read must not take the report down
        return {"name": path.name, "error": f"{path.name}: cannot show this replay ({type(err).__name__}: {err})"}


def _read_json(path: Path) -> Any:
    """A run's JSON file (summary.json, payoff.json), None when absent; a one-line error when broken."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); delete it or run the scenario again") from None


def replay_files(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / "replays"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def collect_run(run_dir: Path, lazy_replays: bool = False) -> dict[str, Any]:
    """Everything a report shows of one run directory, as plain JSON-able data."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not run_dir.is_dir() or not config_path.exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    summary: dict[str, Any] = _read_json(run_dir / "summary.json") or {}
    from equilibria.common.yamlio import load_yaml_file

    config_text = config_path.read_text(encoding="utf-8", errors="replace")
    data, _ = load_yaml_file(config_path, what="run configuration")
    tables = []
    for name in TABLE_FILES:
        p = run_dir / name
        if p.exists():
            for i, (header, rows) in enumerate(markdown_tables(p.read_text(encoding="utf-8", errors="replace"))):
                tables.append({"title": name if i == 0 else f"{name} ({i + 1})", "header": header, "rows": rows})
    images = []
    for p in sorted((run_dir / "plots").glob("*.png")) if (run_dir / "plots").is_dir() else []:
        if p.stat().st_size <= MAX_IMAGE_BYTES:
            images.append({"name": p.name, "png": base64.b64encode(p.read_bytes()).decode()})
    payoff = _read_json(run_dir / "payoff.json")
    animations = []
    for p in sorted((run_dir / "animations").glob("*.svg")) if (run_dir / "animations").is_dir() else []:
        if p.stat().st_size <= MAX_IMAGE_BYTES:
            animations.append({"name": p.name, "svg": p.read_text(encoding="utf-8", errors="replace")})
    files = replay_files(run_dir)
    if lazy_replays:
        replays = [{"name": p.name} for p in files]
    else:
        picked = files if len(files) <= MAX_EMBEDDED_REPLAYS else \
            [files[round(i * (len(files) - 1) / (MAX_EMBEDDED_REPLAYS - 1))] for i in range(MAX_EMBEDDED_REPLAYS)]
        replays = [replay_view(p) for p in picked]
    return json_safe({
        "replays": replays, "replay_count": len(files), "lazy": lazy_replays, "payoff": payoff,
        "animations": animations,
        "name": summary.get("name") or (data or {}).get("name") or run_dir.name,
        "kind": summary.get("kind") or (data or {}).get("kind", "?"),
        "game": summary.get("game") or (data or {}).get("game"),
        "dir": str(run_dir),
        "summary": summary.get("metrics", {}),
        "alarms": summary.get("alarms", []),
        "config": config_text,
        "metrics": read_metrics(run_dir / "metrics.csv"),
        "tables": tables,
        "images": images,
    })


def embed_json(data: Any) -> str:
    """JSON safe inside <script type="application/json">: <, > and & as \\u escapes."""
    text = json.dumps(data, allow_nan=False)  # ASCII: a lone surrogate from model output stays an escape
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render(runs: list[dict[str, Any]], title: str | None = None) -> str:
    """The self-contained page for collected runs."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("equilibria")
    except PackageNotFoundError:
        ver = "dev"
    title = title or (runs[0]["name"] if len(runs) == 1 else f"{len(runs)} runs")
    data = {"title": f"equilibria report: {title}", "version": ver, "runs": runs,
            "generated": datetime.datetime.now().isoformat(timespec="seconds")}
    scripts = [_asset("uPlot.iife.min.js"), _asset("report.js")]
    # only these two scripts may run (by hash): no inline handler, no injected script, even if
    # some text ever reached the page as markup
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(x.encode()).digest()).decode()}'" for x in scripts)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            f"script-src {hashes}; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-src 'none'\">"
            "<title>equilibria report</title>"
            f"<style>{_asset('uPlot.min.css')}\n{_asset('report.css')}</style></head><body>"
            "<main id=\"report\"></main>"
            f"<script id=\"report-data\" type=\"application/json\">{embed_json(data)}</script>"
            + "".join(f"<script>{x}</script>" for x in scripts) + "</body></html>\n")


def build_report(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Write the report of `run_dirs` (default: RUN_DIR/report.html for one run,
    ./report.html for several) and return its path."""
    runs = [collect_run(Path(d)) for d in run_dirs]
    if out is None:
        out = Path(run_dirs[0]) / "report.html" if len(run_dirs) == 1 else Path("report.html")
    from equilibria.scenarios.rundir import atomic_write_bytes

    atomic_write_bytes(out, render(runs).encode("utf-8"))
    return out


# ----------------------------------------------------------------------------- serving
def safe_path(root: Path, url_path: str) -> Path | None:
    """The file under `root` that a request path names, or None when it is not one: absolute
    paths, `..` segments (also percent-encoded), NUL bytes, and symlinks leading outside."""
    rel = urllib.parse.unquote(url_path.split("?", 1)[0])
    if "\x00" in rel or "\\" in rel:
        return None
    parts = PurePosixPath(rel)
    if parts.is_absolute() or any(p == ".." for p in parts.parts):
        return None
    base = Path(root).resolve()
    target = (base / Path(*parts.parts)).resolve() if parts.parts else base
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def make_server(run_dir: Path, port: int = 8765) -> http.server.ThreadingHTTPServer:
    """A read-only server on 127.0.0.1: / is the run's report (its replays listed, each fetched
    when picked), /replay/NAME one replay as the page shows it, /files/PATH a file of the run
    directory (404 for anything else, including every path outside it)."""
    run_dir = Path(run_dir)
    collect_run(run_dir, lazy_replays=True)  # a one-line error now, not on the first request

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            port = self.server.server_address[1]
            if self.headers.get("Host", "") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                self._send(403, b"forbidden host\n", "text/plain; charset=utf-8")  # no DNS rebinding
                return
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, render([collect_run(run_dir, lazy_replays=True)]).encode(), "text/html; charset=utf-8")
                return
            if path.startswith("/replay/"):
                target = safe_path(run_dir, "replays/" + path[len("/replay/"):])
                if target is not None and target.suffix == ".json":
                    self._send(200, json.dumps(replay_view(target), allow_nan=False).encode(), "application/json")
                    return
            if path.startswith("/files/"):
                target = safe_path(run_dir, path[len("/files/"):])
                if target is not None:
                    ctype = {".png": "image/png", ".json": "application/json", ".csv": "text/csv"}.get(
                        target.suffix, "text/plain; charset=utf-8")
                    self._send(200, target.read_bytes(), ctype)
                    return
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the CLI prints the address once
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve(run_dir: Path, port: int = 8765) -> None:
    server = make_server(run_dir, port)
    print(f"serving {run_dir} at http://127.0.0.1:{server.server_address[1]}/ (read-only; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_in_thread(run_dir: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """Start the server in a daemon thread (tests, notebooks); port 0 picks a free one."""
    server = make_server(run_dir, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
