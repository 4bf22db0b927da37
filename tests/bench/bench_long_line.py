"""Event-loop lag while typing on a 2.2-million-character line (minified JavaScript, not ASCII)
and asking for ghost text in a small Python file at the same time.

The real server over stdio with the real engine. A typist sends one keystroke (didChange) on the
long line every `--key-ms`; a second client thread asks for ghost text in the small file every
300 ms; a third sends `moe/stats` every 20 ms. The round trip of `moe/stats` (answered on the
event loop, no engine) is the lag measured: an upper bound of the loop's lag, pipe and JSON
included. Prints p50/p99/max before and while typing; saves JSON and a plot in bench-results/.
`--smoke`: 5 s of typing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .report import percentile, save_results
from .shutdown_probe import SERVER, _Client, _wait_ready

LINE = 'var s="é😀中",t=1;' * 137_500
"""2.2 million characters on one line; é, 中 and an emoji (two UTF-16 units) in each piece."""
BIG = "file:///bench/app.min.js"
SMALL = "file:///bench/small.py"
SMALL_TEXT = "import math\n\n\ndef area(radius):\n    return "


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class Pinger(threading.Thread):
    """Sends `moe/stats` every `every` seconds, and notes each round trip (ms)."""

    def __init__(self, client: _Client, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.client, self.every = client, every
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.stop.is_set():
            sent = time.perf_counter()
            reply = self.client.answer(self.client.request("moe/stats", {}), 30)
            if reply is not None:
                self.samples.append((sent - t0, (time.perf_counter() - sent) * 1000))
            time.sleep(max(0.0, self.every - (time.perf_counter() - sent)))


def lag(samples: list[tuple[float, float]]) -> dict[str, Any]:
    values = [ms for _, ms in samples]
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else None,
    }


def run(seconds: float, key_ms: float, log_path: Path) -> dict[str, Any]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            SERVER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    client = _Client(proc)
    try:
        init = client.request("initialize", {"processId": os.getpid(), "capabilities": {}})
        assert client.answer(init, 60) is not None, "initialize was not answered"
        client.notify("initialized", {})
        _wait_ready(client)
        for uri, lang, text in ((SMALL, "python", SMALL_TEXT), (BIG, "javascript", LINE)):
            item = {"uri": uri, "languageId": lang, "version": 1, "text": text}
            client.notify("textDocument/didOpen", {"textDocument": item})
        idle = Pinger(client)
        idle.start()
        time.sleep(min(seconds, 3.0))
        idle.stop.set()
        idle.join()
        busy = Pinger(client)
        busy.start()
        answered: list[float] = []
        done = threading.Event()

        def ask() -> None:
            # Each time one more character is typed in the small file first, so that the
            # answer is not the typing cache's: the engine runs beside the typist.
            typed, version = "radius * radius * math.pi", 1
            while not done.is_set():
                version += 1
                tail = typed[: version % (len(typed) + 1)]
                change = {"text": SMALL_TEXT + tail}
                doc = {"uri": SMALL, "version": version}
                client.notify(
                    "textDocument/didChange", {"textDocument": doc, "contentChanges": [change]}
                )
                at = {"line": 4, "character": 11 + len(tail)}
                sent = time.perf_counter()
                params = {
                    "textDocument": {"uri": SMALL},
                    "position": at,
                    "context": {"triggerKind": 1},
                }
                reply = client.answer(client.request("textDocument/inlineCompletion", params), 30)
                if reply is not None:
                    answered.append((time.perf_counter() - sent) * 1000)
                time.sleep(0.3)

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        column = utf16_length(LINE) // 2  # typing starts in the middle of the line
        keys = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            at = {"line": 0, "character": column}
            change = {"range": {"start": at, "end": at}, "text": "k"}
            client.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": BIG, "version": keys + 2}, "contentChanges": [change]},
            )
            keys += 1
            column += 1
            time.sleep(key_ms / 1000)
        done.set()
        busy.stop.set()
        busy.join()
        asker.join(30)
        return {
            "line_chars": len(LINE),
            "seconds": seconds,
            "keystrokes": keys,
            "key_ms": key_ms,
            "idle": lag(idle.samples),
            "typing": lag(busy.samples),
            "typing_samples": busy.samples,
            "completions_answered": len(answered),
            "completion_p50_ms": percentile(answered, 50),
        }
    finally:
        shutdown = client.request("shutdown", None)
        client.answer(shutdown, 10)
        client.notify("exit", None)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="5 s of typing")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--key-ms", type=float, default=100.0, help="time between keystrokes")
    ap.add_argument("--goal-ms", type=float, default=50.0, help="p99 lag to stay under")
    ap.add_argument("--out", default="bench-results")
    args = ap.parse_args()
    seconds = 5.0 if args.smoke else args.seconds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = run(seconds, args.key_ms, out / "long-line-server.log")
    data["smoke"] = args.smoke
    for phase in ("idle", "typing"):
        d = data[phase]
        print(
            f"{phase:<7} moe/stats round trip p50 {d['p50_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms, "
            f"max {d['max_ms']:.1f} ms ({d['n']} samples)"
        )
    print(
        f"{data['keystrokes']} keystrokes on a {data['line_chars']:,}-character line; "
        f"{data['completions_answered']} ghost texts answered meanwhile "
        f"(p50 {data['completion_p50_ms'] or 0:.0f} ms)"
    )

    def draw(axes: Any) -> None:
        ax = axes[0][0]
        xs, ys = zip(*data["typing_samples"], strict=True) if data["typing_samples"] else ((), ())
        ax.plot(xs, ys, ".", markersize=3, label="moe/stats round trip while typing")
        ax.axhline(
            args.goal_ms, color="red", linestyle="--", label=f"goal p99 {args.goal_ms:.0f} ms"
        )
        ax.set_xlabel("s")
        ax.set_ylabel("ms")
        ax.set_title(f"event-loop lag, typing on a {data['line_chars']:,}-character line")
        ax.legend()

    name = "long-line-smoke" if args.smoke else "long-line"
    json_path, png = save_results(data, out, name, draw, ncols=1, nrows=1)
    print(f"saved {json_path} and {png}")
    p99 = data["typing"]["p99_ms"]
    return 0 if p99 is not None and p99 < args.goal_ms and data["completions_answered"] else 1


if __name__ == "__main__":
    sys.exit(main())
