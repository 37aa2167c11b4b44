"""Runs the examples of README.md and compares what they print with what the README shows.

Usage: python3 tests/readme_examples.py [--update] [README.md]   (from anywhere; README.md of the repository root
       by default). --update rewrites the blocks whose output differs with what was printed (review the diff).

Which fenced blocks are examples (a block is three backticks and an info string at the start of a line):

  ```sql blocks holding a line that starts with "sqlite> " are sqlite3 shell transcripts. A transcript whose first
      line is "$ sqlite3 [ARGS]" starts a session: `sqlite3 -interactive ARGS` is run on the input lines (the text
      after the "sqlite> " and "   ...> " prompts) and must print the block exactly as written, prompts and echoed
      input included, errors in their place (in interactive mode the shell's readline echoes each input line after
      its prompt, and errors go to the same stream; the banner and the final prompt are left out). A transcript without the "$ sqlite3"
      line continues the session of the transcript before it: the session's blocks run as one shell, so that the
      README can explain a session in pieces.
  ```python blocks run with /usr/bin/python3 (Debian's, whose sqlite3 module loads extensions); ```js blocks with
      node, better-sqlite3 12 being installed by npm into build/node/ on first use (without node or npm the js
      blocks are skipped with a NOTE). What a program prints on stdout must equal the next fenced block when that
      one is a ```text block, else nothing; a program that fails (exit status other than 0) fails the check.
  A line "<!-- readme-check: skip -->" right before a block's opening fence leaves that block out (counted).

Everything runs in order in one fresh temporary directory holding build/vecstore.so (a link to the repository's
build) and tests/data (a link, when the repository has it), so that `.load ./build/vecstore` and
`load_extension("build/vecstore")` work as they do from the repository root, and files the examples write stay out
of the clone. Trailing spaces are ignored. Exit status 0 when every example printed what the README shows, else 1
with a diff per failing example that names README line numbers.
"""
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_MARK = "<!-- readme-check: skip -->"
FENCE = re.compile(r"^```(\S*)\s*$")
PROMPTS = ("sqlite> ", "   ...> ")
TIMEOUT = 120


class Block:
    def __init__(self, lang, start, lines, skip):
        self.lang = lang      # info string of the fence
        self.start = start    # README line number of the first line inside the fence
        self.lines = lines    # the lines inside the fence
        self.skip = skip


def read_blocks(path):
    """The fenced blocks of a Markdown file, in order."""
    with open(path, encoding="utf-8") as f:
        text = f.read().split("\n")
    blocks, i = [], 0
    while i < len(text):
        m = FENCE.match(text[i])
        if not m:
            i += 1
            continue
        skip = i > 0 and text[i - 1].strip() == SKIP_MARK
        j = i + 1
        while j < len(text) and text[j].rstrip() != "```":
            j += 1
        if j == len(text):
            raise SystemExit("%s:%d: unterminated code block" % (path, i + 1))
        blocks.append(Block(m.group(1), i + 2, text[i + 1:j], skip))
        i = j + 1
    return blocks


def input_of(line):
    """The input text of a transcript line with a prompt ("sqlite>" alone: an empty line), else None."""
    for prompt in PROMPTS:
        if line.startswith(prompt) or line.rstrip() == prompt.rstrip():
            return line[len(prompt):]
    return None


def is_transcript(block):
    return block.lang == "sql" and any(line.startswith("sqlite> ") for line in block.lines)


def prepare_workdir():
    work = tempfile.mkdtemp(prefix="vecstore-readme-")
    os.mkdir(os.path.join(work, "build"))
    os.symlink(os.path.join(ROOT, "build", "vecstore.so"), os.path.join(work, "build", "vecstore.so"))
    data = os.path.join(ROOT, "tests", "data")
    if os.path.isdir(data):
        os.mkdir(os.path.join(work, "tests"))
        os.symlink(data, os.path.join(work, "tests", "data"))
    return work


def compare(what, expected, actual):
    """expected: (README line number, text) pairs; actual: lines. Returns a report, or None when they agree."""
    want = [t.rstrip() for _, t in expected]
    got = [t.rstrip() for t in actual]
    if want == got:
        return None
    first = next((i for i in range(min(len(want), len(got))) if want[i] != got[i]), min(len(want), len(got)))
    where = expected[first][0] if first < len(expected) else (expected[-1][0] + 1 if expected else 0)
    diff = difflib.unified_diff(want, got, "README.md (%s)" % what, "printed", lineterm="", n=2)
    return "README.md:%d: %s: the output differs from the README (first difference here)\n%s" % (
        where, what, "\n".join(diff))


def shell_env(work):
    """The shell's readline echoes the input; a wide screen keeps it from wrapping long lines with escape codes.
    HOME and INPUTRC keep ~/.sqliterc, ~/.inputrc and the history file out of the run."""
    return dict(os.environ, LC_ALL="C.UTF-8", HOME=work, COLUMNS="4096", TERM="dumb", INPUTRC="/dev/null")


def run_session(work, blocks):
    """One sqlite3 shell session over a transcript and the transcripts continuing it."""
    first = blocks[0]
    args = shlex.split(first.lines[0][len("$ sqlite3"):])
    expected, inputs = [], []
    for b in blocks:
        body = b.lines[1:] if b is first else b.lines
        offset = 1 if b is first else 0
        for n, line in enumerate(body):
            expected.append((b.start + offset + n, line))
            if input_of(line) is not None:
                inputs.append(input_of(line))
    proc = subprocess.run(["sqlite3", "-interactive"] + args, cwd=work, input="\n".join(inputs) + "\n",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT,
                          env=shell_env(work))
    out = proc.stdout.split("\n")
    while out and not out[0].startswith("sqlite> "):  # the banner
        out.pop(0)
    while out and out[-1].strip() == "":
        out.pop()
    if out and out[-1].rstrip() == "sqlite>":  # the prompt that met the end of the input
        out.pop()
    # For --update: each block gets the printed lines from its first input line to the next block's (every input
    # line comes back as exactly one prompt line).
    prompt_at = [i for i, line in enumerate(out) if input_of(line) is not None]
    updates, n_input = [], 0
    for k, b in enumerate(blocks):
        begin = 0 if k == 0 else (prompt_at[n_input] if n_input < len(prompt_at) else len(out))
        n_input += sum(1 for line in b.lines if input_of(line) is not None)
        end = prompt_at[n_input] if k + 1 < len(blocks) and n_input < len(prompt_at) else len(out)
        updates.append((b, ([b.lines[0]] if k == 0 else []) + out[begin:end]))
    return compare("sqlite3 session of line %d" % first.start, expected, out), updates


def ensure_better_sqlite3():
    """NODE_PATH holding better-sqlite3 12 (installed into build/node/ by npm on first use), or None without node."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    prefix = os.path.join(ROOT, "build", "node")
    modules = os.path.join(prefix, "node_modules")
    if not os.path.isdir(os.path.join(modules, "better-sqlite3")):
        os.makedirs(prefix, exist_ok=True)
        print("readme: installing better-sqlite3@12 with npm into build/node (once)", flush=True)
        proc = subprocess.run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save",
                               "better-sqlite3@12"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError("npm install better-sqlite3@12 failed:\n" + proc.stdout[-3000:])
    return modules


def run_program(work, block, output, n, node_path):
    """A python or js block; output is the ```text block after it, or None."""
    name = "readme_example_%d.%s" % (n, "py" if block.lang == "python" else "js")
    with open(os.path.join(work, name), "w", encoding="utf-8") as f:
        f.write("\n".join(block.lines) + "\n")
    env = dict(os.environ, LC_ALL="C.UTF-8", HOME=work)
    if block.lang == "python":
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        cmd = [py, name]
    else:
        cmd = ["node", name]
        env["NODE_PATH"] = node_path
    proc = subprocess.run(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=TIMEOUT, env=env)
    what = "%s example of line %d" % (block.lang, block.start)
    if proc.returncode != 0:
        return "README.md:%d: %s exited with status %d:\n%s%s" % (
            block.start, what, proc.returncode, proc.stdout, proc.stderr), []
    expected = [(output.start + i, t) for i, t in enumerate(output.lines)] if output else []
    got = proc.stdout.split("\n")
    if got and got[-1] == "":
        got.pop()
    return compare(what, expected, got), [(output, got)] if output else []


def write_updates(readme, updates):
    """--update: replaces the contents of the given blocks by what the examples printed."""
    with open(readme, encoding="utf-8") as f:
        text = f.read().split("\n")
    for block, lines in sorted(updates, key=lambda u: -u[0].start):
        text[block.start - 1:block.start - 1 + len(block.lines)] = [t.rstrip() for t in lines]
    with open(readme, "w", encoding="utf-8") as f:
        f.write("\n".join(text))


def main():
    args = sys.argv[1:]
    update = "--update" in args
    args = [a for a in args if a != "--update"]
    readme = args[0] if args else os.path.join(ROOT, "README.md")
    if not os.path.exists(os.path.join(ROOT, "build", "vecstore.so")):
        print("readme: build/vecstore.so is missing (run make)")
        return 1
    blocks = read_blocks(readme)
    started = time.time()
    work = prepare_workdir()
    failures, counts, notes, updates = [], {"sqlite3": 0, "python": 0, "js": 0, "skipped": 0}, [], []
    node_path = False  # not looked up yet
    try:
        session = []
        todo = []  # (kind, payload) in README order
        for i, b in enumerate(blocks):
            if b.skip:
                counts["skipped"] += 1
                continue
            if is_transcript(b):
                if b.lines[0].startswith("$ sqlite3"):
                    session = [b]
                    todo.append(("sqlite3", session))
                elif session:
                    session.append(b)
                else:
                    failures.append("README.md:%d: a transcript without '$ sqlite3' continues no session" % b.start)
            elif b.lang in ("python", "js"):
                nxt = blocks[i + 1] if i + 1 < len(blocks) else None
                todo.append((b.lang, (b, nxt if nxt is not None and nxt.lang == "text" else None)))
        for n, (kind, payload) in enumerate(todo):
            if kind == "sqlite3":
                counts["sqlite3"] += 1
                report, new = run_session(work, payload)
            else:
                if kind == "js":
                    if node_path is False:
                        node_path = ensure_better_sqlite3()
                        if node_path is None:
                            notes.append("NOTE: node or npm is missing: the js examples were not run")
                    if node_path is None:
                        counts["skipped"] += 1
                        continue
                counts[kind] += 1
                report, new = run_program(work, payload[0], payload[1], n, node_path)
            if report:
                failures.append(report)
                updates.extend(new)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        failures.append("readme: %s" % e)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for note in notes:
        print(note)
    for f in failures:
        print(f)
    print("readme: %d sqlite3 sessions, %d python and %d js examples checked, %d skipped, %d failed (%.1f s)" % (
        counts["sqlite3"], counts["python"], counts["js"], counts["skipped"], len(failures), time.time() - started))
    if update and updates:
        write_updates(readme, updates)
        print("readme: --update rewrote %d blocks of %s with what the examples printed; review the diff" % (
            len(updates), readme))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
