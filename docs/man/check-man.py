#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check-man.py: checks the manual pages of docs/man against the sources.

Each check is a test of its own (meson test --suite man):

  names     every function of the public headers (HEADERS: include/thread_pool.h,
            include/thread_pool_task.h) is in the NAME section of exactly one page; a NAME
            lists only functions (or function-like macros) of those headers; the pages and
            their aliases are those of pages.list, which meson.build installs.
  synopsis  a SYNOPSIS includes one of the public headers, and every declaration in it
            equals that header's (types, names, parameter names; comments, white space,
            TP_API, TP__FORK_JOIN, extern and TP_PRINTF aside), and declares the functions
            its NAME lists.
  errors    every errno name that the header's comment of a function (or of a function-like
            macro) mentions appears in its page, and every errno an ERRORS section lists comes
            from those comments.
  sections  the sections each page must have, in order; .TH; the roff source style (short
            lines, code written so that it renders as ASCII).
  xrefs     every reference name(n) points to a page here or to a standard system page;
            thread_pool(7) lists every section 3 page.
  render    groff -man -ww -z -rCHECKSTYLE=3 and man --warnings print nothing, and the
            pages fit 80 columns; skipped (77) without groff.
  examples  every EXAMPLES program (one with `int main`) compiles with -Wall -Wextra -Werror;
            with --library, it is also linked and run, and must exit 0.
  options   the options of tpool-demo(1) and tp-trace(1) are those of their sources, and the
            ENVIRONMENT of thread_pool(7) lists every variable the library reads.

Exit status: 0 when the check passes, 1 when it fails (each problem on a line of its own),
77 when it cannot run here (skipped), 2 for bad usage.
"""

import argparse
import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77

# Pages outside this project that the pages may refer to.
SYSTEM_PAGES = {
    "abort(3)", "clock_gettime(2)", "convert(1)", "errno(3)", "exit(3)", "fork(2)",
    "free(3)", "gzip(1)", "longjmp(3)", "malloc(3)", "nanosleep(2)", "pkg-config(1)",
    "printf(3)", "pthread_atfork(3)", "pthread_create(3)", "pthread_exit(3)",
    "pthread_sigmask(3)", "pthreads(7)", "python3(1)", "rsvg-convert(1)",
    "sched_getaffinity(2)", "signal(7)", "signal-safety(7)", "stdarg(3)", "strerror(3)",
}

# The sections of a page, in the order they must come; "required" ones must be there.
ORDER = {
    "1": ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT",
          "FILES", "NOTES", "BUGS", "EXAMPLES", "SEE ALSO"],
    "3": ["NAME", "SYNOPSIS", "DESCRIPTION", "RETURN VALUE", "ERRORS", "ENVIRONMENT",
          "FILES", "THREAD SAFETY", "NOTES", "BUGS", "EXAMPLES", "SEE ALSO"],
}
REQUIRED = {
    "1": ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"],
    "3": ["NAME", "SYNOPSIS", "DESCRIPTION", "RETURN VALUE", "THREAD SAFETY", "EXAMPLES",
          "SEE ALSO"],
    "7": ["NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "SEE ALSO"],
}

# The public headers, in include/, that the pages document (thread_pool_inline.h is private:
# thread_pool.h includes it). Names that begin with tp__ or TP__ are the library's own.
HEADERS = ["thread_pool.h", "thread_pool_task.h"]

ERRNO_NAMES = set(errno.errorcode.values())
MAX_SOURCE_LINE = 80
MAX_RENDERED_LINE = 80

# ------------------------------------------------------------------------------------------
# Reading roff (the subset of man(7) these pages use)
# ------------------------------------------------------------------------------------------

FONT_MACROS = {"B", "I", "R", "SM", "SB", "BI", "BR", "IB", "IR", "RB", "RI"}
NAMED_CHARS = {
    "aq": "'", "dq": '"', "ga": "`", "ha": "^", "ti": "~", "rs": "\\", "bu": "*",
    "lq": '"', "rq": '"', "oq": "'", "cq": "'", "em": "--", "en": "-", "hy": "-",
    "mi": "-", "co": "(C)", "rg": "(R)", "tm": "(TM)", "lt": "(", "rt": ")",
}


def unescape(text):
    """Plain text of a line of roff: escapes resolved, fonts and comments dropped."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c != "\\" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        e = text[i + 1]
        i += 2
        if e == '"':  # comment to the end of the line
            break
        if e in "-":
            out.append("-")
        elif e in "e\\":
            out.append("\\")
        elif e in "&%:|^c)":
            pass
        elif e in " ~0":
            out.append(" ")
        elif e == "f":
            if text[i:i + 1] == "(":
                i += 3
            elif text[i:i + 1] == "[":
                i = text.index("]", i) + 1
            else:
                i += 1
        elif e == "(":
            out.append(NAMED_CHARS.get(text[i:i + 2], "?"))
            i += 2
        elif e == "[":
            end = text.index("]", i)
            out.append(NAMED_CHARS.get(text[i:end], "?"))
            i = end + 1
        elif e == "*":
            if text[i:i + 1] == "(":
                i += 3
            elif text[i:i + 1] == "[":
                i = text.index("]", i) + 1
            else:
                i += 1
        elif e in "sk":
            while i < n and (text[i] in "+-0123456789"):
                i += 1
        else:
            out.append(e)
    return "".join(out)


def macro_args(rest):
    """The arguments of a macro call, as roff splits them (quotes; "" is a quote)."""
    args = []
    i = 0
    n = len(rest)
    while i < n:
        while i < n and rest[i] == " ":
            i += 1
        if i >= n:
            break
        if rest[i] == '"':
            i += 1
            arg = []
            while i < n:
                if rest[i] == '"':
                    if i + 1 < n and rest[i + 1] == '"':
                        arg.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                if rest[i] == "\\" and i + 1 < n:
                    arg.append(rest[i:i + 2])
                    i += 2
                    continue
                arg.append(rest[i])
                i += 1
            args.append("".join(arg))
        else:
            j = i
            while j < n and rest[j] != " ":
                j += 2 if rest[j] == "\\" else 1
            args.append(rest[i:j])
            i = j
    return args


def split_macro(line):
    """(name, args) for a request or macro line, else (None, None)."""
    if not line.startswith((".", "'")):
        return None, None
    body = line[1:].lstrip()
    if body.startswith('\\"') or body == "":
        return "\\\"", []
    name, _, rest = body.partition(" ")
    return name, macro_args(rest)


def line_text(line):
    """The text a line contributes, or None for a structural request (.PP, .TP, ...)."""
    name, args = split_macro(line)
    if name is None:
        return unescape(line)
    if name in FONT_MACROS:
        sep = " " if name in ("B", "I", "R", "SM", "SB") else ""
        return unescape(sep.join(args))
    return None


def tag_lines(lines):
    """The (number, line) of each tag line of a .TP list: the line right after each .TP."""
    tag_next = False
    for no, line in lines:
        if split_macro(line)[0] == "TP":
            tag_next = True
        elif tag_next:
            tag_next = False
            yield no, line


class Page:
    def __init__(self, path):
        self.path = path
        self.file = os.path.basename(path)
        self.stem, _, self.section = self.file.rpartition(".")
        with open(path, encoding="utf-8") as f:
            self.lines = f.read().split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.th = None
        self.sections = []  # [title, [(lineno, line)]]
        for no, line in enumerate(self.lines, 1):
            name, args = split_macro(line)
            if name == "TH" and self.th is None:
                self.th = [unescape(a) for a in args]
            elif name == "SH":
                self.sections.append([unescape(" ".join(args)).strip(), []])
            elif self.sections:
                self.sections[-1][1].append((no, line))

    def section_titles(self):
        return [s[0] for s in self.sections]

    def get(self, title):
        for t, lines in self.sections:
            if t == title:
                return lines
        return None

    def regions(self, lines):
        """Splits lines into (is_code, [(no, line)]) runs: .nf/.fi and .EX/.EE are code."""
        out = []
        code = False
        for no, line in lines:
            name, _ = split_macro(line)
            if name in ("nf", "EX"):
                code = True
                out.append((True, []))
                continue
            if name in ("fi", "EE"):
                code = False
                out.append((False, []))
                continue
            if not out or out[-1][0] != code:
                out.append((code, []))
            out[-1][1].append((no, line))
        return out

    def prose(self, skip=("SYNOPSIS", "EXAMPLES")):
        """(no, text) of the lines outside code regions and outside the `skip` sections."""
        for title, lines in self.sections:
            if title in skip:
                continue
            for code, run in self.regions(lines):
                if code:
                    continue
                for no, line in run:
                    t = line_text(line)
                    if t is not None:
                        yield no, t

    def names(self):
        """The names the NAME section lists, and the problem with it if any."""
        lines = self.get("NAME")
        if not lines:
            return [], "no NAME section"
        raw = " ".join(line for _, line in lines if not line.startswith("."))
        if " \\- " not in raw:
            return [], "NAME has no ' \\- ' between the names and the summary"
        names = unescape(raw.split(" \\- ", 1)[0])
        return [n.strip() for n in names.split(",") if n.strip()], None


class Checker:
    def __init__(self, args):
        self.args = args
        self.problems = []
        self.man_dir = args.man_dir
        self.src = args.source_root
        self.pages = {}
        for name in sorted(os.listdir(self.man_dir)):
            if re.fullmatch(r"[\w.+-]+\.[1-8]", name):
                self.pages[name] = Page(os.path.join(self.man_dir, name))
        self.list_path = os.path.join(self.man_dir, "pages.list")
        self.listed = self.read_list()
        # Per header: its declarations; over all of them: the functions, the macros, the
        # comment of each, and the header that declares each name.
        self.decls = {}
        self.functions, self.macros, self.comments, self.home = set(), set(), {}, {}
        for header in HEADERS:
            with open(os.path.join(self.src, "include", header), encoding="utf-8") as f:
                decls, functions, macros, comments = parse_header(f.read())
            self.decls[header] = decls
            self.functions |= functions
            self.macros |= macros
            self.comments.update(comments)
            for n in functions | macros:
                self.home[n] = "include/" + header

    def fail(self, where, message):
        self.problems.append(f"{where}: {message}")

    def read_list(self):
        listed = []
        with open(self.list_path, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                words = line.split()
                if not words or words[0].startswith("#"):
                    continue
                listed.append((no, words[0], words[1:]))
        return listed

    # ---- names ----

    def check_names(self):
        where = os.path.relpath(self.list_path, self.src)
        listed_pages = {}
        aliases_seen = {}
        for no, page, aliases in self.listed:
            if page in listed_pages:
                self.fail(f"{where}:{no}", f"{page} is listed twice")
            listed_pages[page] = aliases
            if page not in self.pages:
                self.fail(f"{where}:{no}", f"{page}: no such page in {self.man_dir}")
            for a in aliases:
                key = a + "." + page.rpartition(".")[2]
                if key in aliases_seen or key in listed_pages or key in self.pages:
                    self.fail(f"{where}:{no}", f"alias {key} clashes with another page or alias")
                aliases_seen[key] = page
        for name in self.pages:
            if name not in listed_pages:
                self.fail(name, f"not listed in {where}, so not installed")

        owner = {}
        for name, page in self.pages.items():
            if page.th is None:
                self.fail(name, "no .TH line")
            names, problem = page.names()
            if problem:
                self.fail(name, problem)
                continue
            if page.stem not in names:
                self.fail(name, f"NAME does not list {page.stem}, the page's own name")
            if len(set(names)) != len(names):
                self.fail(name, "NAME lists a name twice")
            others = sorted(set(names) - {page.stem})
            if name in listed_pages and sorted(listed_pages[name]) != others:
                self.fail(name, f"the aliases in {where} ({' '.join(sorted(listed_pages[name]))})"
                          f" are not the other names of its NAME ({' '.join(others)})")
            if page.section == "3":
                for n in names:
                    if n in self.functions:
                        if n in owner:
                            self.fail(name, f"{n} is also documented by {owner[n]}")
                        owner[n] = name
                    elif n not in self.macros:
                        self.fail(name, f"NAME lists {n}, which is no function or macro of "
                                  "the public headers")
            elif names != [page.stem]:
                self.fail(name, f"NAME should list {page.stem} only")
        for fn in sorted(self.functions):
            if fn not in owner:
                self.fail(self.home[fn], f"{fn}() has no manual page (no NAME lists it)")
        print(f"{len(self.functions)} functions in the public headers, "
              f"{len(owner)} of them on the {len(self.pages)} pages")

        build = os.path.join(self.man_dir, "meson.build")
        try:
            with open(build, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            self.fail("docs/man/meson.build", e.strerror)
            return
        for needed in ("pages.list", "install_man", "install_symlink"):
            if needed not in text:
                self.fail("docs/man/meson.build", f"does not use {needed}: the pages and their "
                          "aliases would not all be installed")

    # ---- synopsis ----

    def check_synopsis(self):
        compared = 0
        for name, page in self.pages.items():
            lines = page.get("SYNOPSIS")
            if lines is None:
                continue  # reported by the sections check
            if page.section != "3":
                continue
            names, _ = page.names()
            declared = set()
            decls = {}  # those of the headers the SYNOPSIS includes
            for code, run in page.regions(lines):
                if not code:
                    continue
                text_lines = []
                for no, line in run:
                    t = line_text(line)
                    text_lines.append((no, "" if t is None else t))
                stmts = []
                buf, start = [], None
                for no, t in text_lines:
                    s = t.strip()
                    if s.startswith("#include"):
                        header = re.fullmatch(r"#include <([\w.]+)>", s)
                        if header and header.group(1) in HEADERS:
                            decls.update(self.decls[header.group(1)])
                        else:
                            self.fail(f"{name}:{no}", f"{s}: the pages include one of "
                                      f"{', '.join('<' + h + '>' for h in HEADERS)}")
                        continue
                    if s.startswith("#define"):
                        stmts.append((no, s))
                        continue
                    if start is None and s:
                        start = no
                    buf.append(t)
                    joined = strip_comments("\n".join(buf))
                    if joined.count("{") == joined.count("}") and joined.rstrip().endswith(";"):
                        stmts.append((start, joined))
                        buf, start = [], None
                rest = strip_comments("\n".join(buf)).strip()
                if rest:
                    self.fail(f"{name}:{start}", f"declaration without its ';': {norm(rest)}")
                for no, stmt in stmts:
                    key = decl_key(stmt)
                    if key is None:
                        self.fail(f"{name}:{no}", f"not a declaration the check knows: {norm(stmt)}")
                        continue
                    declared.add(key)
                    if key not in decls:
                        self.fail(f"{name}:{no}", f"{key[1]} is not declared in the header "
                                  "that the SYNOPSIS includes")
                        continue
                    want = decls[key]
                    got = norm(stmt)
                    compared += 1
                    if got != want:
                        self.fail(f"{name}:{no}", f"{key[1]} differs from the header:\n"
                                  f"    page:   {got}\n    header: {want}")
            if not decls:
                self.fail(name, "SYNOPSIS includes none of "
                          f"{', '.join('<' + h + '>' for h in HEADERS)}")
            for n in names:
                kind = "define" if n in self.macros else "function"
                if (kind, n) not in declared:
                    self.fail(name, f"SYNOPSIS does not declare {n}, which NAME lists")
            for kind, n in sorted(declared):
                if kind == "function" and n not in names:
                    self.fail(name, f"SYNOPSIS declares {n}(), which NAME does not list")
        print(f"{compared} declarations compared with the public headers")

    # ---- errors ----

    def check_errors(self):
        count = 0
        for name, page in self.pages.items():
            if page.section != "3":
                continue
            names, _ = page.names()
            expected = set()
            for n in names:
                expected |= set(re.findall(r"\bE[A-Z0-9]+\b", self.comments.get(n, ""))) \
                    & ERRNO_NAMES
            errors = page.get("ERRORS")
            if expected and errors is None:
                self.fail(name, f"no ERRORS section, but the header names "
                          f"{', '.join(sorted(expected))} for its functions")
            text = " ".join(t for _, t in page.prose())
            count += len(expected)
            for e in sorted(expected):
                if not re.search(r"\b" + e + r"\b", text):
                    self.fail(name, f"{e}, which the header names for its functions, appears "
                              "nowhere in the page")
            if errors is None:
                continue
            for no, line in tag_lines(errors):
                tag = (line_text(line) or "").strip()
                if tag in ERRNO_NAMES and tag not in expected:
                    self.fail(f"{name}:{no}", f"ERRORS lists {tag}, which the header's "
                              "comments of its functions do not name")
        print(f"{count} errno names of the header's comments looked for in the pages")

    # ---- sections ----

    def check_sections(self):
        for name, page in self.pages.items():
            titles = page.section_titles()
            sec = page.section
            if page.th is None or len(page.th) < 4:
                self.fail(name, ".TH needs a title, a section, a date and a source")
            else:
                if page.th[0] != page.stem or page.th[1] != sec:
                    self.fail(name, f".TH says {page.th[0]}({page.th[1]}), the file is "
                              f"{page.stem}({sec})")
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", page.th[2]):
                    self.fail(name, f".TH date {page.th[2]!r} is not YYYY-MM-DD")
                if self.args.version and page.th[3] != "tpool " + self.args.version:
                    self.fail(name, f".TH source {page.th[3]!r} is not 'tpool "
                              f"{self.args.version}' (the project's version)")
            if len(set(titles)) != len(titles):
                self.fail(name, "a section appears twice")
            for t in REQUIRED.get(sec, []):
                if t not in titles:
                    self.fail(name, f"no {t} section")
            if titles and titles[0] != "NAME":
                self.fail(name, "NAME is not the first section")
            if titles and titles[-1] != "SEE ALSO":
                self.fail(name, "SEE ALSO is not the last section")
            order = ORDER.get(sec)
            if order:
                known = [t for t in titles if t in order]
                for t in titles:
                    if t not in order:
                        self.fail(name, f"section {t!r} is not one of {', '.join(order)}")
                if known != sorted(known, key=order.index):
                    self.fail(name, f"sections out of order: {', '.join(titles)} "
                              f"(expected the order {', '.join(order)})")
            self.check_style(name, page)

    def check_style(self, name, page):
        code = False
        for no, line in enumerate(page.lines, 1):
            where = f"{name}:{no}"
            if len(line) > MAX_SOURCE_LINE:
                self.fail(where, f"line longer than {MAX_SOURCE_LINE} characters")
            if line != line.rstrip():
                self.fail(where, "trailing white space")
            macro, _ = split_macro(line)
            if macro in ("nf", "EX"):
                code = True
            elif macro in ("fi", "EE"):
                code = False
            if macro == "\\\"":
                continue
            if line == "" and not code:
                self.fail(where, "blank line outside code: use .PP")
            bare = re.sub(r"\\.", "", re.sub(r"\\[(][a-z]{2}|\\\[[^]]*\]|\\f.", "", line))
            if code and ("'" in bare or "-" in bare or "`" in bare):
                self.fail(where, "in code, write - as \\- and ' as \\(aq (and no `), "
                          "so that it renders as ASCII")
            if not code and macro not in ("TH",) and re.search(r"(?:^|[\s\[(|])--?[A-Za-z]", bare):
                self.fail(where, "an option or minus written with -: write \\-")

    # ---- cross references ----

    def known_pages(self):
        known = set()
        for name, page in self.pages.items():
            known.add(f"{page.stem}({page.section})")
        for _, page, aliases in self.listed:
            stem, _, sec = page.rpartition(".")
            for a in aliases:
                known.add(f"{a}({sec})")
        return known

    def check_xrefs(self):
        known = self.known_pages()
        for name, page in self.pages.items():
            for no, text in page.prose(skip=("SYNOPSIS", "EXAMPLES", "SEE ALSO")):
                for ref in re.findall(r"([A-Za-z_][\w.+-]*\([1-8][a-z]*\))", text):
                    if ref not in known and ref not in SYSTEM_PAGES:
                        self.fail(f"{name}:{no}", f"{ref}: no such page here, and not one of the "
                                  "standard pages the check knows")
            see = page.get("SEE ALSO")
            if not see:
                continue
            text = " ".join(line_text(line) or "" for _, line in see)
            refs = re.findall(r"([A-Za-z_][\w.+-]*\([1-8][a-z]*\))", text)
            rest = re.sub(r"([A-Za-z_][\w.+-]*\([1-8][a-z]*\))", "", text)
            if rest.replace(",", "").strip():
                self.fail(name, f"SEE ALSO holds more than references: {rest.strip()!r}")
            if len(set(refs)) != len(refs):
                self.fail(name, "SEE ALSO lists a page twice")
            for ref in refs:
                if ref == f"{page.stem}({page.section})":
                    self.fail(name, "SEE ALSO lists the page itself")
                elif ref not in known and ref not in SYSTEM_PAGES:
                    self.fail(name, f"SEE ALSO: {ref}: no such page here, and not one of the "
                              "standard pages the check knows")
            if page.section == "3" and "thread_pool(7)" not in refs:
                self.fail(name, "SEE ALSO does not list thread_pool(7)")
            if page.file == "thread_pool.7":
                for other in self.pages.values():
                    ref = f"{other.stem}({other.section})"
                    if other.section == "3" and ref not in refs:
                        self.fail(name, f"SEE ALSO does not list {ref}")

    # ---- rendering ----

    def check_render(self):
        groff = shutil.which("groff")
        if groff is None:
            print("groff not found: cannot check the rendering (skipped)")
            return SKIP
        man = shutil.which("man")
        if man is None:
            print("man not found: checking with groff only")
        env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80", MAN_KEEP_FORMATTING="0")
        env.pop("MANPAGER", None)
        env.pop("PAGER", None)
        for name, page in self.pages.items():
            r = subprocess.run([groff, "-man", "-ww", "-z", "-rCHECKSTYLE=3", page.path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            out = r.stdout.decode("utf-8", "replace").strip()
            if out or r.returncode != 0:
                self.fail(name, f"groff -man -ww -z -rCHECKSTYLE=3 (status {r.returncode}):\n"
                          + out)
            r = subprocess.run([groff, "-man", "-Tutf8", "-P-cbou", page.path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            for k, line in enumerate(r.stdout.decode("utf-8", "replace").split("\n"), 1):
                if len(line.rstrip()) > MAX_RENDERED_LINE:
                    self.fail(name, f"rendered line {k} is wider than {MAX_RENDERED_LINE} "
                              f"columns: {line.strip()}")
            if man is not None:
                r = subprocess.run([man, "--warnings", "-E", "UTF-8", "-l", page.path],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                err = r.stderr.decode("utf-8", "replace").strip()
                if err or r.returncode != 0:
                    self.fail(name, f"man --warnings -E UTF-8 -l (status {r.returncode}):\n"
                              + err)
        return None

    # ---- examples ----

    def examples(self, page):
        lines = page.get("EXAMPLES")
        if lines is None:
            return []
        progs = []
        for code, run in page.regions(lines):
            if not code:
                continue
            src = "\n".join(unescape(line) for _, line in run
                            if split_macro(line)[0] is None) + "\n"
            if re.search(r"\bint\s+main\s*\(", src):
                progs.append((run[0][0] if run else 0, src))
        return progs

    def check_examples(self):
        cc = self.args.cc or [os.environ.get("CC", "cc")]
        if shutil.which(cc[0]) is None:
            print(f"{cc[0]} not found: cannot compile the examples (skipped)")
            return SKIP
        include = self.args.include or os.path.join(self.src, "include")
        flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-I" + include]
        library = self.args.library
        count = 0
        with tempfile.TemporaryDirectory(prefix="check-man-") as tmp:
            for name, page in self.pages.items():
                if page.section == "3" and not self.examples(page):
                    self.fail(name, "EXAMPLES holds no complete program (with int main)")
                for k, (no, src) in enumerate(self.examples(page)):
                    count += 1
                    c = os.path.join(tmp, f"{page.stem}-{k}.c")
                    with open(c, "w", encoding="utf-8") as f:
                        f.write(src)
                    r = subprocess.run(cc + flags + ["-fsyntax-only", c], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
                    if r.returncode != 0:
                        self.fail(f"{name}:{no}", "the example does not compile:\n"
                                  + r.stdout.decode("utf-8", "replace"))
                        continue
                    if not library:
                        continue
                    exe = c[:-2]
                    r = subprocess.run(cc + flags + [c, "-o", exe, library, "-pthread",
                                                     "-rdynamic"],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                    if r.returncode != 0:
                        self.fail(f"{name}:{no}", "the example does not link:\n"
                                  + r.stdout.decode("utf-8", "replace"))
                        continue
                    env = dict(os.environ)
                    libdir = os.path.dirname(os.path.abspath(library))
                    env["LD_LIBRARY_PATH"] = libdir + (
                        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
                    for var in ("TP_NUM_THREADS", "TP_LOG_LEVEL", "TP_TRACE",
                                "TP_TRACE_MAX_EVENTS"):
                        env.pop(var, None)
                    try:
                        r = subprocess.run([exe], cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           timeout=60)
                    except subprocess.TimeoutExpired:
                        self.fail(f"{name}:{no}", "the example did not finish in 60 s")
                        continue
                    if r.returncode != 0:
                        self.fail(f"{name}:{no}", f"the example exits with {r.returncode}:\n"
                                  + r.stdout.decode("utf-8", "replace"))
        print(f"{count} example programs compiled" + (" and run" if library else ""))
        return None

    # ---- programs and environment ----

    def documented_options(self, name):
        page = self.pages.get(name)
        if page is None:
            self.fail(name, "missing")
            return set()
        lines = page.get("OPTIONS") or []
        found = set()
        for _, line in tag_lines(lines):
            found |= set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", line_text(line) or ""))
        return found

    def check_options(self):
        main_c = os.path.join(self.src, "src", "cli", "main.c")
        with open(main_c, encoding="utf-8") as f:
            text = f.read()
        code = set("--" + m for m in re.findall(r'\{\s*"([\w-]+)",\s*\w+_argument', text))
        short = re.search(r'getopt_long\([^"]*"([^"]*)"', text)
        if short:
            code |= set("-" + c for c in short.group(1) if c.isalnum())
        self.compare_options("tpool-demo.1", code, "src/cli/main.c")

        tool = os.path.join(self.src, "tools", "tp-trace")
        with open(tool, encoding="utf-8") as f:
            text = f.read()
        code = {"-h", "--help"}  # argparse's own
        for call in re.findall(r"add_argument\(([^)]*)\)", text):
            code |= set(re.findall(r'"(--?[\w-]+)"', call))
        self.compare_options("tp-trace.1", code, "tools/tp-trace")

        variables = set()
        src_dir = os.path.join(self.src, "src")
        for fname in sorted(os.listdir(src_dir)):
            if fname.endswith(".c"):
                with open(os.path.join(src_dir, fname), encoding="utf-8") as f:
                    variables |= set(re.findall(r'getenv\("(\w+)"\)', f.read()))
        page = self.pages.get("thread_pool.7")
        if page is None:
            self.fail("thread_pool.7", "missing")
            return
        documented = set()
        for _, line in tag_lines(page.get("ENVIRONMENT") or []):
            documented |= set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", line_text(line) or ""))
        for v in sorted(variables - documented):
            self.fail("thread_pool.7", f"ENVIRONMENT does not describe {v}, which src/ reads")
        for v in sorted(documented - variables):
            self.fail("thread_pool.7", f"ENVIRONMENT describes {v}, which src/ does not read")

    def compare_options(self, name, code, source):
        documented = self.documented_options(name)
        for o in sorted(code - documented):
            self.fail(name, f"OPTIONS does not describe {o}, an option of {source}")
        for o in sorted(documented - code):
            self.fail(name, f"OPTIONS describes {o}, which {source} does not have")


# ------------------------------------------------------------------------------------------
# Reading the header
# ------------------------------------------------------------------------------------------


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def norm(decl):
    """A declaration in one canonical spelling: what differs only in spacing compares equal."""
    s = strip_comments(decl)
    s = re.sub(r"\bTP_PRINTF\s*\([^)]*\)", " ", s)
    s = re.sub(r"\b(TP_API|TP__FORK_JOIN|extern)\b", " ", s)
    s = " ".join(s.split())
    s = re.sub(r"\s*([(),;{}\[\]])\s*", r"\1", s)
    s = re.sub(r"\s*\*\s*", " *", s)
    s = re.sub(r"\(\s*\*", "(*", s)
    s = s.replace(",", ", ").replace("{", " { ").replace("}", " } ").replace(";", "; ")
    return " ".join(s.split()).replace("( *", "(*")


# A GNU attribute, __attribute__((...)), with one level of parentheses inside.
ATTRIBUTE = r"\b__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)"


def decl_key(stmt):
    """(kind, name) of a declaration: a function, a typedef or a macro; None if unknown."""
    s = " ".join(re.sub(ATTRIBUTE, " ", strip_comments(stmt)).split())
    m = re.match(r"#define\s+(\w+)", s)
    if m:
        return ("define", m.group(1))
    if s.startswith("typedef"):
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)", s)
        if m and "{" not in s:
            return ("typedef", m.group(1))
        m = re.search(r"(\w+)\s*;$", s)
        return ("typedef", m.group(1)) if m else None
    m = re.match(r"[^(]*?\b(\w+)\s*\(", s)
    return ("function", m.group(1)) if m else None


def parse_header(text):
    """The header's declarations {(kind, name): normalised text}, its public functions, its
    public function-like macros, and the comment above each of them (names that begin with
    tp__ or TP__ are private: left out)."""
    decls = {}
    functions = set()
    macros = set()
    comments = {}
    # Macros: "#define NAME(params)" heads, or "#define NAME value" whole (one line).
    for m in re.finditer(r"^#define[ \t]+(\w+)(\([^)]*\))?([^\n]*)$", text, flags=re.M):
        name, params, value = m.group(1), m.group(2), m.group(3)
        if name.startswith("TP__") or name.endswith("_H"):
            continue
        if params is not None:
            decls[("define", name)] = norm(f"#define {name}{params}")
            macros.add(name)
        else:
            decls[("define", name)] = norm(f"#define {name} {value.strip()}")
    body = strip_comments(text)
    body = re.sub(r"^#[^\n]*(\\\n[^\n]*)*", "", body, flags=re.M)
    for m in re.finditer(r"\b(?:TP_API|TP__FORK_JOIN)\s[^;{}]*?;", body):
        key = decl_key(m.group(0))
        if key and key[0] == "function" and not key[1].startswith("tp__"):
            decls[key] = norm(m.group(0))
            functions.add(key[1])
    for m in re.finditer(r"\btypedef\s+(?:struct|enum)\s+\w+\s*\{[^{}]*\}\s*\w+\s*;"
                         r"|\btypedef\s[^;{}]*;", body):
        key = decl_key(m.group(0))
        if key:
            decls[key] = norm(m.group(0))
    # The comment that ends just above each function's declaration or function-like macro's
    # definition (blank and #define lines between them are skipped).
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"#define[ \t]+(\w+)\(", line)
        if not m and re.match(r"\s*(?:TP_API|TP__FORK_JOIN)\s", line):
            m = re.match(r"[^(]*?\b(\w+)\s*\(", re.sub(ATTRIBUTE, " ", line))
        if not m or m.group(1) not in functions | macros:
            continue
        j = i - 1
        while j >= 0 and (lines[j].strip() == "" or lines[j].startswith("#define")):
            j -= 1
        if j < 0 or not lines[j].rstrip().endswith("*/"):
            continue
        k = j
        while k >= 0 and "/*" not in lines[k]:
            k -= 1
        comments[m.group(1)] = "\n".join(lines[k:j + 1])
    return decls, functions, macros, comments


CHECKS = ["names", "synopsis", "errors", "sections", "xrefs", "render", "examples", "options"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--source-root", required=True, help="the project's source directory")
    p.add_argument("--man-dir", help="the pages (default: SOURCE_ROOT/docs/man)")
    p.add_argument("--version", help="the project's version, which .TH must name")
    p.add_argument("--cc", action="append", help="the C compiler (repeat for each word)")
    p.add_argument("--include", help="the directory of thread_pool.h, for the examples")
    p.add_argument("--library", help="libtpool.so: link and run the examples with it")
    p.add_argument("checks", nargs="+", choices=CHECKS, metavar="CHECK",
                   help="one or more of: " + ", ".join(CHECKS))
    args = p.parse_args(argv)
    args.man_dir = args.man_dir or os.path.join(args.source_root, "docs", "man")
    checker = Checker(args)
    skipped = False
    for check in args.checks:
        if getattr(checker, "check_" + check)() == SKIP:
            skipped = True
    for problem in checker.problems:
        print(problem)
    if checker.problems:
        print(f"{len(checker.problems)} problem(s) found by: {' '.join(args.checks)}")
        return 1
    return SKIP if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
