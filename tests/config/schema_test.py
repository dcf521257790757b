#!/usr/bin/python3
"""docs/config.schema.json and the config parser (blitzd --check-config) agree.

Usage:
  schema_test.py --blitzd PATH [--source-dir DIR] [--verbose]

Checks, each case printed as PASS or FAIL (PASS lines with --verbose), ending with
"N passed, N failed":
  schema      the schema is a valid JSON Schema (draft 2020-12, checked against its metaschema),
              every $ref in it resolves, and every "default" is a value its own key accepts;
  valid       config/blitzd.json, config/examples/*.json and each whole config in a ```json block
              of docs/config.md (one with "listeners" at top level; the others are fragments and
              are skipped) validate against the schema, and `blitzd --check-config` prints "ok";
  unknown     an unknown key added to each object of those configs that the schema describes
              (found by walking the configs and the schema's properties together, so a new
              object in the schema is covered once an example has it): the schema rejects it
              with additionalProperties, and blitzd exits 1 naming the key, its JSON path, the
              line and column of the key, and allowing exactly the schema's keys there; every
              schema object must be reached by some example config;
  invalid     for every integer, boolean and enum key of those objects, values just out of
              range, of the wrong type or not in the enum, plus a few hand-written bad values:
              both reject them, blitzd at the value's JSON path with a message that names the
              schema's own range or choices ("expected an integer from 1 to 10000",
              "expected one of ...").

Certificates, keys, CA bundles and OCSP staples that the configs name (in /etc/blitz, which
need not exist) are replaced by files made here with the openssl tool before blitzd checks a
config; environment variables the configs use are unset, so their ${VAR:-default} defaults
apply. Exit status: 0 when every case passed, 1 when one failed, 77 (meson's SKIP) when
python3-jsonschema or the openssl tool is missing.
"""

import argparse
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import jsonschema
except ImportError as missing:
    print(f"SKIP: python3-jsonschema is not installed ({missing})")
    sys.exit(77)

UNKNOWN = "no_such_key"
BLITZD_TIMEOUT = 20  # seconds for one --check-config run
IDENT = re.compile(r"^[A-Za-z0-9_]+$")
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


class Results:
    def __init__(self, verbose):
        self.verbose = verbose
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, why=""):
        if ok:
            self.passed += 1
            if self.verbose:
                print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name} — {why}", flush=True)
        return ok

    def note(self, text):
        print(text, flush=True)


def json_path(ipath):
    """The parser's JSON path: $.key, $["odd key"], [index]."""
    out = "$"
    for p in ipath:
        if isinstance(p, int):
            out += f"[{p}]"
        elif IDENT.match(p):
            out += "." + p
        else:
            out += '["' + p + '"]'
    return out


def pointer_get(root, pointer):
    node = root
    for part in pointer.lstrip("/").split("/") if pointer else []:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


class Schema:
    """The schema and walks of configs along it."""

    def __init__(self, schema):
        self.root = schema
        self.validator = jsonschema.Draft202012Validator(schema)

    def deref(self, node, pointer):
        """Follows $ref (local ones only: this schema has no other) to the node that holds the
        structure; returns it with its pointer."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#"):
                raise ValueError(f"non-local $ref {ref} at {pointer}")
            pointer = ref[1:]
            node = pointer_get(self.root, pointer)
            seen += 1
            if seen > 20:
                raise ValueError(f"$ref loop at {pointer}")
        return node, pointer

    def object_schemas(self):
        """Pointer → node of every schema object that lists its keys ("properties")."""
        found = {}

        def walk(node, pointer):
            if isinstance(node, list):
                for i, child in enumerate(node):
                    walk(child, f"{pointer}/{i}")
            elif isinstance(node, dict):
                if "properties" in node:
                    found[pointer] = node
                for k, child in node.items():
                    walk(child, f"{pointer}/{k}")

        walk(self.root, "")
        return found

    def branches(self, node, pointer):
        """The node and, through $ref, anyOf and oneOf, every alternative it allows."""
        node, pointer = self.deref(node, pointer)
        out = [(node, pointer)]
        for word in ("anyOf", "oneOf"):
            for i, alt in enumerate(node.get(word, [])):
                out += self.branches(alt, f"{pointer}/{word}/{i}")
        return out

    def walk_config(self, value, node, pointer, ipath, out):
        """Collects (instance path, schema pointer, schema node) for each object of the config
        that a schema object with properties describes."""
        for sub, sub_pointer in self.branches(node, pointer):
            if isinstance(value, dict) and "properties" in sub:
                out.append((ipath, sub_pointer, sub))
                for key, child in value.items():
                    if key in sub["properties"]:
                        self.walk_config(child, sub["properties"][key],
                                         f"{sub_pointer}/properties/{key}", ipath + [key], out)
                return
            if isinstance(value, list) and "items" in sub:
                for i, child in enumerate(value):
                    self.walk_config(child, sub["items"], f"{sub_pointer}/items", ipath + [i],
                                     out)
                return

    def objects_of(self, doc):
        out = []
        self.walk_config(doc, self.root, "", [], out)
        return out

    def is_file_name(self, prop):
        return any(p == "/$defs/fileName" for _, p in self.branches(prop, ""))

    def scalar_kinds(self, prop):
        """What a key's value may be, ignoring ${VAR} forms: integer bounds, enums, booleans."""
        kinds = {"integer": False, "min": None, "max": None, "boolean": False, "enum": None,
                 "string": False}

        def visit(node, mins, maxs):
            if isinstance(node, dict) and "$ref" in node:
                target = node["$ref"]
                if target in ("#/$defs/envExpression", "#/$defs/envString"):
                    return
                mins = mins + ([node["minimum"]] if "minimum" in node else [])
                maxs = maxs + ([node["maximum"]] if "maximum" in node else [])
                visit(pointer_get(self.root, target[1:]), mins, maxs)
                return
            mins = mins + ([node["minimum"]] if "minimum" in node else [])
            maxs = maxs + ([node["maximum"]] if "maximum" in node else [])
            if node.get("type") == "integer":
                kinds["integer"] = True
                if mins:
                    kinds["min"] = max(mins)
                if maxs:
                    kinds["max"] = min(maxs)
            if node.get("type") == "boolean":
                kinds["boolean"] = True
            if node.get("type") == "string":
                kinds["string"] = True
            if "enum" in node:
                kinds["enum"] = (kinds["enum"] or []) + node["enum"]
            if "const" in node:
                kinds["enum"] = (kinds["enum"] or []) + [node["const"]]
            for word in ("anyOf", "oneOf"):
                for alt in node.get(word, []):
                    visit(alt, mins, maxs)

        visit(prop, [], [])
        return kinds


class Materializer:
    """Writes a config for blitzd with the files it names replaced by real ones."""

    def __init__(self, schema, workdir):
        self.schema = schema
        self.workdir = workdir
        self.count = 0
        openssl = shutil.which("openssl")
        if openssl is None:
            print("SKIP: the openssl tool is not installed (it makes the certificates that the "
                  "example configs name)")
            sys.exit(77)
        self.ec = self._make(openssl, "ec", ["-newkey", "ec", "-pkeyopt",
                                             "ec_paramgen_curve:P-256"])
        self.rsa = self._make(openssl, "rsa", ["-newkey", "rsa:2048"])
        # An OCSPResponse is a DER SEQUENCE (RFC 6960 §4.2.1); blitz checks no more than that
        # at load time. This one is {responseStatus: unauthorized (6)}.
        self.ocsp = os.path.join(workdir, "staple.der")
        with open(self.ocsp, "wb") as f:
            f.write(bytes([0x30, 0x03, 0x0A, 0x01, 0x06]))

    def _make(self, openssl, name, newkey):
        cert = os.path.join(self.workdir, f"{name}.pem")
        key = os.path.join(self.workdir, f"{name}.key")
        r = subprocess.run([openssl, "req", "-x509", *newkey, "-nodes", "-keyout", key, "-out",
                            cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost"],
                           capture_output=True, timeout=60, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"openssl req ({name}) failed: {r.stderr.decode()[-300:]}")
        return cert, key

    def files_for(self, doc):
        """Rewrites, in place, every file name of `doc` to a file made here. Certificates of one
        listener that serve the same names get an ECDSA and then an RSA pair (a virtual host
        holds one of each key type)."""
        seen_names = {}
        for ipath, pointer, node in self.schema.objects_of(doc):
            obj = doc
            for p in ipath:
                obj = obj[p]
            pair = self.ec
            if pointer == "/$defs/certificate":
                group = (tuple(ipath[:-1]), tuple(sorted(obj.get("server_names", []))))
                pair = self.ec if seen_names.get(group, 0) == 0 else self.rsa
                seen_names[group] = seen_names.get(group, 0) + 1
            for key in list(obj):
                prop = node["properties"].get(key)
                if prop is None or not self.schema.is_file_name(prop):
                    continue
                if key == "cert":
                    obj[key] = pair[0]
                elif key == "key":
                    obj[key] = pair[1]
                elif key in ("ca", "client_ca"):
                    obj[key] = self.ec[0]
                elif key == "ocsp_staple":
                    obj[key] = self.ocsp
                else:
                    raise ValueError(f"{pointer} has a file key {key!r} this test cannot fill: "
                                     "teach Materializer.files_for what file it names")

    def write(self, doc, name):
        """The path of a copy of `doc`, files replaced, and the text written."""
        doc = copy.deepcopy(doc)
        self.files_for(doc)
        self.count += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        path = os.path.join(self.workdir, f"{self.count:04d}-{safe}.json")
        text = json.dumps(doc, indent=2) + "\n"
        with open(path, "w") as f:
            f.write(text)
        return path, text


class Blitzd:
    def __init__(self, exe, env):
        self.exe = exe
        self.env = env

    def check(self, path):
        """(exit status, stdout, stderr) of blitzd --check-config on `path`."""
        try:
            r = subprocess.run([self.exe, "--check-config", "--config", path],
                               stdin=subprocess.DEVNULL, capture_output=True, env=self.env,
                               timeout=BLITZD_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            return None, "", f"still running after {BLITZD_TIMEOUT}s"
        return (r.returncode, r.stdout.decode("utf-8", "replace"),
                r.stderr.decode("utf-8", "replace"))


def position_of(text, needle):
    """1-based line and column (ASCII text) of the only occurrence of `needle`."""
    at = text.find(needle)
    assert at >= 0 and text.find(needle, at + 1) < 0, needle
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def error_tree(errors):
    for e in errors:
        yield e
        yield from error_tree(e.context or [])


def schema_errors(schema, doc):
    return sorted(schema.validator.iter_errors(doc), key=lambda e: list(e.absolute_path))


def describe_errors(errors):
    return "; ".join(f"{json_path(list(e.absolute_path))}: {e.message[:200]}" for e in errors[:3])


# ---------------------------------------------------------------------------------------------
# schema


def check_schema_itself(schema, res):
    """False when the schema is too broken to walk (not a schema, or a $ref that leads
    nowhere)."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema.root)
        ok, why = True, ""
    except jsonschema.exceptions.SchemaError as e:
        ok, why = False, f"{json_path(list(e.absolute_path))}: {e.message}"
    sound = res.check(ok, "schema: valid against the draft 2020-12 metaschema", why)
    declared = jsonschema.validators.validator_for(schema.root, default=None)
    res.check(declared is jsonschema.Draft202012Validator,
              "schema: $schema declares draft 2020-12", f"it declares {declared}")

    refs = []
    defaults = []

    def walk(node, pointer):
        if isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{pointer}/{i}")
        elif isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append((pointer, node["$ref"]))
            if "default" in node:
                defaults.append((pointer, node))
            for k, child in node.items():
                if k not in ("default", "enum", "const"):
                    walk(child, f"{pointer}/{k}")

    walk(schema.root, "")
    bad_refs = []
    for pointer, ref in refs:
        try:
            schema.validator.resolver.resolve(ref)
        except jsonschema.exceptions.RefResolutionError as e:
            bad_refs.append(f"{pointer}: {ref}: {e}")
    sound = res.check(not bad_refs and len(refs) > 50, f"schema: all {len(refs)} $refs resolve",
                      "; ".join(bad_refs[:5]) or "too few $refs found") and sound
    if not sound:
        return False
    bad_defaults = []
    for pointer, node in defaults:
        sub = {k: v for k, v in node.items() if k != "default"}
        errors = list(schema.validator.evolve(schema=sub).iter_errors(node["default"]))
        if errors:
            bad_defaults.append(f"{pointer}: {node['default']!r}: {errors[0].message}")
    res.check(not bad_defaults and len(defaults) > 50,
              f"schema: all {len(defaults)} defaults are values their key accepts",
              "; ".join(bad_defaults[:5]) or "too few defaults found")
    return True


# ---------------------------------------------------------------------------------------------
# valid


def whole_configs(source, res):
    """(name, document) of every config to hold both to: the default config, the examples and
    the whole configs in docs/config.md."""
    configs = []
    for path in [os.path.join(source, "config", "blitzd.json")] + sorted(
            glob.glob(os.path.join(source, "config", "examples", "*.json"))):
        with open(path) as f:
            configs.append((os.path.relpath(path, source), json.load(f)))
    md = os.path.join(source, "docs", "config.md")
    with open(md) as f:
        text = f.read()
    fragments = []
    for m in re.finditer(r"^```json\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, m.start()) + 1
        try:
            doc = json.loads(m.group(1))
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "listeners" in doc:
            configs.append((f"docs/config.md:{line}", doc))
        else:
            fragments.append(str(line))
    res.note(f"note: {len(configs)} whole configs; docs/config.md fragments skipped (json "
             f"blocks without top-level \"listeners\", at lines {', '.join(fragments)})")
    res.check(len(configs) >= 7, "valid: the example configs are found",
              f"only {len(configs)}: {[n for n, _ in configs]}")
    return configs


def check_valid(schema, configs, mat, blitzd, res):
    for name, doc in configs:
        errors = schema_errors(schema, doc)
        res.check(not errors, f"valid: {name} validates against the schema",
                  describe_errors(errors))
        path, _ = mat.write(doc, name)
        code, out, err = blitzd.check(path)
        res.check(code == 0 and out == "ok\n" and err == "",
                  f"valid: blitzd --check-config accepts {name}",
                  f"exit {code}, stdout {out!r}, stderr {err.strip()[:400]!r}")


# ---------------------------------------------------------------------------------------------
# unknown


def check_unknown_keys(schema, configs, mat, blitzd, res):
    every = schema.object_schemas()
    covered = set()
    done = set()
    for name, doc in configs:
        for ipath, pointer, node in schema.objects_of(doc):
            # One case per schema object and place in a document's shape (limits at the top and
            # in a listener, header edits of a route and of a filter, ...).
            shape = (pointer, tuple("[]" if isinstance(p, int) else p for p in ipath))
            if shape in done:
                continue
            done.add(shape)
            covered.add(pointer)
            mutated = copy.deepcopy(doc)
            obj = mutated
            for p in ipath:
                obj = obj[p]
            obj[UNKNOWN] = 1
            where = json_path(ipath + [UNKNOWN])
            case = f"unknown: {where} ({pointer or 'root'}, in {name})"

            errors = list(error_tree(schema.validator.iter_errors(mutated)))
            named = [e for e in errors if e.validator == "additionalProperties" and
                     list(e.absolute_path) == ipath and repr(UNKNOWN) in e.message]
            res.check(named, f"{case}: the schema rejects it",
                      "no additionalProperties error names it; errors: " +
                      describe_errors(errors))

            path, text = mat.write(mutated, "unknown")
            code, out, err = blitzd.check(path)
            line, column = position_of(text, f'"{UNKNOWN}"')
            m = re.match(re.escape(f"{path}:{line}:{column}: {where}: unknown key \"{UNKNOWN}\"; "
                                   "allowed keys: ") + r"(.*)\n$", err)
            ok = code == 1 and out == "" and m is not None
            res.check(ok, f"{case}: blitzd rejects it at the key",
                      f"exit {code}, stdout {out!r}, stderr {err.strip()[:400]!r}; expected "
                      f"{path}:{line}:{column}: {where}: unknown key ...")
            if m:
                allowed = set(m.group(1).split(", "))
                expected = set(node["properties"])
                res.check(allowed == expected, f"{case}: blitzd allows the schema's keys there",
                          f"only blitzd: {sorted(allowed - expected)}, only the schema: "
                          f"{sorted(expected - allowed)}")
    for pointer in sorted(set(every) - covered):
        res.check(False, f"unknown: schema object {pointer or 'root'} is tested",
                  "no example config has such an object; add one to the full example in "
                  "docs/config.md or to config/examples/")
    res.note(f"note: unknown keys tried at {len(done)} places, {len(covered)} of "
             f"{len(every)} schema objects")


# ---------------------------------------------------------------------------------------------
# invalid


def bad_values(kinds):
    """(label, value, what blitzd's message must say) for values the key must refuse. The
    message names the parser's own range or choices, so they are held to the schema's."""
    out = []
    enum = kinds["enum"] or []
    if kinds["integer"]:
        lo, hi = kinds["min"], kinds["max"]
        says = f"an integer from {lo} to {hi}" if lo is not None and hi is not None else ""
        if lo is not None:
            out.append((f"below the minimum {lo}", lo - 1, says))
        if hi is not None:
            out.append((f"above the maximum {hi}", hi + 1, says))
        out.append(("a fraction", 1.5, says))
        if not kinds["string"] and not enum:
            out.append(("a number in a string", "7", says))
    # bool is an int in Python: booleans first.
    if enum and all(v is True for v in enum) and not kinds["boolean"]:
        out.append(("false where only true is allowed", False, "expected true,"))
    elif enum and all(isinstance(v, int) and not isinstance(v, bool) for v in enum) and \
            not kinds["integer"]:
        out.append(("an integer not in the enum", max(enum) + 1, enum))
    if kinds["boolean"]:
        out.append(("a number for a boolean", 1, "expected true"))
        out.append(("a string for a boolean", "yes", "expected true"))
    words = [v for v in enum if isinstance(v, str)]
    if words and not kinds["string"]:
        out.append(("a word not in the enum", "no-such-value", words))
    return out


def message_agrees(message, says):
    """Why blitzd's `message` does not say what the schema says (None when it does): a text
    it must contain, or the values of an enum, which it must offer all of ("one of ...", in any
    order) or, for numbers, name as a range ("a power of two from 16 to 65536")."""
    if isinstance(says, str):
        return None if says in message else f"its message does not say {says!r}"
    offered_text = message.split(", found ", 1)[0]
    if all(isinstance(v, str) for v in says):
        if not offered_text.startswith("expected one of "):
            offered_text = offered_text.split(" or ", 1)[0]  # "auto" or an integer ...
        offered = re.findall(r'"([^"]*)"', offered_text)
    elif offered_text.startswith("expected one of "):
        offered = [int(v) for v in re.findall(r"-?\d+", offered_text)]
    else:
        span = f"from {min(says)} to {max(says)}"
        return None if span in message else f"its message does not say {span!r}"
    if set(offered) != set(says):
        return f"it offers {sorted(offered)}, the schema {sorted(says)}"
    return None


# Hand-written: values with no generic rule (patterns, sizes of arrays, missing keys), each as
# (JSON path in the minimal config, value or DELETE, what, where the error is when not there).
DELETE = object()
MINIMAL = {
    "listeners": [{"address": "127.0.0.1:8080"}],
    "upstreams": [{"name": "api", "endpoints": ["127.0.0.1:9000"]}],
    "routes": [
        {"match": {"path": "/"}, "respond": {"status": 200}},
        {"match": {"path_prefix": "/api/"}, "proxy": {"upstream": "api"}},
    ],
}
HAND_WRITTEN = [
    (["listeners"], [], "no listener", None),
    (["listeners", 0, "address"], "127.0.0.1", "an address without a port", None),
    (["listeners", 0, "address"], "localhost:8080", "a listener address that is a name", None),
    # A missing key is reported at the object that lacks it.
    (["listeners", 0, "address"], DELETE, "a listener without an address", ["listeners", 0]),
    (["routes", 0, "match", "path"], "no-slash", "a path without '/'", None),
    (["routes", 0, "match"], DELETE, "a route without match", ["routes", 0]),
    (["routes", 0, "respond", "status"], 99, "a status below 200", None),
    (["routes", 0, "respond", "headers"], {"Content-Length": "1"}, "a framing header",
     ["routes", 0, "respond", "headers", "Content-Length"]),
    (["upstreams", 0, "name"], "bad name", "an upstream name with a space", None),
    (["upstreams", 0, "endpoints"], [], "an upstream without endpoints", None),
    (["workers"], "4", "workers as a string", None),
    (["routes", 1, "proxy", "upstream"], 3, "an upstream name that is a number", None),
]


def apply(doc, ipath, value):
    """A copy of `doc` with the value at `ipath` set, or removed (when there) with DELETE."""
    out = copy.deepcopy(doc)
    obj = out
    for p in ipath[:-1]:
        obj = obj[p]
    if value is DELETE:
        obj.pop(ipath[-1], None)
    else:
        obj[ipath[-1]] = value
    return out


def expect_both_reject(schema, mat, blitzd, res, doc, error_path, case, says=""):
    errors = schema_errors(schema, doc)
    # At the value or inside it; a key refused by propertyNames is reported at its object.
    at = [e for e in error_tree(errors)
          if list(e.absolute_path)[:len(error_path)] == error_path or
          ("propertyNames" in e.absolute_schema_path and
           list(e.absolute_path) == error_path[:-1])]
    res.check(at, f"{case}: the schema rejects it",
              f"no schema error at {json_path(error_path)}; errors: {describe_errors(errors)}")
    path, _ = mat.write(doc, "invalid")
    code, out, err = blitzd.check(path)
    first = err.split("\n", 1)[0]
    prefix = re.match(re.escape(path) + r":\d+:\d+: " + re.escape(json_path(error_path)) + ": ",
                      first)
    ok = res.check(code == 1 and out == "" and prefix is not None,
                   f"{case}: blitzd rejects it at {json_path(error_path)}",
                   f"exit {code}, stdout {out!r}, stderr {err.strip()[:400]!r}")
    if ok and says:
        why = message_agrees(first[prefix.end():], says)
        res.check(why is None, f"{case}: blitzd's message agrees with the schema",
                  f"{why}: {first[prefix.end():][:300]!r}")


def check_invalid_values(schema, configs, mat, blitzd, res):
    # One object of each schema kind, from the first (smallest first) config that has it.
    by_size = sorted(configs, key=lambda c: len(json.dumps(c[1])))
    seen = set()
    cases = 0
    for name, doc in by_size:
        for ipath, pointer, node in schema.objects_of(doc):
            if pointer in seen:
                continue
            seen.add(pointer)
            # Keys of which the object takes exactly one ("present" or "absent" of a matcher):
            # the bad value replaces whichever the example has, so it is the only error.
            exclusive = [k for alt in node.get("oneOf", []) for k in alt.get("required", [])]
            for key, prop in node["properties"].items():
                others = [ipath + [k] for k in exclusive if k != key] if key in exclusive else []
                for label, value, says in bad_values(schema.scalar_kinds(prop)):
                    cases += 1
                    case = f"invalid: {json_path(ipath + [key])} = {json.dumps(value)}, {label} " \
                           f"({pointer or 'root'}, in {name})"
                    mutated = apply(doc, ipath + [key], value)
                    for other in others:
                        mutated = apply(mutated, other, DELETE)
                    expect_both_reject(schema, mat, blitzd, res, mutated, ipath + [key], case,
                                       says)
    res.note(f"note: {cases} generated out-of-range and wrong-type values")
    errors = schema_errors(schema, MINIMAL)
    res.check(not errors, "invalid: the minimal config is valid", describe_errors(errors))
    for ipath, value, label, error_path in HAND_WRITTEN:
        expect_both_reject(schema, mat, blitzd, res, apply(MINIMAL, ipath, value),
                           error_path or ipath, f"invalid: {label} ({json_path(ipath)})")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--blitzd", required=True, help="the blitzd executable")
    ap.add_argument("--source-dir", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--verbose", "-v", action="store_true", help="print passing cases too")
    args = ap.parse_args()
    source = args.source_dir
    res = Results(args.verbose)

    with open(os.path.join(source, "docs", "config.schema.json")) as f:
        schema = Schema(json.load(f))
    if not check_schema_itself(schema, res):
        # The rest walks the schema: with a broken one it would only add noise.
        print(f"{res.passed} passed, {res.failed} failed")
        return 1

    configs = whole_configs(source, res)
    # Variables the configs use are unset, so each ${VAR:-default} takes its default.
    texts = json.dumps([doc for _, doc in configs])
    env = {k: v for k, v in os.environ.items() if k not in set(ENV_VAR.findall(texts))}
    blitzd = Blitzd(os.path.abspath(args.blitzd), env)
    with tempfile.TemporaryDirectory(prefix="blitz-schema-") as workdir:
        mat = Materializer(schema, workdir)
        check_valid(schema, configs, mat, blitzd, res)
        check_unknown_keys(schema, configs, mat, blitzd, res)
        check_invalid_values(schema, configs, mat, blitzd, res)
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
