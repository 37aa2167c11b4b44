#!/usr/bin/env bash
# Fresh-clone check (issue 11, run by make test): the repository is self-contained. It `git clone`s the committed
# HEAD of this repository into an empty temporary directory (mktemp -d: nothing beside the clone), runs
# `make demo` there under strace, and checks that
#   1. the demo succeeds, shows 42 chunks and prints the Ketanji Brown Jackson passage in full, and its output
#      is the standard output recorded in the clone's sql/walkthrough.expected;
#   2. make demo (the build of build/vecstore.so in the clone included) touches no path outside the clone except
#      system locations (/usr, /lib, /etc, /proc, /sys, /dev, /run, /var, the compiler's temporary files, the
#      directories of PATH where commands are looked up) and the Faiss cache (CACHE_DIR, default
#      ~/.cache/vecstore, or FAISS_PREFIX): every path given to a file system call (open, stat, access, exec,
#      ...; failed attempts too) is resolved against the calling process's working directory; nothing else
#      under the temporary directory and nothing named `shared` may appear at all;
#   3. `git grep` finds, in the cloned tree, no path to the shared folder beside the clone (`..` followed by
#      `/shared`) and no absolute path of a machine (one that starts with /work, /root, /home, /Users or /mnt
#      followed by a slash). The patterns below are written so that they do not match this file.
# It tests HEAD, not the working tree: uncommitted changes are not in the clone (commit them first).
# FRESH_CLONE_REV=<commit> tests another commit instead (e.g. main, to see the check fail).
# About 20-60 s with Faiss cached (the clone compiles the extension). Prints one line: what passed, or every
# reason it failed; details (demo output, strace log, paths outside the clone) stay in build/check_fresh_clone/.
set -u
cd "$(dirname "$0")/.."
src=$PWD
out=$src/build/check_fresh_clone
mkdir -p "$out"
rm -f "$out"/*
# A failure that makes the rest meaningless ends the check at once; the others are collected and printed
# together, on one line, at the end.
fail() { echo "check_fresh_clone: FAILED: $*"; exit 1; }
problems=()
problem() { problems+=("$*"); }
start=$SECONDS

command -v strace >/dev/null 2>&1 || fail "strace not found (make deps installs it)"
command -v python3 >/dev/null 2>&1 || fail "python3 not found (make deps installs it)"
rev=${FRESH_CLONE_REV:-HEAD}
sha=$(git rev-parse --verify -q "$rev^{commit}") || fail "$rev is not a commit of this repository"
note=""
[ "$rev" = HEAD ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] &&
  note=" (the working tree has uncommitted changes; they are not tested)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clone=$tmp/clone
git clone -q --no-checkout "$src" "$clone" >"$out/clone.log" 2>&1 &&
  git -C "$clone" checkout -q --detach "$sha" >>"$out/clone.log" 2>&1 ||
  fail "git clone of $rev into an empty directory failed (see $out/clone.log)"
[ -z "$(ls -A "$tmp" | grep -vx clone)" ] || fail "the temporary directory holds more than the clone"

# 3. No path of this machine or of the workplace in the tree.
if git -C "$clone" grep -n -I -E -e '\.\./shared' -e '(^|[^[:alnum:]_.~-])/(work|root|home|Users|mnt)/' \
     >"$out/grep.txt" 2>&1; then
  problem "the tree names a path outside the clone: $(head -n 1 "$out/grep.txt" | cut -c1-160)$( \
    [ "$(wc -l <"$out/grep.txt")" -gt 1 ] && echo " (and $(($(wc -l <"$out/grep.txt") - 1)) more in $out/grep.txt)")"
fi

# 1. make demo in the clone, traced. The environment of an enclosing make (its flags, jobserver, level) is left
# out, and so is OLDPWD (this repository; bash stats it when it starts); CACHE_DIR and FAISS_PREFIX given to an
# enclosing make are in the environment and reach the clone's make.
cache=${CACHE_DIR:-$HOME/.cache/vecstore}
(cd "$clone" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u OLDPWD \
   strace -f -qq -y -s 4096 -e trace=%file,chdir,fork,vfork,clone,clone3 -o "$out/strace.log" \
   make -s -j"$(nproc)" demo >"$out/demo.out" 2>"$out/demo.err")
rc=$?
[ $rc -eq 0 ] || fail "make demo failed in the fresh clone (exit $rc): $(grep -v '^make' "$out/demo.err" | tail -n 1 | cut -c1-200)"
grep -qE '^│ tests/data/state_of_the_union\.txt +│ [0-9]+ +│ 42 +│$' "$out/demo.out" ||
  problem "the demo does not show 42 chunks of tests/data/state_of_the_union.txt (output: $out/demo.out)"
for line in "Tonight. I call on the Senate to: Pass the Freedom to Vote Act." \
  "One of the most serious constitutional responsibilities a President has is nominating someone to serve on the United States Supreme Court." \
  "And I did that 4 days ago, when I nominated Circuit Court of Appeals Judge Ketanji Brown Jackson."; do
  if ! grep -qF "$line" "$out/demo.out"; then
    problem "the demo does not print the Ketanji Brown Jackson passage in full (missing: '${line:0:60}...')"
    break
  fi
done
sed '/^-- stderr --$/,$d' "$clone/sql/walkthrough.expected" >"$out/expected.out"
cmp -s "$out/expected.out" "$out/demo.out" ||
  problem "the demo's output differs from sql/walkthrough.expected (diff $out/expected.out $out/demo.out)"
[ ! -s "$out/demo.err" ] || problem "the demo wrote to stderr: $(head -n 1 "$out/demo.err" | cut -c1-200)"

# 2. Every path the traced processes named, resolved against their working directories.
python3 - "$out/strace.log" "$clone" "$tmp" "$cache" "${FAISS_PREFIX:-}" "$PATH" >"$out/outside.txt" <<'EOF'
import os, re, sys
log, clone, tmp, cache, prefix, path = sys.argv[1:7]
norm = os.path.normpath
system = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/run",
          "/var", "/selinux"]
# The temporary directory of the system (where mktemp made ours) holds the compiler's temporary files (cc*).
tmpbase = os.path.dirname(tmp)
def temporary(p):
    return p in (tmpbase, "/tmp") or (os.path.dirname(p) == tmpbase and os.path.basename(p).startswith("cc"))
# The directories of PATH are where the environment keeps its tools: the shell and make look commands up there.
allowed = [clone, cache] + ([prefix] if prefix else []) + [norm(d) for d in path.split(":") if d.startswith("/")]
# dpkg's own per-user configuration: read by the Makefile's package check (dpkg -s) when the package list changed.
allowed.append(os.path.join(os.path.expanduser("~"), ".dpkg.cfg"))
def under(p, d):
    return p == d or p.startswith(d.rstrip("/") + "/")
# Directories above the clone and the cache may be looked at (a stat while resolving a path), not what is in them.
ancestors = set()
for d in allowed:
    while d not in ("/", ""):
        d = os.path.dirname(d)
        ancestors.add(d)
cwd = {}
first = None
bad = {}
n = 0
line_re = re.compile(r'^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$')
for line in open(log, errors="replace"):
    m = line_re.match(line)
    if not m:
        continue
    pid, call, rest = m.group(1), m.group(2) or m.group(3), m.group(4)
    if first is None:
        first = pid
        cwd[pid] = clone
    here = cwd.get(pid, clone)
    if call in ("clone", "clone3", "fork", "vfork"):
        r = re.search(r'= (\d+)', rest)
        if r:
            cwd[r.group(1)] = here
        continue
    if m.group(2):  # the arguments were on the <unfinished ...> line
        continue
    # *at calls name their directory as dirfd</path> (strace -y); AT_FDCWD means the working directory.
    base = here
    d = re.match(r'(?:AT_FDCWD<([^>]*)>|AT_FDCWD|\d+<([^>]*)>),\s*', rest)
    if d and (d.group(1) or d.group(2)):
        base = d.group(1) or d.group(2)
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', rest)
    if call.startswith("execve"):
        strings = strings[:1]
    for s in strings:
        if s == "":
            continue
        p = norm(os.path.join(base, s))
        n += 1
        if call == "chdir" and re.search(r'= 0$', rest.strip()):
            cwd[pid] = p
        why = None
        if "shared" in p.split("/"):
            why = "named shared"
        elif under(p, tmp) and not under(p, clone) and p != tmp:
            why = "beside the clone"
        elif under(p, clone) or any(under(p, a) for a in allowed):
            continue
        elif p in ancestors or p == "/":
            continue
        elif any(under(p, s2) for s2 in system) or temporary(p):
            continue
        else:
            why = "outside the clone"
        bad.setdefault((why, p.replace(tmp, "<tmp>")), call)
for (why, p), call in sorted(bad.items()):
    print(f"{why}\t{call}\t{p}")
EOF
[ $? -eq 0 ] || fail "could not read the strace log $out/strace.log"
npaths=$(grep -c . "$out/outside.txt")
if [ "$npaths" -gt 0 ]; then
  first=$(head -n 1 "$out/outside.txt" | awk -F'\t' '{ print $3 " (" $2 ", " $1 ")" }')
  problem "make demo in a fresh clone touched $npaths path(s) outside the clone, e.g. $first; list: $out/outside.txt"
fi
nlines=$(wc -l <"$out/strace.log")
if [ ${#problems[@]} -gt 0 ]; then
  msg=${problems[0]}
  for p in "${problems[@]:1}"; do msg="$msg; also: $p"; done
  fail "$msg"
fi
rm -f "$out/strace.log"
echo "check_fresh_clone: ${rev} (${sha:0:7}) cloned alone: make demo shows 42 chunks and the Ketanji Brown Jackson" \
  "passage, matches sql/walkthrough.expected, touches nothing outside the clone but system and cache paths" \
  "($nlines traced calls), and the tree names no path outside it; $((SECONDS - start)) s$note"
