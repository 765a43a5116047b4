"""Acceptance test: the lake as its downstream readers see it.

Ingests tests/data plus a generated set with `weir run` into local lakes (one per format), then
reads each lake with PySpark and DuckDB and checks, against counts computed here from the
inputs and tests/data/expected.json (never from the lake itself):

- `section`, `dt`, `hr` are discovered as partition columns (Spark: `basePath`; DuckDB:
  `hive_partitioning = true`), and every row is in the right partition;
- a filter on section and date prunes partitions (Spark's `PartitionFilters`, DuckDB's
  `File Filters` and scanned-file count) and returns exactly the expected rows;
- escaped values (`/`, `=`, `%`, control characters, non-ASCII) read back exactly;
- NDJSON reads natively with either codec (`.json.gz`, `.json.zst`);
- Parquet files with different metadata columns merge (`mergeSchema`, `union_by_name`);
- `weir compact` keeps every row exactly once, and how long Spark takes to read one day
  before and after it (printed, not asserted: speed is measured, not tested);
- a partitioning change (the docs' "Changing the partitioning": retail, then retail without
  the hour, through a registry) leaves two tables that each read whole with pruning and
  together hold every record, and after `weir repartition --remove-old` one table holds them
  all, each once.

One Spark session serves the whole run: it takes 10-20 s to start.

Run by scripts/test: `read_lake.py --weir target/release/weir --wasm .../retail.wasm
--daily-wasm .../retail_daily.wasm --work target/acceptance`.
"""

import argparse
import collections
import datetime
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
INPUTS = ["seed", "valid", "invalid", "events.ndjson"]

# The generated set: one day (DAY) with many small objects to compact, and a second day.
DAY, OTHER_DAY = "2026-11-20", "2026-11-21"
# Partition values that need escaping or are not ASCII, next to plain ones.
SECTIONS = ["Electronics", "Home-Decor", "Toys/Games", "a=b", "100%", "Café", "日本語", "x%2Fy"]
GENERATED = 4000
BATCH_SIZE = 100
HIVE_DEFAULT = "__HIVE_DEFAULT_PARTITION__"


def generate(path):
    """Writes the generated events; returns their (section, dt, hr, uuid) rows.

    The second half carries an extra metadata field, so Parquet batches differ in schema.
    """
    rng = random.Random(8)
    rows, lines = [], []
    for i in range(GENERATED):
        section = rng.choice(SECTIONS)
        day = DAY if i % 4 else OTHER_DAY
        hour = rng.randrange(24)
        stamp = f"{day}T{hour:02}:{rng.randrange(60):02}:{rng.randrange(60):02}Z"
        metadata = {"uuid": f"g{i}", "section": section, "event_time": stamp}
        if i >= GENERATED // 2:
            metadata["campaign"] = f"c{i % 7}"
        payload = {"userid": str(rng.randrange(10_000)), "items": rng.randrange(9),
                   "text": "lorem ipsum " * rng.randrange(1, 40)}
        lines.append(json.dumps({"metadata": metadata, "payload": payload}, ensure_ascii=False))
        rows.append((section, day, f"{hour:02}", f"g{i}"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def case_bytes(case):
    """The bytes of an expected.json case: a whole file, or one line of an NDJSON file."""
    name, _, line = case.partition(":")
    data = (DATA / name).read_bytes()
    return (DATA / name), (data.split(b"\n")[int(line) - 1] if line else data)


def expected_test_data_rows():
    """(section, dt, hr, uuid) of every accepted tests/data case.

    The section comes from the event itself (not from weir's escaped path); dt and hr from
    expected.json, with arrival-time placeholders filled from the file's modification time.
    """
    rows = []
    for case, expect in json.loads((DATA / "expected.json").read_text()).items():
        if expect["outcome"] != "accept":
            continue
        path, data = case_bytes(case)
        event = json.loads(data)
        arrival = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
        partition = (expect["partition"]
                     .replace("{arrival_dt}", arrival.strftime("%Y-%m-%d"))
                     .replace("{arrival_hr}", arrival.strftime("%H")))
        dt = re.search(r"/dt=([^/]*)/", partition).group(1)
        hr = re.search(r"/hr=([^/]*)$", partition).group(1)
        rows.append((event["metadata"]["section"], dt, hr, event["metadata"]["uuid"]))
    return rows


def as_read(rows):
    """Rows as a Hive reader sees them: a section spelled like Hive's null marker reads as null."""
    return [(None if s == HIVE_DEFAULT else s, dt, hr, uuid) for s, dt, hr, uuid in rows]


def weir(args, *rest):
    command = [args.weir, *rest]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def ingest(args, fmt, generated):
    lake, failed = args.work / f"lake-{fmt}", args.work / f"failed-{fmt}"
    inputs = [str(DATA / i) for i in INPUTS] + [str(generated)]
    print(weir(args, "run", "--input", *inputs, "--transform", args.wasm,
               "--lake", str(lake), "--failed", str(failed),
               "--batch-size", str(BATCH_SIZE), "--format", fmt))
    return lake


def table(lake):
    """The retail transform's table: a module from a file writes the table named after it."""
    return lake / "retail"


def objects(lake, ext):
    return sorted(p for p in lake.rglob(f"*.{ext}") if not p.name.startswith((".", "_")))


# --- the reads docs/lake.md's "Reading the lake" shows ------------------------------------------

def spark_session():
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("weir-acceptance")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "4")
             # Partition values stay strings: a section "007" must not become 7.
             .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# Each `weir run --format` value and the extension of its objects.
EXTENSIONS = {"json": "json.gz", "json-zstd": "json.zst", "parquet": "parquet"}


def spark_read(spark, lake, fmt):
    reader = spark.read.option("basePath", str(lake))
    if fmt == "parquet":
        return reader.option("mergeSchema", "true").parquet(f"{lake}/section=*")
    return reader.json(f"{lake}/section=*")


def duckdb_source(lake, fmt):
    if fmt == "parquet":
        return (f"read_parquet('{lake}/*/*/*/*.parquet', hive_partitioning = true, "
                "hive_types_autocast = false, union_by_name = true)")
    return (f"read_json('{lake}/*/*/*/*.{EXTENSIONS[fmt]}', format = 'newline_delimited', "
            "hive_partitioning = true, hive_types_autocast = false, union_by_name = true, "
            "sample_size = -1)")


# --- checks -----------------------------------------------------------------------------------

def check(condition, message):
    if not condition:
        sys.exit(f"FAILED: {message}")


def diff(got, want):
    missing, extra = want - got, got - want
    return f"missing {list(missing.items())[:5]}, unexpected {list(extra.items())[:5]}"


def check_spark(spark, lake, fmt, rows):
    from pyspark.sql import functions as F

    df = spark_read(spark, lake, fmt)
    check({"section", "dt", "hr"} <= set(df.columns), f"spark {fmt}: partition columns {df.columns}")
    check("_corrupt_record" not in df.columns, f"spark {fmt}: unparseable lines")
    if fmt == "parquet":
        check({"campaign", "uuid", "section"} <= set(df.schema["metadata"].dataType.names),
              f"spark {fmt}: merged metadata columns {df.schema['metadata']}")
    got = collections.Counter(
        (r["section"], r["dt"], r["hr"], r["uuid"])
        for r in df.select("section", "dt", "hr", F.col("metadata.uuid").alias("uuid")).collect())
    want = collections.Counter(as_read(rows))
    check(got == want, f"spark {fmt}: rows by partition differ: {diff(got, want)}")
    # Every escaped value reads back exactly as the event spelled it.
    moved = df.where(F.col("section").isNotNull() & (F.col("section") != F.col("metadata.section")))
    check(moved.count() == 0, f"spark {fmt}: sections read back differently")
    for section in ("Toys/Games", "a=b", "100%", "日本語"):
        query = df.where((F.col("section") == section) & (F.col("dt") == DAY))
        plan = query._jdf.queryExecution().executedPlan().toString()
        filters = re.search(r"PartitionFilters: \[([^\]]*)\]", plan)
        check(filters and "section" in filters.group(1) and "dt" in filters.group(1),
              f"spark {fmt}: no partition pruning in\n{plan}")
        uuids = sorted(r["uuid"] for r in query.select(F.col("metadata.uuid").alias("uuid")).collect())
        check(uuids == sorted(u for s, d, _, u in rows if s == section and d == DAY),
              f"spark {fmt}: filter on {section!r}, {DAY} returned the wrong rows")
    print(f"spark {fmt}: {len(rows)} rows in {len(want)} (partition, uuid) keys, pruning and escapes ok")


def check_duckdb(lake, fmt, rows):
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    source = duckdb_source(lake, fmt)
    got = collections.Counter(con.sql(
        f"SELECT section, dt, hr, metadata.uuid FROM {source}").fetchall())
    want = collections.Counter(as_read(rows))
    check(got == want, f"duckdb {fmt}: rows by partition differ: {diff(got, want)}")
    moved = con.sql(f"SELECT count(*) FROM {source} WHERE section <> metadata.section").fetchall()[0][0]
    check(moved == 0, f"duckdb {fmt}: sections read back differently")
    ext = EXTENSIONS[fmt]
    files = objects(lake, ext)
    for section in ("Toys/Games", "a=b", "100%", "日本語"):
        where = f"WHERE section = '{section}' AND dt = '{DAY}'"
        plan = con.sql(f"EXPLAIN SELECT metadata.uuid FROM {source} {where}").fetchall()[0][1]
        in_partition = [p for p in files
                        if p.parent.parent.parent.name == "section=" + escape(section)
                        and p.parent.parent.name == f"dt={DAY}"]
        scanning = f"Scanning Files: {len(in_partition)}/{len(files)}"
        check("File Filters" in plan and scanning in plan,
              f"duckdb {fmt}: expected pruning to {scanning} in\n{plan}")
        uuids = sorted(r[0] for r in con.sql(f"SELECT metadata.uuid FROM {source} {where}").fetchall())
        check(uuids == sorted(u for s, d, _, u in rows if s == section and d == DAY),
              f"duckdb {fmt}: filter on {section!r}, {DAY} returned the wrong rows")
    print(f"duckdb {fmt}: {len(rows)} rows, pruning ({scanning} for the last filter) and escapes ok")


def escape(value):
    """Hive's escaping of the few characters the generated sections use (the test's own copy)."""
    return "".join(f"%{ord(c):02X}" if c in '/=%' else c for c in value)


def time_one_day(spark, lake, fmt):
    """Seconds to list, read and aggregate one day (one run: the checks have already warmed the
    JVM and the page cache, and a before/after ratio of several times needs no median)."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    (spark_read(spark, lake, fmt).where(F.col("dt") == DAY)
     .groupBy("section").agg(F.count("metadata.uuid")).collect())
    return time.perf_counter() - started


def compact(args, lake, fmt, spark, rows):
    ext = EXTENSIONS[fmt]
    before_files = len(objects(lake, ext))
    before = time_one_day(spark, lake, fmt)
    # The lake root: compaction finds the partitions of every table under it.
    print(weir(args, "compact", "--lake", str(lake.parent), "--partition-older-than", "1h"))
    after_files = len(objects(lake, ext))
    check(after_files < before_files, f"compact {fmt}: {before_files} -> {after_files} objects")
    check_spark(spark, lake, fmt, rows)
    check_duckdb(lake, fmt, rows)
    after = time_one_day(spark, lake, fmt)
    print(f"compaction {fmt}: {before_files} -> {after_files} objects; Spark reads {DAY} in "
          f"{before:.2f} s before, {after:.2f} s after")


# --- a partitioning change ---------------------------------------------------------------------

def check_table(spark, root, columns, rows):
    """One table read whole by Spark and DuckDB, as docs/lake.md shows, with pruning on section
    and day. `rows` are (column values..., uuid)."""
    import duckdb
    from pyspark.sql import functions as F

    want = collections.Counter(rows)
    df = spark.read.option("basePath", str(root)).json(f"{root}/section=*")
    check(set(columns) <= set(df.columns), f"spark {root.name}: partition columns {df.columns}")
    got = collections.Counter(tuple(r) for r in df.select(
        *columns, F.col("metadata.uuid").alias("uuid")).collect())
    check(got == want, f"spark {root.name}: rows differ: {diff(got, want)}")
    query = df.where((F.col("section") == "a=b") & (F.col("dt") == DAY))
    plan = query._jdf.queryExecution().executedPlan().toString()
    filters = re.search(r"PartitionFilters: \[([^\]]*)\]", plan)
    check(filters and "section" in filters.group(1) and "dt" in filters.group(1),
          f"spark {root.name}: no partition pruning in\n{plan}")
    check(query.count() == sum(n for r, n in want.items() if r[0] == "a=b" and r[1] == DAY),
          f"spark {root.name}: the filter returned the wrong rows")
    glob = "/".join(["*"] * len(columns))
    source = (f"read_json('{root}/{glob}/*.json.gz', format = 'newline_delimited', "
              "hive_partitioning = true, hive_types_autocast = false, union_by_name = true)")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    got = collections.Counter(con.sql(
        f"SELECT {', '.join(columns)}, metadata.uuid FROM {source}").fetchall())
    check(got == want, f"duckdb {root.name}: rows differ: {diff(got, want)}")
    plan = con.sql(f"EXPLAIN SELECT count(*) FROM {source} "
                   f"WHERE section = 'a=b' AND dt = '{DAY}'").fetchall()[0][1]
    check("File Filters" in plan, f"duckdb {root.name}: no pruning in\n{plan}")
    print(f"table {root.name} ({', '.join(columns)}): {len(rows)} rows read whole by Spark and "
          "DuckDB, with pruning")


def change_the_partitioning(args, spark, rows):
    """docs/transforms.md's "Changing the partitioning", end to end, with the hour dropped."""
    work = args.work / "scheme"
    registry, lake, failed = work / "registry", work / "lake", work / "failed"
    lines = (args.work / "generated.ndjson").read_text(encoding="utf-8").splitlines(keepends=True)
    half = len(lines) // 2
    first, second = work / "first.ndjson", work / "second.ndjson"
    work.mkdir()
    first.write_text("".join(lines[:half]), encoding="utf-8")
    second.write_text("".join(lines[half:]), encoding="utf-8")
    common = ["--registry", str(registry), "--name", "retail"]
    ingest = ["run", "--registry", str(registry), "--transform", "retail",
              "--lake", str(lake), "--failed", str(failed), "--batch-size", str(BATCH_SIZE),
              "--input"]
    print(weir(args, "transform", "publish", *common, "--version", "v1", "--activate", args.wasm))
    print(weir(args, *ingest, str(first)))
    published = weir(args, "transform", "publish", *common, "--version", "v2", "--activate",
                     args.daily_wasm)
    print(published)
    check("NEW TABLE" in published, "publish says the new version writes a new table")
    print(weir(args, *ingest, str(second)))
    hourly = [(s, d, h, u) for s, d, h, u in rows[:half]]
    daily = [(s, d, u) for s, d, _, u in rows[half:]]
    check_table(spark, lake / "retail", ["section", "dt", "hr"], hourly)
    check_table(spark, lake / "retail_v2", ["section", "dt"], daily)
    tables = sorted(p.name for p in lake.iterdir() if not p.name.startswith("_"))
    check(tables == ["retail", "retail_v2"], f"the lake holds two tables: {tables}")
    print(weir(args, "repartition", "--registry", str(registry), "--transform", "retail",
               "--from", "retail", "--lake", str(lake), "--failed", str(failed), "--remove-old"))
    everything = [(s, d, u) for s, d, _, u in rows]
    check_table(spark, lake / "retail_v2", ["section", "dt"], everything)
    check(not objects(lake / "retail", "json.gz"), "the old table is removed, as asked")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weir", required=True)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--daily-wasm", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--formats", default=",".join(EXTENSIONS))
    parser.add_argument("--no-compact", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    generated = args.work / "generated.ndjson"
    rows = generate(generated) + expected_test_data_rows()
    spark = spark_session()
    for fmt in args.formats.split(","):
        lake = table(ingest(args, fmt, generated))
        check_spark(spark, lake, fmt, rows)
        check_duckdb(lake, fmt, rows)
        if not args.no_compact:
            compact(args, lake, fmt, spark, rows)
    change_the_partitioning(args, spark, rows[:GENERATED])
    spark.stop()
    print(f"acceptance: ok in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    main()
