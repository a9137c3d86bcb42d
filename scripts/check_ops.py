#!/usr/bin/env python3
"""Checks the ops files: the Grafana dashboard and the Prometheus scrape configuration.

    python3 scripts/check_ops.py                 # checks ops/grafana/seckill-dashboard.json and ops/prometheus/prometheus.yml
    python3 scripts/check_ops.py --dashboard D.json --prometheus P.yml
    python3 scripts/check_ops.py --self-test     # the real files pass, the broken fixture and the
                                                 # built-in bad cases fail (ends "self-test: N passed, M failed")

Python 3 standard library only (no PyYAML: prometheus.yml is read by a small parser of the YAML
subset Prometheus configs use; it says so when it meets anything else).

The Grafana dashboard must be valid JSON with a title, a uid, and panels each with an id (unique),
a type, a title and a gridPos {h, w, x, y} inside the 24-column grid, no two overlapping; every
panel that queries has targets each with an expr and a refId (unique in the panel); Prometheus
data-source references name a data-source template variable (${DS_PROMETHEUS}); and each PromQL
expression uses only functions PromQL has and metric names from METRICS below, the names the
project exposes (a histogram only through its _bucket, _sum or _count series).

prometheus.yml must have scrape_configs, each job with a unique job_name and targets (static
targets "host:port", or DNS service discovery with names and a port), and the jobs of the stack
(REQUIRED_JOBS) on their ports.

Exit status 0 when everything holds; 1 with one line per problem otherwise; 2 on a usage error.
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DASHBOARD = os.path.join(ROOT, "ops", "grafana", "seckill-dashboard.json")
DEFAULT_PROMETHEUS = os.path.join(ROOT, "ops", "prometheus", "prometheus.yml")
BAD_FIXTURE = os.path.join(ROOT, "scripts", "check_ops_test_fixtures", "bad-dashboard.json")

# ---------------------------------------------------------------------------------------------
# What the project exposes (Prometheus names, counters with their _total suffix).

METRICS = {
    # order-api (services/src/api/state.rs; the last two may be added later)
    "order_api_responses_total",  # {route, status}
    "order_api_admission_refused_total",  # {reason}
    "order_api_rate_limited_total",  # {limit}
    # order-worker (services/src/worker/metrics.rs, services/src/orders/handler.rs)
    "order_worker_events_total",
    "order_worker_confirmed_total",
    "order_worker_rejected_total",
    "order_worker_already_applied_total",
    "order_worker_dead_lettered_total",
    "order_worker_db_retries_total",
    # inference-worker (services/src/inference/handler.rs)
    "inference_worker_done_total",
    "inference_worker_failed_total",
    # broker (broker/src/metrics.rs)
    "broker_group_lag",  # {group, topic, partition}
    "broker_group_members",  # {group}
    "broker_messages_in_total",  # {topic}
    "broker_connections",
    "broker_log_end_offset",  # {topic, partition}
    "broker_high_watermark",  # {topic, partition}
}
# Histograms: usable as <name>_bucket, <name>_sum and <name>_count.
HISTOGRAMS = {
    "order_api_enqueue_seconds",
    "broker_request_duration_seconds",  # {api}
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Series Prometheus itself adds for every scrape target.
PROMETHEUS_SERIES = {"up"}

# The jobs of docker-compose.yml's stack and the port each one's /metrics listens on.
REQUIRED_JOBS = {"order-api": 8080, "order-worker": 9101, "inference-worker": 9102, "broker": 9644}

GRID_COLUMNS = 24
# Panel types that do not query a data source (no targets needed).
NO_QUERY_PANELS = {"row", "text", "news", "dashlist", "alertlist", "annolist", "welcome", "gettingstarted"}

PROMQL_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}
PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
    "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "days_in_month",
    "day_of_month", "day_of_week", "day_of_year", "deg", "delta", "deriv", "double_exponential_smoothing",
    "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear", "present_over_time",
    "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort",
    "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "start", "end", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
}
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "atan2", "inf", "nan",
}


# ---------------------------------------------------------------------------------------------
# PromQL: the metric names an expression uses.

class PromQLError(ValueError):
    pass


def _strip_strings(expr):
    """Replaces string literals by "" (and returns the literals), checking they are closed."""
    out, strings, i, n = [], [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j, buf = i + 1, []
            while j < n and expr[j] != c:
                if expr[j] == "\\" and c != "`" and j + 1 < n:
                    buf.append(expr[j:j + 2])
                    j += 2
                    continue
                buf.append(expr[j])
                j += 1
            if j >= n:
                raise PromQLError("unterminated string starting at offset %d" % i)
            strings.append("".join(buf))
            out.append('""')
            i = j + 1
        elif c == "#":  # a comment runs to the end of the line
            while i < n and expr[i] != "\n":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out), strings


def promql_metric_names(expr):
    """The metric names `expr` selects, in order of appearance (raises PromQLError when the
    expression is malformed in a way this reader sees: unclosed strings or brackets, an unknown
    function)."""
    if not isinstance(expr, str) or not expr.strip():
        raise PromQLError("empty expression")
    names = []
    # {__name__="x"} selects metric x.
    for m in re.finditer(r'__name__\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"', expr):
        if m.group(1) == "=":
            names.append(m.group(2))
    # Grafana's template variables and macros: $__rate_interval, ${var}, ${var:fmt}, $var, [[var]].
    s = re.sub(r"\$\{[^}]*\}|\[\[[^\]]*\]\]|\$[A-Za-z_]\w*", " 1 ", expr)
    s, _ = _strip_strings(s)
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    for i, c in enumerate(s):
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if not stack or stack.pop() != c:
                raise PromQLError("unbalanced %r" % c)
    if stack:
        raise PromQLError("unclosed %r" % {")": "(", "]": "[", "}": "{"}[stack[-1]])
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\[\]]*\]", " ", s)  # ranges and subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r" \1 ", s)
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        lower = word.lower()
        if call:
            if word in PROMQL_FUNCTIONS or word in PROMQL_AGGREGATIONS or lower in PROMQL_KEYWORDS:
                continue
            raise PromQLError("unknown function %r" % word)
        if word in PROMQL_AGGREGATIONS or lower in PROMQL_KEYWORDS:
            continue
        names.append(word)
    return names


def metric_name_problem(name):
    """None when `name` is one the project exposes, else why not."""
    if name in METRICS or name in PROMETHEUS_SERIES:
        return None
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return None
    if name in HISTOGRAMS:
        return "metric %r is a histogram: use %s_bucket, %s_sum or %s_count" % (name, name, name, name)
    return "metric %r is not one the project exposes (allow-list in scripts/check_ops.py)" % name


# ---------------------------------------------------------------------------------------------
# Grafana dashboard

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _panel_label(p):
    pid = p.get("id") if isinstance(p, dict) else None
    title = p.get("title") if isinstance(p, dict) else None
    return "panel %s%s" % (pid if pid is not None else "?", " (%r)" % title if isinstance(title, str) and title else "")


def _datasource_var(ref):
    """'DS_PROMETHEUS' for '${DS_PROMETHEUS}' / '$DS_PROMETHEUS' / '[[DS_PROMETHEUS]]', else None."""
    if not isinstance(ref, str):
        return None
    m = re.fullmatch(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]", ref.strip())
    return next(g for g in m.groups() if g) if m else None


def check_dashboard_data(d, errors, stats=None):
    """Appends the problems of dashboard `d` (already parsed) to `errors`."""
    if not isinstance(d, dict):
        errors.append("the dashboard is not a JSON object")
        return
    if not isinstance(d.get("title"), str) or not d["title"].strip():
        errors.append("dashboard: no title")
    uid = d.get("uid")
    if not isinstance(uid, str) or not uid:
        errors.append("dashboard: no uid")
    elif not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        errors.append("dashboard: uid %r must be 1..40 characters of letters, digits, '-' and '_'" % uid)
    if "schemaVersion" in d and not _is_int(d["schemaVersion"]):
        errors.append("dashboard: schemaVersion must be an integer")

    # Data-source template variables.
    ds_vars = {}
    templating = d.get("templating", {})
    tlist = templating.get("list", []) if isinstance(templating, dict) else None
    if not isinstance(tlist, list):
        errors.append("dashboard: templating.list must be a list")
        tlist = []
    for v in tlist:
        if isinstance(v, dict) and v.get("type") == "datasource" and isinstance(v.get("name"), str):
            ds_vars[v["name"]] = v.get("query")
    if "prometheus" not in ds_vars.values():
        errors.append("dashboard: no data-source template variable of type prometheus "
                      "(templating.list: {\"type\": \"datasource\", \"query\": \"prometheus\", \"name\": \"DS_PROMETHEUS\"})")

    def check_ds_ref(where, ref):
        if ref is None:
            return
        if isinstance(ref, dict):
            uid_ = ref.get("uid")
            if ref.get("type") not in (None, "prometheus") and not _datasource_var(uid_):
                return  # another kind of data source, named directly (e.g. the built-in "-- Grafana --")
            if uid_ is None:
                return
            name = _datasource_var(uid_)
            if name is None:
                errors.append("%s: data source uid %r is fixed; use the template variable ${DS_PROMETHEUS}" % (where, uid_))
            elif name not in ds_vars:
                errors.append("%s: data source ${%s} is not a data-source template variable of the dashboard" % (where, name))
        elif isinstance(ref, str):
            name = _datasource_var(ref)
            if name is not None and name not in ds_vars:
                errors.append("%s: data source ${%s} is not a data-source template variable of the dashboard" % (where, name))
        else:
            errors.append("%s: datasource must be an object {type, uid}" % where)

    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        errors.append("dashboard: no panels")
        return

    seen_ids = {}
    n_exprs = [0]

    def check_panel(p, where):
        if not isinstance(p, dict):
            errors.append("%s: a panel is not an object" % where)
            return None
        label = _panel_label(p)
        pid = p.get("id")
        if not _is_int(pid):
            errors.append("%s: %s has no integer id" % (where, label))
        elif pid in seen_ids:
            errors.append("%s: %s: id %d is also the id of %s" % (where, label, pid, seen_ids[pid]))
        else:
            seen_ids[pid] = label
        ptype = p.get("type")
        if not isinstance(ptype, str) or not ptype:
            errors.append("%s: %s has no type" % (where, label))
        if not isinstance(p.get("title"), str) or not p["title"].strip():
            errors.append("%s: %s has no title" % (where, label))
        rect = None
        g = p.get("gridPos")
        if not isinstance(g, dict):
            errors.append("%s: %s has no gridPos" % (where, label))
        else:
            missing = [k for k in ("h", "w", "x", "y") if not _is_int(g.get(k))]
            if missing:
                errors.append("%s: %s: gridPos lacks integer %s" % (where, label, ", ".join(missing)))
            else:
                h, w, x, y = g["h"], g["w"], g["x"], g["y"]
                if h < 1 or w < 1 or x < 0 or y < 0 or x + w > GRID_COLUMNS:
                    errors.append("%s: %s: gridPos %s is outside the %d-column grid" % (where, label, json.dumps(g, sort_keys=True), GRID_COLUMNS))
                else:
                    rect = (x, y, w, h, label)
        check_ds_ref("%s: %s" % (where, label), p.get("datasource"))

        targets = p.get("targets")
        if ptype in NO_QUERY_PANELS:
            pass
        elif not isinstance(targets, list) or not targets:
            errors.append("%s: %s has no targets" % (where, label))
        if isinstance(targets, list):
            ref_ids = set()
            for i, t in enumerate(targets):
                tw = "%s: %s target %d" % (where, label, i)
                if not isinstance(t, dict):
                    errors.append("%s is not an object" % tw)
                    continue
                ref = t.get("refId")
                if not isinstance(ref, str) or not ref:
                    errors.append("%s has no refId" % tw)
                elif ref in ref_ids:
                    errors.append("%s: refId %r used twice in the panel" % (tw, ref))
                else:
                    ref_ids.add(ref)
                    tw = "%s: %s target %s" % (where, label, ref)
                check_ds_ref(tw, t.get("datasource"))
                expr = t.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    errors.append("%s has no expr" % tw)
                    continue
                n_exprs[0] += 1
                try:
                    names = promql_metric_names(expr)
                except PromQLError as e:
                    errors.append("%s: PromQL %r: %s" % (tw, expr, e))
                    continue
                if not names:
                    errors.append("%s: PromQL %r selects no metric" % (tw, expr))
                for name in names:
                    problem = metric_name_problem(name)
                    if problem:
                        errors.append("%s: %s" % (tw, problem))
        return rect

    def check_level(plist, where):
        rects = []
        for p in plist:
            r = check_panel(p, where)
            if r:
                rects.append(r)
            if isinstance(p, dict) and p.get("type") == "row":
                nested = p.get("panels", [])
                if not isinstance(nested, list):
                    errors.append("%s: %s: panels must be a list" % (where, _panel_label(p)))
                elif nested:
                    # A collapsed row keeps its panels inside, laid out as they are when expanded.
                    check_level(nested, "%s > %s" % (where, _panel_label(p)))
        for i in range(len(rects)):
            x1, y1, w1, h1, l1 = rects[i]
            for j in range(i + 1, len(rects)):
                x2, y2, w2, h2, l2 = rects[j]
                if x1 < x2 + w2 and x2 < x1 + w1 and y1 < y2 + h2 and y2 < y1 + h1:
                    errors.append("%s: %s and %s overlap (gridPos x=%d y=%d w=%d h=%d and x=%d y=%d w=%d h=%d)"
                                  % (where, l1, l2, x1, y1, w1, h1, x2, y2, w2, h2))

    check_level(panels, "panels")
    if stats is not None:
        stats["panels"] = len(seen_ids)
        stats["exprs"] = n_exprs[0]


def check_dashboard_text(text, errors, stats=None):
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        errors.append("not valid JSON: %s (line %d, column %d)" % (e.msg, e.lineno, e.colno))
        return
    check_dashboard_data(d, errors, stats)


# ---------------------------------------------------------------------------------------------
# A reader for the YAML subset of Prometheus configs: block mappings and sequences, flow
# [sequences] and {mappings} on one line, plain and quoted scalars, comments.

class YamlError(ValueError):
    pass


def _strip_comment(line):
    quote, i = None, 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1  # the escaped character
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
        i += 1
    return line.rstrip()


def _scalar(text, lineno):
    t = text.strip()
    if not t:
        return None
    if t[0] in "&*!|>%@`":
        raise YamlError("line %d: %r: anchors, aliases, tags and block scalars are not supported by this checker" % (lineno, t))
    if t[0] == '"':
        if len(t) < 2 or t[-1] != '"':
            raise YamlError("line %d: unterminated string %s" % (lineno, t))
        try:
            return json.loads(t)
        except ValueError:
            raise YamlError("line %d: bad double-quoted string %s" % (lineno, t))
    if t[0] == "'":
        if len(t) < 2 or t[-1] != "'":
            raise YamlError("line %d: unterminated string %s" % (lineno, t))
        return t[1:-1].replace("''", "'")
    if t in ("null", "~", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    if re.fullmatch(r"[-+]?([0-9]*\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?", t):
        return float(t)
    return t


def _flow(text, lineno):
    """Parses one flow collection or scalar that fills `text`."""
    pos = [0]

    def ws():
        while pos[0] < len(text) and text[pos[0]] in " \t":
            pos[0] += 1

    def value(stop):
        ws()
        if pos[0] >= len(text):
            raise YamlError("line %d: unexpected end of %r" % (lineno, text))
        c = text[pos[0]]
        if c == "[":
            pos[0] += 1
            items = []
            ws()
            if pos[0] < len(text) and text[pos[0]] == "]":
                pos[0] += 1
                return items
            while True:
                items.append(value(",]"))
                ws()
                if pos[0] >= len(text):
                    raise YamlError("line %d: unclosed [ in %r (flow collections must fit on one line here)" % (lineno, text))
                if text[pos[0]] == ",":
                    pos[0] += 1
                    ws()
                    if pos[0] < len(text) and text[pos[0]] == "]":
                        pos[0] += 1
                        return items
                    continue
                pos[0] += 1  # "]"
                return items
        if c == "{":
            pos[0] += 1
            m = {}
            ws()
            if pos[0] < len(text) and text[pos[0]] == "}":
                pos[0] += 1
                return m
            while True:
                ws()
                k = value_key()
                if k in m:
                    raise YamlError("line %d: key %r twice" % (lineno, k))
                m[k] = value(",}")
                ws()
                if pos[0] >= len(text):
                    raise YamlError("line %d: unclosed { in %r (flow collections must fit on one line here)" % (lineno, text))
                if text[pos[0]] == ",":
                    pos[0] += 1
                    continue
                pos[0] += 1  # "}"
                return m
        if c in "\"'":
            j = pos[0] + 1
            while j < len(text):
                if text[j] == "\\" and c == '"':
                    j += 2
                    continue
                if text[j] == c:
                    if c == "'" and j + 1 < len(text) and text[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            if j >= len(text):
                raise YamlError("line %d: unterminated string in %r" % (lineno, text))
            s = _scalar(text[pos[0]:j + 1], lineno)
            pos[0] = j + 1
            return s
        j = pos[0]
        while j < len(text) and text[j] not in stop:
            j += 1
        s = _scalar(text[pos[0]:j], lineno)
        pos[0] = j
        return s

    def value_key():
        j = pos[0]
        if j < len(text) and text[j] in "\"'":
            k = value(":")
            ws()
        else:
            while j < len(text) and not (text[j] == ":" and (j + 1 == len(text) or text[j + 1] in " \t")):
                if text[j] in ",}":
                    raise YamlError("line %d: expected key: value in %r" % (lineno, text))
                j += 1
            k = _scalar(text[pos[0]:j], lineno)
            pos[0] = j
        if pos[0] >= len(text) or text[pos[0]] != ":":
            raise YamlError("line %d: expected ':' in %r" % (lineno, text))
        pos[0] += 1
        return k

    v = value("")
    ws()
    if pos[0] != len(text):
        raise YamlError("line %d: unexpected %r after the value" % (lineno, text[pos[0]:]))
    return v


def _split_key(content, lineno):
    """('key', 'rest') for 'key: rest' / 'key:', else None."""
    if content[0] in "\"'":
        q = content[0]
        j = content.find(q, 1)
        if j < 0:
            raise YamlError("line %d: unterminated key" % lineno)
        after = content[j + 1:]
        if after.startswith(":") and (len(after) == 1 or after[1] in " \t"):
            return _scalar(content[:j + 1], lineno), after[1:].strip()
        return None
    m = re.match(r"([^:#\[\]{},]+?):(\s+|$)(.*)$", content)
    if not m:
        return None
    return m.group(1).strip(), m.group(3).strip()


def parse_yaml_subset(text):
    lines = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlError("line %d: tab in indentation" % lineno)
        s = _strip_comment(raw)
        if not s.strip():
            continue
        if s.strip() in ("---", "..."):
            if lines:
                raise YamlError("line %d: more than one YAML document" % lineno)
            continue
        lines.append([len(s) - len(s.lstrip(" ")), s.strip(), lineno])
    if not lines:
        return None

    def block(i, indent):
        if lines[i][1] == "-" or lines[i][1].startswith("- "):
            return seq(i, indent)
        if _split_key(lines[i][1], lines[i][2]) is not None:
            return mapping(i, indent)
        # a lone scalar or flow collection
        node = _flow(lines[i][1], lines[i][2])
        return node, i + 1

    def seq(i, indent):
        items = []
        while i < len(lines) and lines[i][0] == indent and (lines[i][1] == "-" or lines[i][1].startswith("- ")):
            content, lineno = lines[i][1], lines[i][2]
            rest = content[1:].lstrip(" ")
            if not rest:
                if i + 1 < len(lines) and lines[i + 1][0] > indent:
                    node, i = block(i + 1, lines[i + 1][0])
                else:
                    node, i = None, i + 1
            else:
                # "- key: v" continues on the next lines at the column of "key".
                lines[i] = [indent + len(content) - len(rest), rest, lineno]
                node, i = block(i, lines[i][0])
            items.append(node)
        if i < len(lines) and lines[i][0] > indent:
            raise YamlError("line %d: bad indentation" % lines[i][2])
        return items, i

    def mapping(i, indent):
        m = {}
        while i < len(lines) and lines[i][0] == indent:
            content, lineno = lines[i][1], lines[i][2]
            kv = _split_key(content, lineno)
            if kv is None:
                raise YamlError("line %d: expected 'key: value', got %r" % (lineno, content))
            key, rest = kv
            if key in m:
                raise YamlError("line %d: key %r twice in the same mapping" % (lineno, key))
            i += 1
            if rest:
                m[key] = _flow(rest, lineno)
            elif i < len(lines) and lines[i][0] > indent:
                m[key], i = block(i, lines[i][0])
            elif i < len(lines) and lines[i][0] == indent and (lines[i][1] == "-" or lines[i][1].startswith("- ")):
                m[key], i = seq(i, indent)
            else:
                m[key] = None
        if i < len(lines) and lines[i][0] > indent:
            raise YamlError("line %d: bad indentation" % lines[i][2])
        return m, i

    node, i = block(0, lines[0][0])
    if i != len(lines):
        raise YamlError("line %d: unexpected content after the document (indentation?)" % lines[i][2])
    return node


# ---------------------------------------------------------------------------------------------
# prometheus.yml

_DURATION = re.compile(r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?")


def _duration_ms(v):
    if not isinstance(v, str) or not v:
        return None
    m = _DURATION.fullmatch(v)
    if not m or not any(m.groups()):
        return None
    mult = [365 * 86400000, 7 * 86400000, 86400000, 3600000, 60000, 1000, 1]
    return sum(int(g) * k for g, k in zip(m.groups(), mult) if g)


def check_prometheus_text(text, errors, stats=None):
    try:
        cfg = parse_yaml_subset(text)
    except YamlError as e:
        errors.append("cannot read: %s" % e)
        return
    if not isinstance(cfg, dict):
        errors.append("the file is not a mapping (expected global:, scrape_configs:)")
        return

    glob = cfg.get("global") or {}
    if not isinstance(glob, dict):
        errors.append("global: must be a mapping")
        glob = {}
    for k in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        if k in glob and _duration_ms(glob[k]) is None:
            errors.append("global.%s: %r is not a duration (e.g. 5s, 1m)" % (k, glob[k]))
    g_interval = _duration_ms(glob.get("scrape_interval", "1m"))
    # Unset, a timeout is min(10s, interval); set, it must not exceed the interval.
    if "scrape_timeout" in glob and g_interval and (_duration_ms(glob["scrape_timeout"]) or 0) > g_interval:
        errors.append("global: scrape_timeout is longer than scrape_interval")

    scs = cfg.get("scrape_configs")
    if not isinstance(scs, list) or not scs:
        errors.append("no scrape_configs (a list of jobs with targets)")
        return
    jobs = {}
    for i, sc in enumerate(scs):
        where = "scrape_configs[%d]" % i
        if not isinstance(sc, dict):
            errors.append("%s: not a mapping" % where)
            continue
        job = sc.get("job_name")
        if not isinstance(job, str) or not job:
            errors.append("%s: no job_name" % where)
            job = None
        else:
            where = "job %s" % job
            if job in jobs:
                errors.append("%s: job_name used twice" % where)
        interval = _duration_ms(sc.get("scrape_interval")) if "scrape_interval" in sc else g_interval
        if "scrape_interval" in sc and interval is None:
            errors.append("%s: scrape_interval %r is not a duration" % (where, sc["scrape_interval"]))
        if "scrape_timeout" in sc:
            timeout = _duration_ms(sc["scrape_timeout"])
            if timeout is None:
                errors.append("%s: scrape_timeout %r is not a duration" % (where, sc["scrape_timeout"]))
            elif interval and timeout > interval:
                errors.append("%s: scrape_timeout is longer than scrape_interval" % where)
        mp = sc.get("metrics_path", "/metrics")
        if not isinstance(mp, str) or not mp.startswith("/"):
            errors.append("%s: metrics_path %r must start with /" % (where, mp))

        ports = []
        found = False
        static = sc.get("static_configs")
        if static is not None:
            if not isinstance(static, list):
                errors.append("%s: static_configs must be a list" % where)
                static = []
            for j, stc in enumerate(static):
                targets = stc.get("targets") if isinstance(stc, dict) else None
                if not isinstance(targets, list) or not targets:
                    errors.append("%s: static_configs[%d] has no targets" % (where, j))
                    continue
                for t in targets:
                    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})", t) if isinstance(t, str) else None
                    if not m or not 0 < int(m.group(2)) < 65536:
                        errors.append("%s: target %r is not host:port (no scheme, no path)" % (where, t))
                        continue
                    found = True
                    ports.append(int(m.group(2)))
        dns = sc.get("dns_sd_configs")
        if dns is not None:
            if not isinstance(dns, list):
                errors.append("%s: dns_sd_configs must be a list" % where)
                dns = []
            for j, dc in enumerate(dns):
                if not isinstance(dc, dict):
                    errors.append("%s: dns_sd_configs[%d] is not a mapping" % (where, j))
                    continue
                names = dc.get("names")
                if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                    errors.append("%s: dns_sd_configs[%d] has no names" % (where, j))
                    continue
                rtype = dc.get("type", "SRV")
                if rtype in ("A", "AAAA", "MX", "NS"):
                    port = dc.get("port")
                    if not _is_int(port) or not 0 < port < 65536:
                        errors.append("%s: dns_sd_configs[%d] of type %s needs a port" % (where, j, rtype))
                        continue
                    ports.append(port)
                elif rtype != "SRV":
                    errors.append("%s: dns_sd_configs[%d]: unknown type %r" % (where, j, rtype))
                    continue
                found = True
        for k, v in sc.items():
            if k.endswith("_sd_configs") and k != "dns_sd_configs" and isinstance(v, list) and v:
                found = True  # targets from another discovery mechanism: not checked further
        if not found:
            errors.append("%s: no targets (static_configs targets or dns_sd_configs)" % where)
        if job:
            jobs[job] = ports

    for job, port in sorted(REQUIRED_JOBS.items()):
        if job not in jobs:
            errors.append("no job %r (expected its /metrics on port %d)" % (job, port))
        elif jobs[job] and any(p != port for p in jobs[job]):
            errors.append("job %s: targets on port(s) %s, but the service listens on %d"
                          % (job, ", ".join(str(p) for p in sorted(set(jobs[job]))), port))
    if stats is not None:
        stats["jobs"] = len(jobs)


# ---------------------------------------------------------------------------------------------

def _read(path, errors):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        errors.append("cannot read: %s" % e)
        return None


def check_files(dashboard, prometheus, stats=None):
    """[(path, problem), ...] for the two files."""
    out = []
    if dashboard:
        errs = []
        text = _read(dashboard, errs)
        if text is not None:
            check_dashboard_text(text, errs, stats)
        out += [(dashboard, e) for e in errs]
    if prometheus:
        errs = []
        text = _read(prometheus, errs)
        if text is not None:
            check_prometheus_text(text, errs, stats)
        out += [(prometheus, e) for e in errs]
    return out


def _rel(path):
    try:
        r = os.path.relpath(path, ROOT)
        return path if r.startswith("..") else r
    except ValueError:
        return path


# ---------------------------------------------------------------------------------------------
# --self-test

GOOD_PROMETHEUS_FLOW = """
global: {scrape_interval: 5s}
scrape_configs:
  - job_name: order-api
    static_configs: [{targets: ["127.0.0.1:8080"]}]
  - job_name: order-worker
    static_configs: [{targets: ["127.0.0.1:9101", '127.0.0.1:9101']}]
  - job_name: inference-worker
    static_configs:
    - targets:
        - 127.0.0.1:9102   # a comment
  - job_name: "broker"
    dns_sd_configs: [{names: [broker], type: A, port: 9644}]
"""

BAD_PROMETHEUS = {
    "no scrape_configs": ("global: {scrape_interval: 5s}\n", "no scrape_configs"),
    "empty scrape_configs": ("scrape_configs: []\n", "no scrape_configs"),
    "a job without targets": (GOOD_PROMETHEUS_FLOW.replace(
        '    static_configs: [{targets: ["127.0.0.1:8080"]}]', "    metrics_path: /metrics"), "job order-api: no targets"),
    "a target with a scheme": (GOOD_PROMETHEUS_FLOW.replace('"127.0.0.1:8080"', '"http://127.0.0.1:8080"'),
                               "is not host:port"),
    "a service on the wrong port": (GOOD_PROMETHEUS_FLOW.replace("port: 9644", "port: 9092"),
                                    "but the service listens on 9644"),
    "a missing job": (GOOD_PROMETHEUS_FLOW.replace("job_name: order-api", "job_name: api"), "no job 'order-api'"),
    "dns_sd without a port": (GOOD_PROMETHEUS_FLOW.replace(", port: 9644", ""), "needs a port"),
    "a timeout over the interval": ("global: {scrape_interval: 5s, scrape_timeout: 10s}\n" + GOOD_PROMETHEUS_FLOW.split("\n", 2)[2],
                                    "scrape_timeout is longer"),
    "not YAML this checker reads": ("scrape_configs: &jobs\n  - job_name: x\n", "not supported"),
    "bad indentation": ("scrape_configs:\n  - job_name: x\n      static_configs: []\n", "cannot read"),
}

PROMQL_CASES = [
    ('sum by (status) (rate(order_api_responses_total{route="/buy"}[$__rate_interval]))', ["order_api_responses_total"]),
    ("histogram_quantile(0.99, sum by (le) (rate(order_api_enqueue_seconds_bucket[5m])))", ["order_api_enqueue_seconds_bucket"]),
    ("sum(rate(a_total[1m] offset 5m)) / ignoring(x) group_left(y) sum(b)", ["a_total", "b"]),
    ('count({__name__="order_worker_events_total", job=~"a|b"})', ["order_worker_events_total"]),
    ("1e3 * max_over_time(broker_connections[1h:1m]) > bool 0x1f", ["broker_connections"]),
    ('label_replace(up{job="x"}, "dst", "$1", "src", "(.*)") # a comment naming not_a_metric', ["up"]),
    ("topk(${n}, sum without (instance) (broker_group_lag{group='order-workers'}))", ["broker_group_lag"]),
    ("abs(-inf) + nan", []),
]
PROMQL_BAD = [
    ('sum(rate(x_total{a="b}[1m]))', "unterminated string"),
    ("sum(rate(x_total[1m])", "unclosed"),
    ("summ(x_total)", "unknown function"),
]
METRIC_CASES = [
    ("order_api_enqueue_seconds_bucket", True),
    ("order_api_enqueue_seconds_count", True),
    ("broker_request_duration_seconds_sum", True),
    ("order_api_enqueue_seconds", False),
    ("order_api_responses_total_bucket", False),
    ("order_api_responses", False),
    ("up", True),
]
# What the broken fixture must be caught for (one check each).
BAD_FIXTURE_EXPECTS = [
    "dashboard: no uid",
    "id 3 is also the id of",
    "overlap",
    "gridPos lacks integer h",
    "is outside the 24-column grid",
    "has no refId",
    "has no expr",
    "refId 'A' used twice",
    "has no targets",
    "'order_api_enqueue_seconds' is a histogram",
    "'order_api_requests_total' is not one the project exposes",
    "unknown function 'rated'",
    "${DS_OTHER} is not a data-source template variable",
    "data source uid 'P1809F7CD0C75ACF3' is fixed",
    "has no title",
    "has no type",
]


def self_test():
    results = []

    def case(name, ok, detail=""):
        results.append(ok)
        print("%s - %s%s" % ("ok" if ok else "FAIL", name, "" if ok else ": " + detail))

    # 1. The real files pass.
    stats = {}
    problems = check_files(DEFAULT_DASHBOARD, DEFAULT_PROMETHEUS, stats)
    case("%s and %s pass" % (_rel(DEFAULT_DASHBOARD), _rel(DEFAULT_PROMETHEUS)), not problems,
         "; ".join("%s: %s" % (_rel(p), e) for p, e in problems))

    # 2. The broken fixture fails, for each of its faults.
    problems = [e for _, e in check_files(BAD_FIXTURE, None)]
    case("%s fails" % _rel(BAD_FIXTURE), bool(problems), "no problem reported")
    for expect in BAD_FIXTURE_EXPECTS:
        case("bad fixture: reported %r" % expect, any(expect in e for e in problems),
             "not among: " + " | ".join(problems))

    # 3. Not JSON.
    errs = []
    check_dashboard_text('{"title": "x", "uid": "x", "panels": [}', errs)
    case("a dashboard that is not JSON fails", any("not valid JSON" in e for e in errs), "; ".join(errs))

    # 4. PromQL reading.
    for expr, expected in PROMQL_CASES:
        try:
            got = promql_metric_names(expr)
        except PromQLError as e:
            got = "error: %s" % e
        case("PromQL metric names of %r" % expr, got == expected, "got %r, expected %r" % (got, expected))
    for expr, expect in PROMQL_BAD:
        try:
            promql_metric_names(expr)
            got = "no error"
        except PromQLError as e:
            got = str(e)
        case("PromQL %r is refused" % expr, expect in got, "got %r" % got)
    for name, allowed in METRIC_CASES:
        case("metric %r %s" % (name, "allowed" if allowed else "refused"),
             (metric_name_problem(name) is None) == allowed, str(metric_name_problem(name)))

    # 5. prometheus.yml: a good one in other YAML styles passes; broken ones fail.
    errs = []
    check_prometheus_text(GOOD_PROMETHEUS_FLOW, errs)
    case("a local-run prometheus.yml in flow style passes", not errs, "; ".join(errs))
    for name, (text, expect) in sorted(BAD_PROMETHEUS.items()):
        errs = []
        check_prometheus_text(text, errs)
        case("prometheus.yml with %s fails" % name, any(expect in e for e in errs),
             "expected %r among: %s" % (expect, " | ".join(errs) or "no problem"))

    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print("self-test: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dashboard", default=DEFAULT_DASHBOARD, help="Grafana dashboard JSON (default: %(default)s)")
    ap.add_argument("--prometheus", default=DEFAULT_PROMETHEUS, help="Prometheus config (default: %(default)s)")
    ap.add_argument("--self-test", action="store_true",
                    help="check that the real files pass and the broken fixture and built-in bad cases fail")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    stats = {}
    problems = check_files(args.dashboard, args.prometheus, stats)
    if problems:
        for path, e in problems:
            print("check_ops: %s: %s" % (_rel(path), e), file=sys.stderr)
        print("check_ops: %d problem(s)" % len(problems), file=sys.stderr)
        return 1
    print("check_ops: ok: %s (%d panels, %d PromQL expressions), %s (%d scrape jobs)"
          % (_rel(args.dashboard), stats.get("panels", 0), stats.get("exprs", 0), _rel(args.prometheus), stats.get("jobs", 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
