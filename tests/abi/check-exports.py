#!/usr/bin/env python3
"""check-exports.py - the exported symbols of libtpool agree with the headers and the map.

Three lists must agree:
  (a) the declarations marked TP_API in include/thread_pool.h, include/thread_pool_inline.h and
      include/thread_pool_task.h
      (and those marked by a macro that is defined as TP_API, such as TP__FORK_JOIN: tp_spawn and
      tp_join are exported functions even though the header makes them inline by default);
  (b) the global names of the version script src/thread_pool.map, node by node;
  (c) the dynamic symbols the built shared library defines (readelf --dyn-syms), with the version
      node each one carries.

Rules checked:
  - the map ends every list of names with `local: *;` in some node, so nothing else leaks out,
    and names no symbol with a wildcard, nor any name twice;
  - every TP_API declaration is in the map, and every name of the map is declared TP_API;
  - the library exports exactly the names of the map, each with the version node the map gives
    it, functions as functions and variables as variables (the thread-local one as TLS), and
    defines exactly the map's version nodes;
  - beyond the public API of thread_pool.h, only the internal symbols that the inline fork-join
    paths of thread_pool_inline.h call (INTERNAL below) are exported. A new one is an ABI promise
    (programs compiled with the inline paths call it): add it to INTERNAL only on purpose.

Usage: check-exports.py --lib build/src/libtpool.so [--map src/thread_pool.map]
                        [--header FILE]... [--source-root DIR] [--readelf PROGRAM]
       check-exports.py --self-test ...   (the same arguments: shows that each rule can fail)
Exit status: 0 if everything agrees, 1 otherwise (each disagreement is printed), 2 on bad usage.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The symbols exported for the inline paths of thread_pool_inline.h, which are not public API.
INTERNAL = {
    "tp__spawn_slow": "function",
    "tp__join_slow": "function",
    "tp__self_deque": "variable",
    # The slow paths of the typed tasks' inline spawn and join (thread_pool_task.h).
    "tp__task_spawned_slow": "function",
    "tp__task_join_slow": "function",
    "tp__task_overflow": "function",
    "tp__task_run": "function",
}

# The marker of exported declarations in the headers.
MARKER = "TP_API"


def strip_comments(text):
    """Removes C comments (keeping line breaks) and the contents of string literals."""
    out = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text[i] in "\"'":
            quote = text[i]
            j = i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            out.append(quote + quote)
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def drop_balanced(text, keyword):
    """Removes every `keyword(...)` (balanced parentheses) from text."""
    while True:
        m = re.search(r"\b" + re.escape(keyword) + r"\s*\(", text)
        if not m:
            return text
        depth, j = 0, m.end() - 1
        while j < len(text):
            if text[j] == "(":
                depth += 1
            elif text[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        text = text[: m.start()] + " " + text[j + 1 :]


def parse_headers(paths):
    """Returns {name: (kind, header)} for the exported declarations of the headers.

    A declaration is exported when it starts with TP_API, `extern TP_API`, or with a macro that
    some header defines as TP_API. kind is "function" or "variable".
    """
    texts = {}
    markers = {MARKER}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            texts[path] = strip_comments(f.read())
        for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+" + MARKER + r"[ \t]*$",
                             texts[path], re.M):
            markers.add(m.group(1))

    decls = {}
    errors = []
    for path, text in texts.items():
        # Preprocessor lines (with their continuations) declare nothing.
        body = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", "", text, flags=re.M)
        marker_re = re.compile(r"\b(?:" + "|".join(sorted(markers)) + r")\b")
        for m in marker_re.finditer(body):
            end = m.end()
            while end < len(body) and body[end] not in ";{":
                end += 1
            decl = drop_balanced(body[m.end() : end], "__attribute__")
            decl = " ".join(decl.split())
            # A function's name is the identifier before the first parenthesis (macros such as
            # TP_PRINTF(3, 4) come after the parameter list); `(*name)` is a variable that
            # points to a function.
            pm = re.match(r"[^()]*\(\s*\*\s*([A-Za-z_]\w*)\s*\)", decl)
            fm = re.match(r"[^()]*?\b([A-Za-z_]\w*)\s*\(", decl)
            if pm:
                name, kind = pm.group(1), "variable"
            elif fm:
                name, kind = fm.group(1), "function"
            else:
                vm = re.search(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$", decl)
                if not vm:
                    errors.append(f"{os.path.basename(path)}: cannot read the declaration "
                                  f"after {m.group(0)}: {decl!r}")
                    continue
                name, kind = vm.group(1), "variable"
            if name in decls and decls[name][0] != kind:
                errors.append(f"{name}: declared both as a {decls[name][0]} and as a {kind}")
            decls.setdefault(name, (kind, os.path.basename(path)))
    return decls, errors


def parse_map(path):
    """Returns (nodes, globals, has_local_star, errors).

    nodes maps each version node to the node it inherits from (None if none), in order; globals
    maps each exported name to its node.
    """
    with open(path, encoding="utf-8") as f:
        text = strip_comments(f.read())
    text = re.sub(r"#[^\n]*", "", text)  # ld also takes # comments in version scripts
    nodes, names, errors = {}, {}, []
    has_local_star = False
    for m in re.finditer(r"([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*([\w.]*)\s*;", text, re.S):
        node, body = m.group(1), m.group(2)
        nodes[node] = m.group(3) or None
        section = "global"
        for item in re.split(r";", body):
            item = item.strip()
            if not item:
                continue
            sm = re.match(r"(global|local)\s*:\s*(.*)$", item, re.S)
            if sm:
                section, item = sm.group(1), sm.group(2).strip()
                if not item:
                    continue
            if section == "local":
                if item == "*":
                    has_local_star = True
                continue
            if re.search(r"[*?\[\]]", item) or item.startswith("extern"):
                errors.append(f"map: node {node}: '{item}' is a pattern, not a name: every "
                              f"exported symbol must be listed by name")
                continue
            if item in names:
                errors.append(f"map: {item} is listed twice (nodes {names[item]} and {node})")
                continue
            names[item] = node
    if not nodes:
        errors.append("map: no version node found")
    return nodes, names, has_local_star, errors


def parse_library(path, readelf):
    """Returns ({name: (type, version)}, {node: parent}, soname) for the library's exports."""

    def run(*opts):
        return subprocess.run([readelf, "-W", *opts, path], check=True,
                              capture_output=True, text=True).stdout

    # The version nodes the library defines (.gnu.version_d), less the base one (its soname).
    nodes, last = {}, None
    in_defs = False
    for line in run("-V").splitlines():
        if line.startswith("Version definition section"):
            in_defs = True
        elif line.startswith("Version ") or not line.strip():
            in_defs = in_defs and not line.startswith("Version ")
        elif in_defs:
            dm = re.search(r"Flags:\s*(\S+).*Name:\s*(\S+)", line)
            pm = re.search(r"Parent \d+:\s*(\S+)", line)
            if dm:
                last = None if "BASE" in dm.group(1) else dm.group(2)
                if last:
                    nodes[last] = None
            elif pm and last:
                nodes[last] = pm.group(1)

    exports = {}
    for line in run("--dyn-syms").splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) < 8 or not f[0].endswith(":") or not f[0][:-1].isdigit():
            continue
        sym_type, bind, ndx, name = f[3], f[4], f[6], f[7]
        if ndx == "UND" or bind == "LOCAL":
            continue
        version = None
        if "@" in name:
            name, _, version = name.partition("@")
            version = version.lstrip("@")
        if ndx == "ABS" and name in nodes and version in (None, name):
            continue  # the symbol that stands for a version node
        exports[name] = (sym_type, version)

    sm = re.search(r"\(SONAME\).*\[(.*)\]", run("-d"))
    return exports, nodes, sm.group(1) if sm else None


def check(headers, map_path, lib, readelf):
    """Prints every disagreement; returns the number found."""
    problems = []
    decls, errors = parse_headers(headers)
    problems += errors
    nodes, mapped, has_local_star, errors = parse_map(map_path)
    problems += errors
    exports, lib_nodes, soname = parse_library(lib, readelf)

    if not has_local_star:
        problems.append("map: no `local: *;`: every global symbol of the library would be "
                        "exported, internal ones included")

    # (a) against the internal allow-list.
    public_header = os.path.basename(headers[0])
    for name, (kind, header) in sorted(decls.items()):
        if name in INTERNAL:
            if INTERNAL[name] != kind:
                problems.append(f"{header}: {name} is a {kind}, the allow-list says "
                                f"{INTERNAL[name]}")
        elif name.startswith("tp__"):
            problems.append(f"{header}: {name} is internal (tp__) but declared {MARKER}: only "
                            f"{', '.join(sorted(INTERNAL))} may be exported beyond the API; if "
                            f"the inline paths need it, add it to INTERNAL in check-exports.py")
        elif header != public_header:
            problems.append(f"{header}: {name} is declared {MARKER} outside {public_header}")
    for name in sorted(set(INTERNAL) - set(decls)):
        problems.append(f"{name} is on the internal allow-list but no header declares it "
                        f"{MARKER}: take it off the list in check-exports.py")

    # (a) against (b).
    for name in sorted(set(decls) - set(mapped)):
        problems.append(f"{name}: declared {MARKER} in {decls[name][1]} but not in the map "
                        f"(it would not be exported)")
    for name in sorted(set(mapped) - set(decls)):
        problems.append(f"{name}: in the map (node {mapped[name]}) but not declared {MARKER} "
                        f"in the headers")

    # (b) against (c).
    for name in sorted(set(mapped) - set(exports)):
        problems.append(f"{name}: in the map (node {mapped[name]}) but the library does not "
                        f"export it")
    for name in sorted(set(exports) - set(mapped)):
        problems.append(f"{name}: exported by the library ({exports[name][0]}) but not in "
                        f"the map")
    for name in sorted(set(mapped) & set(exports)):
        sym_type, version = exports[name]
        if version != mapped[name]:
            problems.append(f"{name}: exported with version {version or '(none)'}, the map "
                            f"puts it in {mapped[name]}")
        kind = decls.get(name, (None,))[0]
        if kind == "function" and sym_type not in ("FUNC", "IFUNC"):
            problems.append(f"{name}: declared a function, exported as {sym_type}")
        if kind == "variable" and sym_type not in ("OBJECT", "TLS", "COMMON"):
            problems.append(f"{name}: declared a variable, exported as {sym_type}")
    if nodes != lib_nodes:
        def show(d):
            return ", ".join(f"{n}" + (f" (from {p})" if p else "") for n, p in sorted(d.items()))
        problems.append(f"version nodes: the map defines {show(nodes)}; the library "
                        f"{show(lib_nodes) or 'none'}")

    for p in problems:
        print("FAIL: " + p)
    by_node = {}
    for name, node in mapped.items():
        by_node.setdefault(node, []).append(name)
    summary = ", ".join(f"{node} {len(by_node.get(node, []))}" for node in nodes)
    internal = len(set(INTERNAL) & set(exports))
    print(f"{os.path.basename(lib)} ({soname}): {len(exports)} exported symbols ({summary}; "
          f"{internal} internal for the inline paths), {len(decls)} {MARKER} declarations, "
          f"{len(mapped)} map names: {'agree' if not problems else f'{len(problems)} problems'}")
    return len(problems)


def self_test(headers, map_path, lib, readelf):
    """Runs the check on altered copies of the map and the header: each alteration must fail."""
    with open(map_path, encoding="utf-8") as f:
        map_text = f.read()
    with open(headers[0], encoding="utf-8") as f:
        header_text = f.read()
    first = re.search(r"global:\s*(\w+);", map_text)
    name = first.group(1)
    cases = [
        ("map names an extra function",
         map_text.replace(f"{name};", f"{name};\n\ttp_not_declared;", 1), header_text),
        ("map drops a function", map_text.replace(f"\t{name};\n", "", 1), header_text),
        ("map without local: *", re.sub(r"local:\s*\*\s*;", "", map_text), header_text),
        ("map exports by pattern", map_text.replace(f"{name};", "tp_*;", 1), header_text),
        ("header declares an extra function", map_text,
         header_text.replace("#endif /* THREAD_POOL_H */",
                             "TP_API int tp_not_exported(void);\n#endif /* THREAD_POOL_H */")),
        ("header exports an internal name", map_text,
         header_text.replace("#endif /* THREAD_POOL_H */",
                             "TP_API int tp__private(void);\n#endif /* THREAD_POOL_H */")),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for title, map_copy, header_copy in cases:
            if map_copy == map_text and header_copy == header_text:
                print(f"self-test: {title}: could not alter the input")
                failures += 1
                continue
            m = os.path.join(tmp, "thread_pool.map")
            h = os.path.join(tmp, os.path.basename(headers[0]))
            with open(m, "w", encoding="utf-8") as f:
                f.write(map_copy)
            with open(h, "w", encoding="utf-8") as f:
                f.write(header_copy)
            print(f"--- self-test: {title}")
            found = check([h] + headers[1:], m, lib, readelf)
            if found == 0:
                print(f"self-test: {title}: NOT detected")
                failures += 1
    print(f"self-test: {len(cases) - failures} of {len(cases)} alterations detected")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", required=True, help="the built shared library (libtpool.so)")
    ap.add_argument("--source-root", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--map", help="the version script (default: SOURCE_ROOT/src/thread_pool.map)")
    ap.add_argument("--header", action="append",
                    help="a header to read (default: SOURCE_ROOT/include/thread_pool.h and "
                         "thread_pool_inline.h; the first one is the public header)")
    ap.add_argument("--readelf", default=shutil.which("readelf") or "readelf")
    ap.add_argument("--self-test", action="store_true",
                    help="check that altered copies of the map and header are caught")
    args = ap.parse_args()

    root = args.source_root
    map_path = args.map or os.path.join(root, "src", "thread_pool.map")
    headers = args.header or [os.path.join(root, "include", "thread_pool.h"),
                              os.path.join(root, "include", "thread_pool_inline.h"),
                              os.path.join(root, "include", "thread_pool_task.h")]
    for p in [map_path, args.lib] + headers:
        if not os.path.isfile(p):
            print(f"check-exports: {p}: no such file", file=sys.stderr)
            return 2
    if args.self_test:
        return 1 if self_test(headers, map_path, args.lib, args.readelf) else 0
    return 1 if check(headers, map_path, args.lib, args.readelf) else 0


if __name__ == "__main__":
    sys.exit(main())
