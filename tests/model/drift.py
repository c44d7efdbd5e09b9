#!/usr/bin/env python3
"""drift.py - keeps the models' transcribed functions in step with the sources.

Some models run copies of functions that cannot run under Relacy (park.c sleeps on ck_ec,
future.c on a futex, worker.c needs the whole pool). Each copy in tests/model/*.hpp|*.cpp starts
with a comment

    /* transcribed from src/FILE.c: NAME (verbatim) */     or
    /* transcribed from src/FILE.c: NAME (changed: what and why) */

and ends at the first line that is "}". This script checks, for each:

  1. a verbatim copy is, line for line, the source's current definition of NAME;
  2. the source's current definition of NAME is the text stored in transcribed.txt, the text
     the copy was made from. A change in the source fails here until someone brings the copy up
     to date and runs `drift.py --update` to store the new text.

Usage: drift.py [--update] [SOURCE_ROOT]   (default: the repository holding this script)
Exit status: 0 in step, 1 drifted (the differences are printed), 2 bad input.
"""
import difflib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STORE = os.path.join(HERE, "transcribed.txt")
MARKER = re.compile(r"^/\* transcribed from (\S+): (\w+) \((verbatim|changed)")
HEADER = (
    "# tests/model/transcribed.txt - the source text each transcribed function of the models was\n"
    "# copied from, kept by tests/model/drift.py (--update rewrites it). Do not edit by hand.\n"
)


def definition(lines, name, where):
    """The lines of NAME's definition (signature to closing brace) in a C file."""
    start = re.compile(r"^[A-Za-z_].*\b" + re.escape(name) + r"\(")
    for i, line in enumerate(lines):
        if not start.match(line):
            continue
        # Up to the end of the signature: a prototype ends with ';', a definition is followed
        # by a line "{".
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith(";") and lines[j] != "{":
            j += 1
        if j >= len(lines) or lines[j] != "{":
            continue
        first = i - 1 if line.startswith(name + "(") else i
        for k in range(j, len(lines)):
            if lines[k] == "}":
                return lines[first : k + 1]
        break
    raise LookupError("%s: no definition of %s" % (where, name))


def copies():
    """(model file, source file, name, kind, the copy's lines) for every marked copy."""
    found = []
    for fn in sorted(os.listdir(HERE)):
        if not fn.endswith((".hpp", ".cpp")):
            continue
        lines = open(os.path.join(HERE, fn)).read().split("\n")
        for i, line in enumerate(lines):
            m = MARKER.match(line)
            if not m:
                continue
            j = i
            while "*/" not in lines[j]:
                j += 1
            k = j + 1
            while lines[k] != "}":
                k += 1
            found.append((fn, m.group(1), m.group(2), m.group(3), lines[j + 1 : k + 1]))
    return found


def load_store():
    stored = {}
    key = None
    if not os.path.exists(STORE):
        return stored
    for line in open(STORE).read().split("\n"):
        if line.startswith("==== "):
            key = tuple(line[5:].split(" ", 1))
            stored[key] = []
        elif key is not None:
            stored[key].append(line)
    for k in stored:
        while stored[k] and stored[k][-1] == "":
            stored[k].pop()
    return stored


def diff(a, b, name_a, name_b):
    return "".join(difflib.unified_diff([x + "\n" for x in a], [x + "\n" for x in b], name_a, name_b))


def main(argv):
    update = "--update" in argv
    args = [a for a in argv if a != "--update"]
    root = args[0] if args else os.path.dirname(os.path.dirname(HERE))
    sources = {}
    current = {}
    status = 0
    for fn, src, name, kind, copy in copies():
        if src not in sources:
            sources[src] = open(os.path.join(root, src)).read().split("\n")
        try:
            text = definition(sources[src], name, src)
        except LookupError as e:
            print("drift: %s (copied in tests/model/%s)" % (e, fn))
            status = 1
            continue
        current[(src, name)] = text
        if kind == "verbatim" and copy != text:
            print("drift: tests/model/%s: the verbatim copy of %s differs from %s:" % (fn, name, src))
            print(diff(text, copy, src, "tests/model/" + fn))
            status = 1
    if update:
        with open(STORE, "w") as out:
            out.write(HEADER)
            for (src, name) in sorted(current):
                out.write("==== %s %s\n%s\n" % (src, name, "\n".join(current[(src, name)])))
        print("drift: stored the text of %d functions in %s" % (len(current), STORE))
        return status
    stored = load_store()
    for key in sorted(current):
        if key not in stored:
            print("drift: %s %s is not in transcribed.txt (run drift.py --update once the copy is"
                  " reviewed)" % key)
            status = 1
        elif stored[key] != current[key]:
            print("drift: %s %s changed since it was transcribed; update the copy in tests/model,"
                  " then run drift.py --update:" % key)
            print(diff(stored[key], current[key], "transcribed.txt", key[0]))
            status = 1
    for key in sorted(set(stored) - set(current)):
        print("drift: transcribed.txt holds %s %s, which no model copies any more" % key)
        status = 1
    if status == 0:
        print("drift: %d transcribed functions in step with the sources" % len(current))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
