#!/usr/bin/env bash
# Prints the largest C++ files under src/ and tools/ (lines) and the longest functions, and fails
# when a file exceeds MAX_FILE_LINES (700) or a function MAX_FUNCTION_LINES (120).
#
# Functions are found by brace matching (Python's standard library only, no parser): comments,
# string and character literals and preprocessor lines are blanked, then every brace opened at
# namespace or class scope after a head that ends in a parameter list is a function body. Its
# length counts from the first line of its head to its closing brace.
#
#   scripts/check_sizes.sh [--top N] [PATH...]     (default: src tools)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" - "$@" <<'EOF'
import os
import re
import subprocess
import sys

MAX_FILE = int(os.environ.get("MAX_FILE_LINES", "700"))
MAX_FUNCTION = int(os.environ.get("MAX_FUNCTION_LINES", "120"))

args = sys.argv[1:]
top = 15
if len(args) >= 2 and args[0] == "--top":
    top = int(args[1])
    args = args[2:]
roots = args or ["src", "tools"]

# Tracked files and new ones git does not ignore.
listed = subprocess.run(
    ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *roots],
    check=True, capture_output=True, text=True).stdout.split()
files = sorted({f for f in listed if f.endswith((".cc", ".h", ".cu")) and os.path.isfile(f)})


def blank(text):
    """The text with comments, literals and preprocessor lines replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if line_start and c == "#":
            # A directive, with its continuation lines.
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        line_start = False
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                out.append(" ")
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"' and re.search(r'(?:^|[^A-Za-z0-9_])(?:u8|u|U|L)?R$', text[max(0, i - 3):i]):
            m = re.match(r'"([^(\s]{0,16})\(', text[i:])
            close = ")" + (m.group(1) if m else "") + '"'
            end = text.find(close, i + 1)
            end = n if end < 0 else end + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"' or (c == "'" and not digit_separator(text, i)):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def digit_separator(text, i):
    """Whether the quote at i separates digits (10'000) rather than opening a character literal."""
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_'."):
        j -= 1
    token = text[j:i]
    return bool(token) and token[0].isdigit()


CONTROL = {"if", "for", "while", "switch", "catch", "do", "else", "try", "return"}


def outside_brackets(text):
    """The text without what parentheses and square brackets enclose."""
    out, depth = [], 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def kind_of(head):
    """What a brace opens, from the text before it: 'container', 'function' or 'other'."""
    h = " ".join(head.split())
    h = re.sub(r"^template\s*<.*?>\s*(?=[A-Za-z_~\[])", "", h)  # a template head (one level)
    if not h:
        return "other"
    if re.search(r"\b(class|struct|union|enum|namespace|extern)\b[^()]*$", h):
        return "container"
    if ")" not in h:
        return "other"
    first = re.match(r"[A-Za-z_]\w*", h)
    if first and first.group(0) in CONTROL:
        return "other"
    top_level = re.sub(r"operator\s*(\(\)|[^\s(]+)", "operator", h)
    if "=" in re.sub(r"(<=|>=|==|!=)", "", outside_brackets(top_level)):
        return "other"  # an initializer: a lambda or a braced value
    # A parameter list, then qualifiers, a trailing return type or an initializer list.
    return "function"


def functions(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    code = blank(text)
    line_of = []
    line = 1
    for ch in code:
        line_of.append(line)
        if ch == "\n":
            line += 1
    found = []
    stack = []  # per open brace: (kind, first line, name)
    head_start = 0
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == ";":
            head_start = i + 1
        elif c == "{":
            in_scope = not stack or stack[-1][0] == "container"
            head = code[head_start:i]
            label = re.match(r"\s*(public|private|protected)\s*:(?!:)", head)
            if label:  # an access label before a member
                head_start += label.end()
                head = code[head_start:i]
            k = kind_of(head) if in_scope else "nested"
            stripped = head.strip()
            # A brace initializer in a constructor's initializer list (`: a_{x}`): part of the head.
            if k == "other" and in_scope and re.search(r"\)\s*(noexcept\s*)?:\s*[^;]*[\w>]\s*$", stripped):
                depth, j = 1, i + 1
                while j < n and depth:
                    depth += {"{": 1, "}": -1}.get(code[j], 0)
                    j += 1
                i = j
                continue
            if k == "function":
                name_m = re.findall(r"([~\w:<>=!+\-*/&|\[\]]+)\s*\(", " ".join(stripped.split()))
                name = name_m[0] if name_m else "?"
                if name in ("operator",) and len(name_m) > 1:
                    name = "operator" + name_m[1]
                start_line = line_of[head_start + (len(head) - len(head.lstrip()))]
                stack.append(("function", start_line, name))
            else:
                stack.append((k, 0, ""))
            head_start = i + 1
        elif c == "}":
            if stack:
                k, start_line, name = stack.pop()
                if k == "function":
                    found.append((line_of[i] - start_line + 1, path, start_line, name))
            head_start = i + 1
        i += 1
    return found


sizes = []
all_functions = []
for f in files:
    with open(f, encoding="utf-8", errors="replace") as fh:
        sizes.append((sum(1 for _ in fh), f))
    all_functions.extend(functions(f))

sizes.sort(reverse=True)
all_functions.sort(key=lambda x: (-x[0], x[1], x[2]))
print(f"check_sizes: {len(files)} files under {' '.join(roots)}; largest (lines):")
for lines, f in sizes[:top]:
    print(f"  {lines:6d}  {f}{'   <-- over ' + str(MAX_FILE) if lines > MAX_FILE else ''}")
print("check_sizes: longest functions (lines, head to closing brace):")
for lines, f, start, name in all_functions[:top]:
    flag = "   <-- over " + str(MAX_FUNCTION) if lines > MAX_FUNCTION else ""
    print(f"  {lines:6d}  {f}:{start} {name}{flag}")
big_files = [(l, f) for l, f in sizes if l > MAX_FILE]
long_functions = [x for x in all_functions if x[0] > MAX_FUNCTION]
for lines, f in big_files:
    print(f"check_sizes: {f}: {lines} lines, over the {MAX_FILE}-line limit by {lines - MAX_FILE}")
for lines, f, start, name in long_functions:
    print(f"check_sizes: {f}:{start}: {name} is {lines} lines, over the {MAX_FUNCTION}-line limit "
          f"by {lines - MAX_FUNCTION}")
if big_files or long_functions:
    sys.exit(1)
print(f"check_sizes: no file over {MAX_FILE} lines, no function over {MAX_FUNCTION} lines")
EOF
