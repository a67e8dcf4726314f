#!/usr/bin/env python3
"""Bash and zsh completions for the st-* tools, generated from each tool's --help.

  gen-completions.py OUT_DIR TOOL...   writes OUT_DIR/bash/NAME per tool and OUT_DIR/_st-tools (zsh)
  gen-completions.py --list TOOL       prints the tool's options, one "FLAGS<TAB>VALUE[<TAB>CHOICES]"
                                       line each (comma-separated; VALUE empty for a flag)

The option list is read from the "Options:" section CLI11 prints: a line indented by two spaces that
starts with '-' names the flags (-j,--threads), then the value's name when the option takes one
(with its choices: TEXT:{a,b}). Values that name files complete file names; choices complete.
"""
import os
import re
import subprocess
import sys

VALUE_NAME = re.compile(r"^[A-Z][A-Z0-9_]*(:\S+)?$")  # TEXT, N, INT:INT, TEXT:{a,b}; not "Excludes:"
NAME_COLUMN = 30  # CLI11's: a name that fits is padded to it, a longer one has its description below
FILE_VALUES = {"TEXT", "DIR", "OUT", "PATH", "FILE"}


def options(tool):
    """[[flags, value name or '', choices, description, repeatable]] from `tool --help`."""
    text = subprocess.run([tool, "--help"], capture_output=True, text=True, check=True).stdout
    result, in_options = [], False
    for line in text.splitlines():
        if re.match(r"^\S", line):
            in_options = line.startswith("Options:")
            continue
        if not in_options:
            continue
        if re.match(r"^  -", line):
            fits = len(line) > NAME_COLUMN and line[NAME_COLUMN - 1] == " "
            head, desc = (line[:NAME_COLUMN], line[NAME_COLUMN:]) if fits else (line, "")
            words = head.split()
            value = words[1] if len(words) > 1 and VALUE_NAME.match(words[1]) and words[1] != "REQUIRED" else ""
            choices = re.findall(r"[^{},]+", value.partition(":{")[2])
            repeatable = "..." in words
            result.append([words[0].split(","), value.partition(":")[0], choices, desc.strip(), repeatable])
        elif result and line.strip():  # the description continued on its own line
            result[-1][3] = (result[-1][3] + " " + line.strip()).strip()
    if not result:
        sys.exit(f"gen-completions.py: no options in '{tool} --help'")
    return result


def summary(desc):
    """The description's first clause, cut on a word boundary, for zsh's listing."""
    desc = re.split(r"; |\. ", desc)[0]
    return desc if len(desc) <= 60 else desc[:60].rsplit(" ", 1)[0] + "..."


def bash_script(name, opts):
    func = "_" + re.sub(r"\W", "_", name)
    flags = " ".join(f for o in opts for f in o[0])
    cases = "".join(f"    {'|'.join(fl)}) COMPREPLY=($(compgen -W '{' '.join(ch)}' -- \"$cur\")); return ;;\n"
                    for fl, _, ch, *_ in opts if ch)
    files = "|".join(f for fl, v, ch, *_ in opts if v in FILE_VALUES and not ch for f in fl) or "--"
    other = "|".join(f for fl, v, ch, *_ in opts if v and v not in FILE_VALUES and not ch for f in fl) or "--"
    return f"""# bash completion for {name} (generated from its --help by scripts/gen-completions.py)
{func}() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  case $prev in
{cases}    {other}) COMPREPLY=(); return ;;
    {files}) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W '{flags}' -- "$cur"))
  else
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -F {func} {name}
"""


def zsh_quote(text):
    return text.replace("\\", "\\\\").replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def zsh_specs(opts):
    specs = []
    for flags, value, choices, desc, repeatable in opts:
        desc = zsh_quote(summary(desc))
        action = "" if not value else f":{value}:" + (
            f"({' '.join(choices)})" if choices else "_files" if value in FILE_VALUES else " ")
        exclusive = "*" if repeatable else f"({' '.join(flags)})" if len(flags) > 1 else ""
        for f in flags:
            specs.append(f"'{exclusive}{f}[{desc}]{action}'")
    return specs


def zsh_script(tools):
    names = " ".join(name for name, _ in tools)
    cases = "".join(
        f"    {name})\n      _arguments -s \\\n        " + " \\\n        ".join(zsh_specs(opts) + ["'*:file:_files'"]) + " ;;\n"
        for name, opts in tools)
    return f"""#compdef {names}
# zsh completion for the st-tools (generated from their --help by scripts/gen-completions.py)
case $service in
{cases}esac
"""


def main(argv):
    if len(argv) == 3 and argv[1] == "--list":
        for flags, value, choices, *_ in options(argv[2]):
            print(",".join(flags) + "\t" + value + ("\t" + ",".join(choices) if choices else ""))
        return
    if len(argv) < 3:
        sys.exit(__doc__)
    out, tools = argv[1], [(os.path.basename(t), options(t)) for t in argv[2:]]
    os.makedirs(os.path.join(out, "bash"), exist_ok=True)
    for name, opts in tools:
        with open(os.path.join(out, "bash", name), "w") as f:
            f.write(bash_script(name, opts))
    with open(os.path.join(out, "_st-tools"), "w") as f:
        f.write(zsh_script(tools))


if __name__ == "__main__":
    main(sys.argv)
