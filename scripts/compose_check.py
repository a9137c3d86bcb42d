#!/usr/bin/env python3
"""Validates Compose files against the Compose Specification without a Docker engine.

Run through scripts/check-compose.sh, which installs what this needs (PyYAML, jsonschema >= 4).
Does, in the order Docker Compose's loader does it:

1. parse the YAML (anchors and `<<` merge keys resolved; a key given twice in one mapping is an
   error, as it is for Compose);
2. interpolate `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
   `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` from this process's environment (a
   malformed expression is an error; a variable that is unset and has no default is warned about
   and becomes "", as in Compose);
3. validate against the vendored Compose Specification schema (scripts/compose-spec/);
4. check what the schema cannot: references to undefined services, volumes, networks, configs
   and secrets, depends_on cycles, healthcheck.test's first word, restart policies and durations;
5. our own rule (not Compose's): a published port of a broker or a database (a service whose
   name, image or command says broker/kafka/postgres/..., or a container port such as 9092, 9644,
   5432) needs a comment on the same line saying why it is published. Only the API is meant to
   be reachable from outside; an exception must explain itself where it is written.

Variables come from the environment over the `.env` file beside the Compose file, as Compose
reads them; without a `.env`, from `.env.example` (so the committed file is checked with the
committed example values, and a `${VAR:?...}` the example forgot fails here).

`--self-test` runs built-in good and bad snippets (a bad one must fail) and the real
docker-compose.yml, and ends with "self-test: N passed, M failed".

Prints nothing and exits 0 when every file is valid; otherwise prints one line per problem to
stderr and exits 1.
"""

import os
import re
import sys
from pathlib import Path

import yaml
from jsonschema import validators
from jsonschema.exceptions import best_match

SCHEMA = Path(__file__).resolve().parent / "compose-spec" / "compose-spec.json"


class Problem(Exception):
    pass


# ---------------------------------------------------------------- YAML with duplicate-key check


class _Loader(yaml.SafeLoader):
    pass


def _mapping_without_duplicates(loader, node, deep=False):
    # Keys brought in by a `<<` merge may be overridden; keys written in the mapping itself may not.
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise Problem(
                f"line {key_node.start_mark.line + 1}: key {key!r} is given twice in one mapping"
                f" (first on line {seen[key] + 1})"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


# ---------------------------------------------------------------- interpolation

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _find_closing_brace(text, start):
    """Index of the `}` closing the `${` whose body starts at `start` (nested `${...}` allowed)."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def interpolate(text, env, where, warnings):
    out, i = [], 0
    while i < len(text):
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
            continue
        if text.startswith("${", j):
            end = _find_closing_brace(text, j + 2)
            if end < 0:
                raise Problem(f"{where}: unterminated '${{' in {text!r}")
            out.append(_expand(text[j + 2 : end], env, where, warnings, text))
            i = end + 1
            continue
        m = _NAME.match(text, j + 1)
        if not m:
            raise Problem(f"{where}: invalid interpolation format in {text!r} (write $$ for a literal $)")
        out.append(_lookup(m.group(0), env, where, warnings))
        i = m.end()
    return "".join(out)


def _lookup(name, env, where, warnings):
    if name not in env:
        warnings.append(f"{where}: variable {name} is not set and has no default: using \"\"")
        return ""
    return env[name]


def _expand(body, env, where, warnings, whole):
    m = _NAME.match(body)
    if not m:
        raise Problem(f"{where}: invalid interpolation format in {whole!r}")
    name, rest = m.group(0), body[m.end() :]
    if rest == "":
        return _lookup(name, env, where, warnings)
    op = next((o for o in (":-", ":?", ":+", "-", "?", "+") if rest.startswith(o)), None)
    if op is None:
        raise Problem(f"{where}: invalid interpolation format in {whole!r}")
    arg = rest[len(op) :]
    value = env.get(name)
    is_set = value is not None
    non_empty = is_set and value != ""
    present = non_empty if op.startswith(":") else is_set
    if op in (":-", "-"):
        return value if present else interpolate(arg, env, where, warnings)
    if op in (":+", "+"):
        return interpolate(arg, env, where, warnings) if present else ""
    if not present:  # ":?" and "?"
        raise Problem(f"{where}: required variable {name} is missing a value: {arg}")
    return value


def interpolate_tree(node, env, path, warnings):
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, path + [str(k)], warnings) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, path + [str(i)], warnings) for i, v in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, env, ".".join(path), warnings)
    return node


# ---------------------------------------------------------------- schema


def schema_problems(doc, schema):
    validator = validators.validator_for(schema)(schema)
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        detail = _closest(error)
        path = ".".join(str(p) for p in detail.absolute_path) or "(top level)"
        problems.append(f"{path}: {_message(detail)}")
    return problems


def _closest(error):
    """For a oneOf/anyOf failure, the error of the branch the value was most likely meant for."""
    if not error.context:
        return error
    # A branch that wants another type altogether (a list where a mapping was written) is not the
    # one the author meant; among the others, the deepest error says most.
    meant = [e for e in error.context if not (e.validator == "type" and not e.relative_path)]
    if not meant:
        return best_match(error.context)
    return _closest(max(meant, key=lambda e: len(e.absolute_path)))


def _message(error):
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        unknown = [k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)]
        if unknown:
            return "unknown key(s) " + ", ".join(repr(k) for k in unknown) + " (not in the Compose Specification)"
    return error.message


# ---------------------------------------------------------------- what the schema cannot check

_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^0$")
_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")


def _names(section):
    return set(section) if isinstance(section, dict) else set()


def consistency_problems(doc):
    problems = []
    services = doc.get("services") or {}
    volumes, networks = _names(doc.get("volumes")), _names(doc.get("networks"))
    configs, secrets = _names(doc.get("configs")), _names(doc.get("secrets"))
    networks.add("default")
    deps = {}
    for name, svc in services.items():
        where = f"services.{name}"
        if not svc.get("image") and not svc.get("build") and not svc.get("provider"):
            problems.append(f"{where}: has neither an image nor a build context")
        depends_on = svc.get("depends_on") or {}
        targets = list(depends_on) if isinstance(depends_on, (dict, list)) else []
        deps[name] = [t for t in targets if t in services]
        for target in targets:
            if target not in services:
                problems.append(f"{where}.depends_on: undefined service {target!r}")
            elif target == name:
                problems.append(f"{where}.depends_on: a service cannot depend on itself")
        for vol in svc.get("volumes") or []:
            if isinstance(vol, str):
                source = vol.split(":", 1)[0] if ":" in vol else ""
                kind = "volume" if source and not source.startswith((".", "/", "~", "$")) else "bind"
            else:
                source, kind = vol.get("source", ""), vol.get("type", "volume")
            if kind == "volume" and source and source not in volumes:
                problems.append(f"{where}.volumes: undefined volume {source!r} (declare it under top-level volumes:)")
        svc_networks = svc.get("networks") or []
        for net in svc_networks:
            if net not in networks:
                problems.append(f"{where}.networks: undefined network {net!r}")
        if svc_networks and svc.get("network_mode"):
            problems.append(f"{where}: network_mode and networks are mutually exclusive")
        for kind_name, declared in (("configs", configs), ("secrets", secrets)):
            for ref in svc.get(kind_name) or []:
                source = ref if isinstance(ref, str) else ref.get("source")
                if source not in declared:
                    problems.append(f"{where}.{kind_name}: undefined {kind_name[:-1]} {source!r}")
        health = svc.get("healthcheck") or {}
        test = health.get("test")
        if isinstance(test, list) and test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            problems.append(f"{where}.healthcheck.test: must start with CMD, CMD-SHELL or NONE, not {test[0]!r}")
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in health and not _DURATION.match(str(health[key])):
                problems.append(f"{where}.healthcheck.{key}: {health[key]!r} is not a duration like 2s or 1m30s")
        if "stop_grace_period" in svc and not _DURATION.match(str(svc["stop_grace_period"])):
            problems.append(f"{where}.stop_grace_period: {svc['stop_grace_period']!r} is not a duration like 10s")
        if "restart" in svc and not _RESTART.match(str(svc["restart"])):
            problems.append(
                f"{where}.restart: {svc['restart']!r} is not one of no, always, on-failure[:N], unless-stopped"
            )
    problems.extend(_cycles(deps))
    return problems


def _cycles(deps):
    state, problems = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in deps.get(node, []):
            if state.get(nxt) == "open":
                cycle = trail[trail.index(nxt) :] + [nxt]
                problems.append("depends_on cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in deps:
        if node not in state:
            visit(node, [node])
    return problems


# ---------------------------------------------------------------- published broker/database ports

# Container ports of brokers and databases: Kafka, the broker's admin port, Redpanda's admin,
# PostgreSQL, MySQL, Redis, MongoDB.
SENSITIVE_PORTS = {9092, 9093, 9644, 5432, 3306, 6379, 27017}
_SENSITIVE_WORDS = re.compile(r"broker|kafka|redpanda|postgres|mysql|mariadb|redis|mongo", re.I)
_COMMENT = re.compile(r"\s#\s*\S")


def _scalar_texts(node):
    if isinstance(node, yaml.ScalarNode):
        yield str(node.value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalar_texts(item)


def _container_port(item):
    """The container port of a `ports:` entry (short or long syntax), or None."""
    if isinstance(item, yaml.ScalarNode):
        text = str(item.value).split("/", 1)[0]
        last = text.rsplit(":", 1)[-1]
        first = last.split("-", 1)[0]
        return int(first) if first.isdigit() else None
    if isinstance(item, yaml.MappingNode):
        for k, v in item.value:
            if k.value == "target" and str(v.value).isdigit():
                return int(v.value)
    return None


def published_port_problems(text):
    """Published broker/database ports without a comment on their line (rule 5)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []  # reported by the YAML step
    if not isinstance(root, yaml.MappingNode):
        return []
    lines = text.splitlines()
    problems = []
    for key, value in root.value:
        if key.value != "services" or not isinstance(value, yaml.MappingNode):
            continue
        for svc_key, svc in value.value:
            if not isinstance(svc, yaml.MappingNode):
                continue
            fields = {k.value: v for k, v in svc.value if isinstance(k, yaml.ScalarNode)}
            described = [svc_key.value]
            for field in ("image", "command", "entrypoint"):
                if field in fields:
                    described.extend(_scalar_texts(fields[field]))
            sensitive = any(_SENSITIVE_WORDS.search(t) for t in described)
            ports = fields.get("ports")
            if not isinstance(ports, yaml.SequenceNode):
                continue
            for item in ports.value:
                port = _container_port(item)
                if not (sensitive or port in SENSITIVE_PORTS):
                    continue
                line_no = item.start_mark.line
                line = lines[line_no] if line_no < len(lines) else ""
                if not _COMMENT.search(line):
                    problems.append(
                        f"services.{svc_key.value}.ports (line {line_no + 1}): publishes a broker or "
                        f"database port ({line.strip()}) without a comment on that line saying why; "
                        "remove it, or add `# why` if it must be reachable from outside"
                    )
    return problems


# ---------------------------------------------------------------- .env


def load_env_file(path):
    """KEY=VALUE lines (blank lines and `#` comments skipped, optional quotes removed)."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            key, value = key.strip(), value.strip()
            if key.startswith("export "):
                key = key[len("export ") :].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            elif " #" in value:
                value = value.split(" #", 1)[0].rstrip()
            env[key] = value
    return env


def compose_env(path):
    """The variables Compose would interpolate `path` with (see the module docstring)."""
    folder = Path(path).resolve().parent
    env = {}
    for name in (".env", ".env.example"):
        candidate = folder / name
        if candidate.is_file():
            env = load_env_file(candidate)
            break
    env.update(os.environ)
    return env


# ---------------------------------------------------------------- main


def check(path, schema):
    """Problems and warnings for one Compose file."""
    warnings = []
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=_Loader)
    except Problem as e:
        return [str(e)], warnings
    except yaml.YAMLError as e:
        return [f"not valid YAML: {e}"], warnings
    except OSError as e:
        return [f"cannot read: {e.strerror}"], warnings
    if not isinstance(raw, dict):
        return ["the top level must be a mapping"], warnings
    try:
        doc = interpolate_tree(raw, compose_env(path), [], warnings)
    except Problem as e:
        return [str(e)], warnings
    problems = schema_problems(doc, schema)
    if not problems:
        problems = consistency_problems(doc)
    with open(path, encoding="utf-8") as f:
        problems.extend(published_port_problems(f.read()))
    return problems, warnings


# ---------------------------------------------------------------- --self-test

_SELF_TEST = [
    # (name, compose text, should pass)
    ("broker port published without a comment", '''
services:
  broker:
    image: seckill-mq:local
    command: ["broker"]
    ports:
      - "9092:9092"
''', False),
    ("database port published without a comment", '''
services:
  db:
    image: postgres:15
    ports:
      - "5432:5432"
''', False),
    ("admin port of an oddly named service, long syntax", '''
services:
  queue:
    image: seckill-mq:local
    ports:
      - target: 9644
        published: "9644"
''', False),
    ("one commented, one not", '''
services:
  broker:
    image: seckill-mq:local
    ports:
      - "9092:9092" # kcat from the host, for debugging
      - "9644:9644"
''', False),
    ("broker port with a comment saying why", '''
services:
  broker:
    image: seckill-mq:local
    ports:
      - "127.0.0.1:9092:9092" # loopback only, for kcat on this host
''', True),
    ("the API published, no comment needed", '''
services:
  api:
    image: seckill-mq:local
    command: ["order-api"]
    ports:
      - "8080:8080"
''', True),
    ("a required variable missing from the environment and the example", '''
services:
  api:
    image: seckill-mq:local
    environment:
      SECRET: ${COMPOSE_CHECK_SELF_TEST_UNSET:?set it in .env}
''', False),
]


def self_test(schema):
    import tempfile

    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, text, should_pass in _SELF_TEST:
            path = Path(tmp) / "compose.yml"
            path.write_text(text, encoding="utf-8")
            problems, _ = check(str(path), schema)
            ok = (not problems) == should_pass
            passed, failed = passed + ok, failed + (not ok)
            verdict = "ok" if ok else "WRONG"
            print(f"{verdict}: {name}: {'passes' if not problems else 'fails: ' + problems[0]}")
    real = Path(__file__).resolve().parent.parent / "docker-compose.yml"
    problems, _ = check(str(real), schema)
    ok = not problems
    passed, failed = passed + ok, failed + (not ok)
    print(f"{'ok' if ok else 'WRONG'}: the real docker-compose.yml passes" + ("" if ok else f": {problems}"))
    print("self-test: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


def main(argv):
    import json

    with open(SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    if argv[1:] == ["--self-test"]:
        return self_test(schema)
    files = argv[1:] or ["docker-compose.yml"]
    failed = False
    for path in files:
        problems, warnings = check(path, schema)
        for w in warnings:
            print(f"{path}: warning: {w}", file=sys.stderr)
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        if problems:
            failed = True
            print(f"{path}: INVALID ({len(problems)} problem(s))", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
