#!/usr/bin/python3
"""docs/grafana-dashboard.json is importable and charts exactly the metrics blitzd exports.

Usage:
  dashboard_test.py [--source-dir DIR] [--dashboard FILE] [--verbose]

Checks, each printed as PASS or FAIL (PASS lines with --verbose), ending with
"N passed, N failed":
  import      schemaVersion 39; an "__inputs" entry DS_PROMETHEUS of plugin "prometheus", so
              Grafana's import asks for the data source; "__requires" names grafana and that
              plugin; a uid and a title;
  panels      every panel (rows included) has a unique integer id and a gridPos of integers
              inside the 24-column grid; panels do not overlap; every panel and every target
              has the datasource {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}; every
              non-row panel has targets with an expr and distinct refIds;
  variables   the template variables instance, route and upstream exist, use the input data
              source, and instance is label_values(blitz_requests_total, instance);
  metrics     every PromQL expression (panel targets and variable queries) names only metrics
              documented in docs/observability.md (a histogram through its _bucket, _sum or
              _count series) or process_* ones, and calls only known PromQL functions; every
              histogram_quantile() reads a _bucket series and groups by le;
  coverage    every documented metric is charted by some panel (histograms through _bucket);
  promql      every expression parses: written, with Grafana's variables replaced by values,
              as recording rules for `promtool check rules` (skipped when promtool, from
              Debian's prometheus package, is not installed).

Exit status: 0 when every check passed, 1 otherwise.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The metric families docs/observability.md documents (its tables: | `name` | type | ...), which
# the ops tests hold equal to what GET /metrics exports.
def documented_metrics(source_dir):
    counters_and_gauges, histograms = set(), set()
    with open(os.path.join(source_dir, "docs", "observability.md"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\| `(blitz_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", line)
            if m:
                (histograms if m.group(2) == "histogram" else counters_and_gauges).add(m.group(1))
    return counters_and_gauges, histograms


COUNTERS_AND_GAUGES, HISTOGRAMS = documented_metrics(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
METRICS = COUNTERS_AND_GAUGES | HISTOGRAMS
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")

# PromQL functions and aggregations the dashboard may call (a typo is a broken panel).
FUNCTIONS = {
    "abs", "avg", "ceil", "clamp_max", "clamp_min", "count", "delta", "deriv", "floor",
    "histogram_quantile", "increase", "irate", "label_replace", "max", "max_over_time", "min",
    "min_over_time", "quantile", "rate", "round", "scalar", "sort", "sort_desc", "sum", "time",
    "topk", "bottomk", "vector",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "Inf", "NaN", "inf", "nan"}

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


class Checks:
    def __init__(self, verbose):
        self.verbose = verbose
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            if self.verbose:
                print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))
        return ok


def metric_names(expr):
    """The metric names an expression reads, and the functions it calls.

    Strips what is not a metric name: string literals (label values, regexes), label matcher
    blocks, range and subquery brackets, Grafana variables, grouping label lists and numbers;
    an identifier before '(' is a function, any other identifier a metric.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"(?<![\w.])\d+(?:ms|[smhdwy])\b", " ", text)  # `offset 5m`
    text = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", text)
    metrics, functions = set(), set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = m.group(0)
        if text[m.end():].lstrip().startswith("("):
            functions.add(name)
        elif name not in KEYWORDS:
            metrics.add(name)
    return metrics, functions


def documented_metric(name):
    """The documented metric `name` belongs to, or None; process_* names are their own."""
    if name in COUNTERS_AND_GAUGES:
        return name
    for suffix in HISTOGRAM_SERIES:
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    if name.startswith("process_"):
        return name
    return None


def all_panels(dashboard):
    """Every panel, rows and panels inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []):
            yield inner


def check_import(c, d):
    c.check(d.get("schemaVersion") == 39, "import: schemaVersion is 39",
            f"found {d.get('schemaVersion')!r}")
    inputs = d.get("__inputs", [])
    ds_inputs = [i for i in inputs if i.get("name") == "DS_PROMETHEUS"]
    c.check(len(ds_inputs) == 1 and ds_inputs[0].get("type") == "datasource"
            and ds_inputs[0].get("pluginId") == "prometheus",
            "import: __inputs declares DS_PROMETHEUS as a prometheus data source", repr(inputs))
    requires = {(r.get("type"), r.get("id")) for r in d.get("__requires", [])}
    c.check(("grafana", "grafana") in requires and ("datasource", "prometheus") in requires,
            "import: __requires names grafana and the prometheus data source", repr(requires))
    for plugin in sorted({p.get("type") for p in all_panels(d)} - {"row"}, key=repr):
        c.check(("panel", plugin) in requires, f"import: __requires names the {plugin} panel")
    c.check(bool(d.get("uid")) and bool(d.get("title")), "import: the dashboard has a uid and title")


def check_panels(c, d):
    panels = list(all_panels(d))
    c.check(len(panels) > 0, "panels: the dashboard has panels")
    ids = [p.get("id") for p in panels]
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=repr)
    c.check(all(isinstance(i, int) for i in ids) and not dup,
            "panels: every panel has a unique integer id", f"duplicates {dup}")
    boxes = []
    for p in panels:
        name = f"panel {p.get('id')} {p.get('title')!r}"
        g = p.get("gridPos")
        ok = (isinstance(g, dict) and all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h"))
              and g["w"] >= 1 and g["h"] >= 1 and g["x"] >= 0 and g["y"] >= 0
              and g["x"] + g["w"] <= 24)
        if c.check(ok, f"panels: {name} has a gridPos inside the 24-column grid", repr(g)):
            boxes.append((name, g))
        c.check(p.get("datasource") == DATASOURCE,
                f"panels: {name} uses the ${{DS_PROMETHEUS}} input", repr(p.get("datasource")))
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        c.check(len(targets) > 0 and all(isinstance(t.get("expr"), str) and t["expr"].strip()
                                         for t in targets),
                f"panels: {name} has targets with PromQL expressions")
        refs = [t.get("refId") for t in targets]
        c.check(len(set(refs)) == len(refs) and None not in refs,
                f"panels: {name} has distinct target refIds", repr(refs))
        c.check(all(t.get("datasource") == DATASOURCE for t in targets),
                f"panels: the targets of {name} use the ${{DS_PROMETHEUS}} input")
    overlaps = []
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1:]:
            if (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                    and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]):
                overlaps.append(f"{a} / {b}")
    c.check(not overlaps, "panels: no two panels overlap", "; ".join(overlaps))


def variable_query(v):
    q = v.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")


def check_variables(c, d):
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    for name in ("instance", "route", "upstream"):
        v = variables.get(name)
        if not c.check(v is not None, f"variables: ${name} exists"):
            continue
        c.check(v.get("type") == "query" and v.get("datasource") == DATASOURCE,
                f"variables: ${name} queries the ${{DS_PROMETHEUS}} input")
        c.check(variable_query(v).startswith("label_values("),
                f"variables: ${name} is a label_values() query", variable_query(v))
    if "instance" in variables:
        c.check(variable_query(variables["instance"]).replace(" ", "")
                == "label_values(blitz_requests_total,instance)",
                "variables: $instance is label_values(blitz_requests_total, instance)",
                variable_query(variables["instance"]))


def expressions(d):
    """(where, PromQL) for every panel target and every label_values() variable query."""
    for p in all_panels(d):
        for t in p.get("targets", []):
            yield f"panel {p.get('id')} {p.get('title')!r} target {t.get('refId')}", t.get("expr", "")
    for v in d.get("templating", {}).get("list", []):
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", variable_query(v))
        if m:
            yield f"variable ${v.get('name')}", m.group(1)


def check_metrics(c, d):
    charted = set()
    for where, expr in expressions(d):
        metrics, functions = metric_names(expr)
        unknown = sorted(m for m in metrics if documented_metric(m) is None)
        c.check(metrics and not unknown, f"metrics: {where} reads only documented metrics",
                f"unknown {unknown} in {expr}" if unknown else f"no metric in {expr}")
        bad = sorted(functions - FUNCTIONS)
        c.check(not bad, f"metrics: {where} calls known PromQL functions", f"{bad} in {expr}")
        if "histogram_quantile" in functions:
            c.check(re.search(r"_bucket\b", expr) and re.search(r"by\s*\([^)]*\ble\b", expr),
                    f"metrics: {where} takes quantiles of _bucket series grouped by le", expr)
        if where.startswith("panel"):
            charted |= metrics
    for m in sorted(COUNTERS_AND_GAUGES):
        c.check(m in charted, f"coverage: {m} is charted by some panel")
    # A histogram counts as charted through its buckets: _sum and _count alone give no quantile.
    for m in sorted(HISTOGRAMS):
        c.check(m + "_bucket" in charted, f"coverage: {m}_bucket is charted by some panel")
    c.check(any(m.startswith("process_") for m in charted),
            "coverage: process_* metrics are charted")


def check_promql(c, d):
    promtool = shutil.which("promtool")
    if promtool is None:
        print("SKIP promql: promtool is not installed")
        return
    rules = []
    for i, (where, expr) in enumerate(expressions(d)):
        expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    # JSON is YAML, so the rule file needs no YAML writer.
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    try:
        run = subprocess.run([promtool, "check", "rules", f.name], capture_output=True,
                             text=True, timeout=60)
    finally:
        os.unlink(f.name)
    c.check(run.returncode == 0, f"promql: all {len(rules)} expressions parse (promtool check rules)",
            run.stdout + run.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-dir", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    parser.add_argument("--dashboard")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    path = args.dashboard or os.path.join(args.source_dir, "docs", "grafana-dashboard.json")
    c = Checks(args.verbose)
    try:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        c.check(False, f"load: {path} is a JSON document", str(e))
        dashboard = None
    if isinstance(dashboard, dict):
        check_import(c, dashboard)
        check_panels(c, dashboard)
        check_variables(c, dashboard)
        check_metrics(c, dashboard)
        check_promql(c, dashboard)
    elif dashboard is not None:
        c.check(False, f"load: {path} holds a JSON object")
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
