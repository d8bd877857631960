"""Runs every `sql` block of docs/SCALE.md with DuckDB over the samples'
Parquet, and checks the first query's answer against the JSON lines of the
same scan. CI runs it (.ci/run) after `cargo test` built the binary:

    python3 tests/duckdb/check.py target/debug/cts-audit
"""

import collections
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import duckdb

ROOT = pathlib.Path(__file__).resolve().parents[2]


def scan(binary, *args):
    result = subprocess.run(
        [binary, "scan", "-q", "--all", *args, str(ROOT / "samples")],
        check=True,
        capture_output=True,
    )
    return result.stdout


def main(binary):
    queries = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "SCALE.md").read_text(), re.S)
    assert len(queries) >= 3, "docs/SCALE.md has fewer sql blocks than expected"
    with tempfile.TemporaryDirectory() as folder:
        verdicts = pathlib.Path(folder) / "verdicts"
        verdicts.mkdir()
        scan(binary, "--format", "parquet", "-o", str(verdicts / "samples.parquet"))
        records = [json.loads(line) for line in scan(binary, "--format", "jsonl").splitlines()]
        answers = []
        for query in queries:
            sql = query.replace("'verdicts/*.parquet'", f"'{verdicts}/*.parquet'")
            answers.append(duckdb.sql(sql).fetchall())
            print(f"{len(answers[-1])} rows: {query.splitlines()[0]}")

    # The first query, computed from the JSON lines.
    flagged = collections.Counter(
        r["user"] for r in records if r["severity"] in ("high", "critical")
    )
    expected = sorted(flagged.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    got = [(user, count) for user, count, _first, _last in answers[0]]
    assert got == expected, f"{got} != {expected}"
    # The second: every rule that fired, each as often as in the JSON lines.
    rules = collections.Counter(rule for r in records for rule in r["rules"])
    assert dict(answers[1]) == dict(rules), f"{answers[1]} != {rules}"
    # The third: failures with a code, all of them.
    failed = sum(1 for r in records if r["failed"] and r["error_code"] is not None)
    assert sum(row[2] for row in answers[2]) == failed
    print(f"duckdb {duckdb.__version__}: {len(queries)} queries of docs/SCALE.md agree with the JSON lines")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "debug" / "cts-audit"))
