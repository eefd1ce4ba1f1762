"""Shared by the CLI tests: run `tinypeft ...` in this process, write a JSONL data file."""
import json

from tinypeft.cli import main


def run(capsys, *argv):
    """(exit code, stdout, stderr) of `tinypeft argv...`, in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
