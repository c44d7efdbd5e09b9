#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of tp-trace, one case per run (meson registers each as a test of the suite 'tools').

    test-tp-trace.py --tool BUILD/tools/tp-trace --data tools/testdata --version 0.3.0 CASE

Cases: version, help, summary, dropped, empty, array, svg, reader, crosscheck, large,
malformed, png, png-missing.
Exit status 0 passed, 1 failed, 77 skipped (meson's code for a skipped test).

The fixtures in testdata/ are small traces whose numbers were worked out by hand (nested.json:
see test_summary); the large trace is generated here (make_large_trace).
"""

import argparse
import gzip
import importlib.machinery
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

SKIP = 77
SVG = "{http://www.w3.org/2000/svg}"
MICRO = "\u00b5s"


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


class Ctx:
    def __init__(self, tool, data, version, tmp):
        self.tool, self.data, self.version, self.tmp = tool, data, version, tmp

    def run(self, *args, env=None, timeout=120):
        """Runs the tool under this interpreter (so that PATH may lack python3)."""
        e = dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
        if env:
            e.update(env)
        return subprocess.run(
            [sys.executable, self.tool, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=e,
            timeout=timeout,
            text=True,
            encoding="utf-8",
        )

    def fixture(self, name):
        return os.path.join(self.data, name)


def words(text):
    """Each line with its runs of blanks made one space, for matching table rows."""
    return [" ".join(line.split()) for line in text.splitlines()]


def expect_lines(out, lines):
    have = words(out)
    for line in lines:
        check(line in have, f"summary lacks the line {line!r}; it is:\n{out}")


def ok(r, what):
    check(r.returncode == 0, f"{what}: exit status {r.returncode}, stderr: {r.stderr.strip()}")
    check("Traceback" not in r.stderr, f"{what}: a Python traceback:\n{r.stderr}")


# ------------------------------------------------------------------------------------------------


def test_version(c):
    r = c.run("--version")
    ok(r, "--version")
    check(
        r.stdout.strip() == f"tp-trace {c.version}",
        f"--version says {r.stdout.strip()!r}, meson's project version is {c.version}",
    )


def test_help(c):
    r = c.run("--help")
    ok(r, "--help")
    for word in ("usage: tp-trace", "--svg", "--png", "--width", "Exit status"):
        check(word in r.stdout, f"--help does not mention {word!r}")


def test_summary(c):
    """nested.json, worked out by hand (times in µs, the trace runs 0 to 200):
    worker 0: outer [0,100) holds inner [20,50), inner [60,70) and a sleep [80,90) (waiting for a
      future); idle [120,200). busy = 100 - 10 = 90 (45.0%), idle = 10 + 80 = 90; woken once.
    worker 1: leaf frame [10,30) (stolen from worker 0), leaf task [30,40), idle [50,150), outer
      [150,180). busy = 60 (30.0%), idle = 100; one steal, woken once.
    self time: outer 50 + 30 = 80 (53.3% of 150), inner 40 (26.7%), leaf 30 (20.0%); inclusive
      outer 130; all workers: 150 of 400 = 37.5%."""
    r = c.run(c.fixture("nested.json"))
    ok(r, "summary")
    expect_lines(
        r.stdout,
        [
            "pool nested (version 0.3.0, CLOCK_MONOTONIC)",
            "workers 2",
            f"duration 200.000 {MICRO}",
            "dropped 0 events",
            "worker name tasks frames busy util idle steals wake-ups",
            f"0 nested-0 3 0 90.000 {MICRO} 45.0% 90.000 {MICRO} 0 1",
            f"1 nested-1 2 1 60.000 {MICRO} 30.0% 100.000 {MICRO} 1 1",
            f"all 5 1 150.000 {MICRO} 37.5% 190.000 {MICRO} 1 2",
            "function count total mean share inclusive",
            f"outer 2 80.000 {MICRO} 40.000 {MICRO} 53.3% 130.000 {MICRO}",
            f"inner 2 40.000 {MICRO} 20.000 {MICRO} 26.7% 40.000 {MICRO}",
            f"leaf 2 30.000 {MICRO} 15.000 {MICRO} 20.0% 30.000 {MICRO}",
            f"total 6 150.000 {MICRO} 25.000 {MICRO} 100.0% 200.000 {MICRO}",
        ],
    )
    check("WARNING" not in r.stdout, "a warning for a complete trace")


def test_dropped(c):
    """dropped.json: one worker, 1,234 dropped events, two tasks of an unnamed function (its
    address) and twelve functions, so that the table has an 'other' row; times in ms."""
    r = c.run(c.fixture("dropped.json"))
    ok(r, "dropped")
    lines = words(r.stdout)
    warn = [line for line in lines if line.startswith("dropped ")]
    check(warn and "1,234 events" in warn[0] and "WARNING" in warn[0], f"no clear warning: {warn}")
    expect_lines(
        r.stdout,
        [
            "duration 2.000 ms",
            "0 drop-0 14 0 1.400 ms 70.0% 0.000 µs 0 0",
            "0x55d1c0ffee10 2 500.000 µs 250.000 µs 35.7% 500.000 µs",
            f"other (3 functions) 3 60.000 {MICRO} 20.000 {MICRO} 4.3% 60.000 {MICRO}",
            "total 14 1.400 ms 100.000 µs 100.0% 1.400 ms",
        ],
    )
    r = c.run(c.fixture("dropped.json"), "--quiet", "--svg", os.path.join(c.tmp, "d.svg"))
    ok(r, "dropped --quiet")
    check(r.stdout == "", "--quiet printed a summary")
    check(
        "1,234" in r.stderr and "dropped" in r.stderr,
        f"--quiet hid the dropped events: {r.stderr!r}",
    )
    title = "".join(
        ET.parse(os.path.join(c.tmp, "d.svg"))
        .getroot()
        .find(f".//{SVG}text[@id='title']")
        .itertext()
    )
    check("1,234 dropped events" in title, f"the picture's title does not warn: {title!r}")


def test_empty(c):
    """A trace with no spans: zeros, no division by zero, a picture with empty lanes."""
    svg = os.path.join(c.tmp, "empty.svg")
    r = c.run(c.fixture("empty.json"), "--svg", svg)
    ok(r, "empty")
    expect_lines(
        r.stdout,
        [
            f"duration 0.000 {MICRO}",
            f"0 empty-0 0 0 0.000 {MICRO} 0.0% 0.000 {MICRO} 0 0",
            "(no task or frame spans)",
        ],
    )
    root = ET.parse(svg).getroot()
    check(
        len(root.findall(f".//{SVG}g[@class='lane']")) == 3,
        "empty.json (3 workers) is not drawn as 3 lanes",
    )


def test_array(c):
    """Chrome's other layout, a bare array of events without its closing bracket, gzip-compressed,
    without otherData: the trace starts at its first event (1000 µs)."""
    path = os.path.join(c.tmp, "array.json.gz")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(
            '[{"name":"a","cat":"task","ph":"X","ts":1000,"dur":50,"pid":7,"tid":0},\n'
            ' {"name":"b","cat":"task","ph":"X","ts":1010,"dur":100,"pid":7,"tid":1},\n'
            ' {"name":"c","ph":"i","ts":1020,"pid":7,"tid":1},\n'
        )
    r = c.run(path)
    ok(r, "array")
    expect_lines(
        r.stdout,
        [
            f"duration 110.000 {MICRO}",
            "events 3 (1 of other kinds ignored)",
            f"0 - 1 0 50.000 {MICRO} 45.5% 0.000 {MICRO} 0 0",
        ],
    )


def svg_root(c, fixture, *extra):
    svg = os.path.join(c.tmp, os.path.basename(fixture) + ".svg")
    r = c.run(c.fixture(fixture), "--quiet", "--svg", svg, *extra)
    ok(r, f"--svg of {fixture}")
    try:
        return ET.parse(svg).getroot(), svg
    except ET.ParseError as e:
        raise Failed(f"the SVG of {fixture} is not XML: {e}")


def text_of(el):
    return "".join(el.itertext())


def test_svg(c):
    root, _ = svg_root(c, "nested.json")
    check(root.tag == f"{SVG}svg" and root.get("width") == "1600", "not an SVG of width 1600")
    title = root.find(f"{SVG}text[@id='title']")
    check(title is not None, "no title")
    t = text_of(title)
    for part in ("nested", "2 workers", f"200.000 {MICRO}", "0 dropped events"):
        check(part in t, f"the title {t!r} lacks {part!r}")
    lanes = root.findall(f".//{SVG}g[@class='lane']")
    labels = [text_of(g.find(f"{SVG}text[@class='lane-label']")) for g in lanes]
    check(labels == ["nested-0", "nested-1"], f"lane labels {labels}")
    utils = [text_of(g.find(f"{SVG}text[@class='util']")) for g in lanes]
    check(utils == ["45.0%", "30.0%"], f"utilisation at the lanes' ends: {utils}")
    spans = [len(g.findall(f"{SVG}rect")) - 1 for g in lanes]  # less the lane's background
    check(spans == [5, 4], f"spans drawn per lane: {spans}, expected 5 and 4")
    legend = [
        text_of(g) for g in root.findall(f".//{SVG}g[@id='legend']/{SVG}g[@class='legend-item']")
    ]
    for item in ("outer 53.3%", "inner 26.7%", "leaf 20.0%", "idle (parked)"):
        check(item in legend, f"the legend {legend} lacks {item!r}")
    check(
        any(x.startswith("steal") for x in legend) and any(x.startswith("wake-up") for x in legend),
        f"the legend {legend} lacks the arrows",
    )
    arrows = root.findall(f".//{SVG}g[@id='flows']/{SVG}line")
    check(
        sorted(a.get("class") for a in arrows) == ["steal", "wake", "wake"],
        "not 1 steal and 2 wake arrows",
    )
    ticks = [text_of(t) for t in root.findall(f".//{SVG}g[@id='axis']/{SVG}text[@class='ax']")]
    check(ticks[:3] == ["0", f"20 {MICRO}", f"40 {MICRO}"], f"axis ticks {ticks}")
    # Each function its colour, in the legend and in the lanes.
    swatches = {}
    for g in root.findall(f".//{SVG}g[@class='legend-item']"):
        rect = g.find(f"{SVG}rect")
        if rect is not None:
            swatches[text_of(g).split()[0]] = rect.get("fill")
    fills = [swatches[name] for name in ("outer", "inner", "leaf")]
    check(
        len(set(fills)) == 3 and all(re.match("#[0-9a-f]{6}$", f) for f in fills),
        f"function colours {swatches}",
    )
    used = {r.get("fill") for g in lanes for r in g.findall(f"{SVG}rect")}
    check(set(fills) <= used, f"lanes not drawn in the legend's colours: {used}")
    root, _ = svg_root(c, "nested.json", "--width", "900")
    check(root.get("width") == "900", "--width 900 ignored")
    # The plain picture (for ImageMagick's own renderer): no pattern fill, no translucent grid.
    tool = load_tool(c.tool)
    trace = tool.read_trace(c.fixture("nested.json"))
    plain = tool.render_svg(tool.Analysis(trace), tool.Layout(trace, 1600), True, plain=True)
    check("url(#hatch)" not in plain and "opacity" not in plain, "the plain picture has hatching")
    ET.fromstring(plain.encode("utf-8"))


# A synthetic trace like a fork-join run's: per worker, parent tasks holding nested children
# (written before their parent, as a worker writes a span when it ends), now and then a stolen
# frame, a sleep followed by a wake-up from another worker, and steals.
FUNCS = [
    "fib_task",
    "mergesort_task",
    "sum_leaf",
    "scan_block",
    "matmul_tile",
    "nqueens_row",
    "uts_node",
    "strassen_part",
    "heat_stencil",
    "knapsack_item",
    "lu_block",
    "fft_butterfly",
    "cilksort_merge",
    "0x55d1c0ffee10",
]


def span(name, cat, ts, dur, tid):
    return (
        f'{{"name":"{name}","cat":"{cat}","ph":"X","ts":{ts:.3f},"dur":{dur:.3f},'
        f'"pid":1,"tid":{tid}}}'
    )


def flow(cat, flow_id, ts, victim_or_waker, thief_or_woken):
    """The two events of a steal or wake-up flow."""
    return (
        f'{{"name":"{cat}","cat":"{cat}","ph":"s","id":{flow_id},"ts":{ts:.3f},'
        f'"pid":1,"tid":{victim_or_waker}}}',
        f'{{"name":"{cat}","cat":"{cat}","ph":"f","bp":"e","id":{flow_id},"ts":{ts:.3f},'
        f'"pid":1,"tid":{thief_or_woken}}}',
    )


def metadata(what, tid, name):
    return f'{{"name":"{what}","ph":"M","pid":1,"tid":{tid},"args":{{"name":"{name}"}}}}'


def make_large_trace(path, events, workers=2, seed=1):
    """Writes about events events; returns the numbers of task and frame spans written."""
    rng = random.Random(seed)
    tasks = frames = 0
    flow_id = 0

    def function(rate):
        return FUNCS[min(int(rng.expovariate(rate)), len(FUNCS) - 1)]

    with open(path, "w", encoding="utf-8") as out:
        out.write('{"traceEvents":[\n ' + metadata("process_name", 0, "big"))
        for w in range(workers):
            out.write(",\n " + metadata("thread_name", w, f"big-{w}"))
        for w in range(workers):
            t, n = 0.0, 0
            other = (w + 1) % workers
            parts = []
            while n < events // workers:
                r = rng.random()
                if r < 0.01:  # a sleep, then a wake-up from another worker
                    d = rng.uniform(5, 60)
                    parts.append(span("idle", "park", t, d, w))
                    t += d
                    flow_id += 1
                    parts += flow("wake", flow_id, t, other, w)
                    n += 3
                elif r < 0.03:  # a steal: the thief runs the frame
                    flow_id += 1
                    parts += flow("steal", flow_id, t, other, w)
                    d = rng.uniform(0.5, 5)
                    parts.append(span(rng.choice(FUNCS[:4]), "frame", t, d, w))
                    t += d + 0.05
                    frames += 1
                    n += 3
                else:  # a task whose children ran inside it
                    start = t
                    t += 0.1
                    children = rng.randint(1, 4)
                    for _ in range(children):
                        d = rng.uniform(0.1, 2.0)
                        parts.append(span(function(0.5), "task", t, d, w))
                        t += d + 0.05
                    t += 0.1
                    parts.append(span(function(0.6), "task", start, t - start, w))
                    tasks += children + 1
                    n += children + 1
                    t += rng.uniform(0.02, 0.3)
                if len(parts) > 10000:
                    out.write(",\n " + ",\n ".join(parts))
                    parts = []
            if parts:
                out.write(",\n " + ",\n ".join(parts))
        out.write(
            '\n],\n"displayTimeUnit":"ns",\n"otherData":{"pool":"big","workers":%d,'
            '"dropped_events":0,"version":"0.3.0","clock":"CLOCK_MONOTONIC"}}\n' % workers
        )
    return tasks, frames


def test_large(c):
    events = int(os.environ.get("TP_TRACE_TEST_EVENTS", "500000"))
    path = os.path.join(c.tmp, "large.json")
    tasks, frames = make_large_trace(path, events)
    svg = os.path.join(c.tmp, "large.svg")
    began = time.monotonic()
    r = c.run(path, "--svg", svg, timeout=170)
    took = time.monotonic() - began
    ok(r, "large")
    size = os.path.getsize(svg)
    print(
        f"{events:,} events ({os.path.getsize(path) / 1e6:.1f} MB): summary and SVG "
        f"in {took:.1f} s, SVG {size / 1e3:.0f} kB"
    )
    check(size < 5_000_000, f"the SVG of {events:,} events is {size:,} bytes, not under 5 MB")
    check(
        size < 1_000_000,
        f"the SVG of {events:,} events is {size:,} bytes: the per-pixel columns are not merged",
    )
    expect_lines(r.stdout, ["workers 2"])
    all_row = [line for line in words(r.stdout) if line.startswith("all ")]
    check(
        all_row and all_row[0].split()[1:3] == [f"{tasks:,}", f"{frames:,}"],
        f"the totals row {all_row} does not count {tasks:,} tasks and {frames:,} frames",
    )
    root = ET.parse(svg).getroot()
    check(len(root.findall(f".//{SVG}g[@class='lane']")) == 2, "not 2 lanes")
    notes = " ".join(text_of(t) for t in root.findall(f".//{SVG}text[@class='note']"))
    check("drawn as one column per pixel" in notes, f"no note that lanes were binned: {notes!r}")
    check("too many to draw as arrows" in notes, f"no note that arrows were left out: {notes!r}")
    legend = [text_of(g) for g in root.findall(f".//{SVG}g[@class='legend-item']")]
    check(any(x.startswith("other (") for x in legend), f"no 'other' in the legend {legend}")


def load_tool(path):
    """tp-trace as a module (its file name has no .py)."""
    sys.dont_write_bytecode = True  # no __pycache__ beside it
    loader = importlib.machinery.SourceFileLoader("tp_trace", path)
    spec = importlib.util.spec_from_loader("tp_trace", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_reader(c):
    """The streaming reader gives the same trace whatever the size of the pieces it reads, even
    one character at a time: here with nested.json, and with a trace laid out differently (pretty-
    printed, otherData and other members before traceEvents, numbers at the top level)."""
    tool = load_tool(c.tool)
    pretty = os.path.join(c.tmp, "pretty.json")
    with open(c.fixture("nested.json"), encoding="utf-8") as f:
        doc = json.load(f)
    with open(pretty, "w", encoding="utf-8") as f:
        json.dump(
            {
                "otherData": doc["otherData"],
                "n": 12.5,
                "list": [1, [2, {"x": "]"}]],
                "s": "a,]}",
                "traceEvents": doc["traceEvents"],
                "z": -3,
            },
            f,
            indent=2,
        )

    def summary(path):
        return tool.summary(tool.Analysis(tool.read_trace(path)))

    default = tool._CHUNK
    for path in (c.fixture("nested.json"), pretty, c.fixture("dropped.json")):
        tool._CHUNK = default
        want = summary(path)
        for chunk in (1, 2, 3, 7, 64, 1000):
            tool._CHUNK = chunk
            got = summary(path)
            check(
                got == want,
                f"{os.path.basename(path)} read {chunk} characters at a time gives:\n{got}\n"
                f"instead of:\n{want}",
            )
        for name in MALFORMED:
            for chunk in (1, 5, default):
                tool._CHUNK = chunk
                try:
                    tool.read_trace(c.fixture(name))
                except tool.InputError:
                    continue
                raise Failed(f"{name} read {chunk} characters at a time is taken for a trace")
    tool._CHUNK = default
    check(
        summary(pretty).split("\n", 1)[1] == summary(c.fixture("nested.json")).split("\n", 1)[1],
        "the summaries of pretty.json and nested.json differ",
    )


def innermost_by_brute_force(trace):
    """Per lane: (busy, idle) and per function self time, worked out apart from tp-trace's sweep:
    cut each lane at every span's start and end; each piece belongs to the innermost span over
    it (the latest to start; of those, the first to end; of equal spans, the last in the file)."""
    busy, idle, self_time = {}, {}, {}
    for tid, lane in trace.lanes.items():
        spans = list(zip(lane.start, lane.end, lane.func))
        cuts = sorted({x for s, e, _ in spans for x in (s, e)})
        busy[tid] = idle[tid] = 0.0
        for a, b in zip(cuts, cuts[1:]):
            mid = (a + b) / 2
            over = [(s, -e, i) for i, (s, e, _) in enumerate(spans) if s <= mid < e]
            if not over:
                continue
            f = spans[max(over)[2]][2]
            if f < 0:
                idle[tid] += b - a
            else:
                busy[tid] += b - a
                self_time[f] = self_time.get(f, 0.0) + b - a
    return busy, idle, self_time


def test_crosscheck(c):
    """tp-trace's numbers against innermost_by_brute_force, on a trace the runtime wrote (fib(27)
    on 2 workers: frames nested in frames, sleeps) and on generated traces."""
    tool = load_tool(c.tool)
    paths = [c.fixture("runtime-fib.json"), c.fixture("nested.json")]
    for i, events in enumerate((600, 3000)):
        paths.append(os.path.join(c.tmp, f"gen{i}.json"))
        make_large_trace(paths[-1], events, workers=3, seed=i)
    # Spans that overlap in every way (not only nested), with equal starts and ends, on 2 lanes.
    rng = random.Random(3)
    spans = []
    for _ in range(400):
        ts = rng.choice([rng.uniform(0, 1000), float(rng.randrange(0, 1000, 50))])
        dur = rng.choice([rng.uniform(0, 80), float(rng.randrange(0, 100, 25))])
        cat = rng.choice(["task", "task", "frame", "park"])
        spans.append(span(rng.choice(FUNCS[:5]), cat, ts, dur, rng.randrange(2)))
    paths.append(os.path.join(c.tmp, "overlaps.json"))
    with open(paths[-1], "w", encoding="utf-8") as f:
        f.write('{"traceEvents":[' + ",".join(spans) + '],"otherData":{"pool":"o","workers":2}}')
    for path in paths:
        trace = tool.read_trace(path)
        an = tool.Analysis(trace)
        busy, idle, self_time = innermost_by_brute_force(trace)
        name = os.path.basename(path)
        for tid, st in an.lanes.items():
            want = (busy.get(tid, 0.0), idle.get(tid, 0.0))
            check(
                abs(st.busy - want[0]) < 1e-6 and abs(st.idle - want[1]) < 1e-6,
                f"{name}, worker {tid}: busy and idle {st.busy}, {st.idle}; brute force {want}",
            )
        for f, want in self_time.items():
            check(
                abs(an.self_time[f] - want) < 1e-6,
                f"{name}: {trace.functions[f]}'s self time {an.self_time[f]}, brute force {want}",
            )
        check(abs(an.busy + an.idle) <= trace.duration * len(an.tids) + 1e-6, f"{name}: over 100%")
    r = c.run(c.fixture("runtime-fib.json"))
    ok(r, "runtime-fib.json")


MALFORMED = {
    "not-json.json": "not valid JSON",
    "truncated.json": "not valid JSON",
    "not-a-trace.json": "not a trace",
    "events-not-list.json": "not a trace",
    "bad-ts.json": '"ts"',
    "huge-ts.json": "out of range",
    "bad-event.json": "not an object",
    "garbage-after.json": "not valid JSON",
    "empty-file.json": "empty file",
    "number.json": "not a trace",
    "binary.json": "not UTF-8",
}


def test_malformed(c):
    cases = [(c.fixture(name), want) for name, want in MALFORMED.items()]
    cases += [(os.path.join(c.tmp, "no-such-file.json"), "No such file"), (c.tmp, "a directory")]
    for path, want in cases:
        r = c.run(path, "--svg", os.path.join(c.tmp, "bad.svg"))
        lines = r.stderr.splitlines()
        check(r.returncode == 2, f"{path}: exit status {r.returncode}, not 2 (stderr {r.stderr!r})")
        check(
            len(lines) == 1 and lines[0].startswith("tp-trace: "),
            f"{path}: not a one-line error: {r.stderr!r}",
        )
        check(want in lines[0], f"{path}: the error {lines[0]!r} does not say {want!r}")
    check(not os.path.exists(os.path.join(c.tmp, "bad.svg")), "a picture of bad input was written")
    # Mutations of a good trace: each is read as a trace or refused with InputError, never a crash
    # of the reader, the analysis or the drawing.
    tool = load_tool(c.tool)
    with open(c.fixture("nested.json"), encoding="utf-8") as f:
        good = f.read()
    rng = random.Random(7)
    pieces = ['"', "{", "}", "[", "]", ",", ":", "-", "1e999", "NaN", "null", "true", '"x"', "[1]"]
    pieces += ["{}", "\\", "0", ""]
    values = [None, -1, 0, 1e308, -1e308, 2**70, "x", "", [], {}, True, 12.5]
    values += [float("nan"), float("inf")]
    path = os.path.join(c.tmp, "mutant.json")
    read = refused = 0
    keys = ["ts", "dur", "tid", "pid", "name", "cat", "ph", "id", "args"]
    for n in range(600):
        if n % 2:  # text: characters replaced
            text = good
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(text))
                j = min(len(text), i + rng.randint(0, 8))
                text = text[:i] + rng.choice(pieces) + text[j:]
        else:  # structure: fields set to values of other types, or removed
            mutant = json.loads(good)
            for _ in range(rng.randint(1, 3)):
                target = rng.choice(mutant["traceEvents"] + [mutant["otherData"]] * 2)
                key = rng.choice(keys + list(mutant["otherData"]))
                if rng.random() < 0.2:
                    target.pop(key, None)
                else:
                    target[key] = rng.choice(values)
            text = json.dumps(mutant)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            trace = tool.read_trace(path)
        except tool.InputError:
            refused += 1
            continue
        read += 1
        lay = tool.Layout(trace, 1200)
        for ncols in (None, lay.plot_w):
            an = tool.Analysis(trace, ncols)
            tool.summary(an)
            ET.fromstring(tool.render_svg(an, lay, ncols is None).encode("utf-8"))
    print(f"mutations: {read} read as traces, {refused} refused")
    check(read > 100 and refused > 100, "the mutations hardly test anything")
    for args in (
        ["--width", "10", c.fixture("nested.json")],
        ["--bogus", c.fixture("nested.json")],
        [],
    ):
        r = c.run(*args)
        check(
            r.returncode == 2 and "Traceback" not in r.stderr,
            f"tp-trace {' '.join(args)}: exit {r.returncode}",
        )


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    check(head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_png(c, converter):
    if converter == "none":
        print("no rsvg-convert (librsvg2-bin) nor convert (imagemagick): PNG test skipped")
        return SKIP
    if os.path.basename(converter) == "convert":
        r = subprocess.run([converter, "-version"], capture_output=True)
        if not r.stdout.startswith(b"Version: ImageMagick"):
            print(f"{converter} is not ImageMagick's convert: PNG test skipped")
            return SKIP
    for width in (1600, 900):
        png = os.path.join(c.tmp, f"nested-{width}.png")
        r = c.run(c.fixture("nested.json"), "--quiet", "--png", png, "--width", str(width))
        ok(r, "--png")
        w, h = png_size(png)
        check(w == width and 100 < h < 1000, f"--width {width} gave a {w}x{h} PNG")
    return 0


def test_png_missing(c):
    """No converter on PATH: exit 3, naming the package to install."""
    empty = os.path.join(c.tmp, "empty-path")
    os.mkdir(empty)
    r = c.run(
        c.fixture("nested.json"),
        "--quiet",
        "--png",
        os.path.join(c.tmp, "x.png"),
        env={"PATH": empty},
    )
    check(r.returncode == 3, f"exit status {r.returncode}, not 3")
    check("librsvg2-bin" in r.stderr and len(r.stderr.splitlines()) == 1, f"message {r.stderr!r}")


CASES = {
    "version": test_version,
    "help": test_help,
    "summary": test_summary,
    "dropped": test_dropped,
    "empty": test_empty,
    "array": test_array,
    "svg": test_svg,
    "reader": test_reader,
    "crosscheck": test_crosscheck,
    "large": test_large,
    "malformed": test_malformed,
    "png-missing": test_png_missing,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tool", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--converter", default="none", help="png: the converter meson found, or none")
    p.add_argument("case", choices=sorted(list(CASES) + ["png"]))
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="test-tp-trace-") as tmp:
        c = Ctx(a.tool, a.data, a.version, tmp)
        try:
            rc = test_png(c, a.converter) if a.case == "png" else CASES[a.case](c)
        except Failed as e:
            print(f"FAIL {a.case}: {e}")
            return 1
        except subprocess.TimeoutExpired as e:
            print(f"FAIL {a.case}: tp-trace ran longer than {e.timeout} s")
            return 1
    if rc == SKIP:
        return SKIP
    print(f"ok {a.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
