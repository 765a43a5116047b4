"""Cost per GB and event-to-lake latency of Weir, measured on the real pipeline.

For each traffic profile (events/s per shard, event size, sections touched) and mapping
settings (BatchSize, MaximumBatchingWindowInSeconds, the 6 MB payload cap,
ParallelizationFactor), this:

1. plays the producer and the event source mapping in simulated time: events arrive evenly;
   with KPL aggregation (--aggregate-ms) the producer packs the events of each buffering
   interval into one Kinesis record of at most --aggregate-max-bytes; with gzip frames
   (--gzip-ms) it compresses them into one record instead, its size measured by compressing
   the events for real; a lane's batch closes when
   it holds BatchSize Kinesis records, would pass the 6 MB invocation payload, or its window has
   run since its first record (ParallelizationFactor splits a shard into lanes by partition
   key). The payload counts what Lambda sends: each record's JSON envelope (event id, ARNs,
   sequence number: ~600 bytes) and its data in base64, a third larger than the data;
2. writes each batch as its own NDJSON file, event times equal to simulated arrival times, and
   runs `weir run` (the real transform and encoder) over them, one batch per file;
3. counts what it wrote (objects, bytes, partitions) and the CPU it used, and prices it.

What is measured: objects and bytes per batch, CPU per batch. What is assumed (and printed):
S3 latency per round trip, a warm function (its ledger cached: 1 ledger PUT per invocation,
the open, which commits the batch before, or 2 with ParallelizationFactor > 1; no GET), the function's memory size, and the prices below. Run by scripts/bench-cost.
"""

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# us-east-1 list prices, as published on the AWS pricing pages (checked 2026-12-01; change them
# with the options when they move):
#   Lambda: $0.20 per 1M requests; $0.0000133334 per GB-second on arm64 (x86_64: 0.0000166667)
#   S3 Standard: $0.005 per 1,000 PUT/COPY/POST/LIST; $0.0004 per 1,000 GET
#   Firehose: $0.029 per GB ingested (first 500 TB/month); dynamic partitioning $0.020 per GB
#   processed plus $0.005 per 1,000 objects delivered; buffer interval at least 60 s.
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000133334,
    "s3_put": 0.005 / 1000,
    "firehose_gb": 0.029,
    "firehose_partitioning_gb": 0.020,
    "firehose_object": 0.005 / 1000,
}
GB = 1 << 30
MAX_PAYLOAD = 6 << 20
SECTIONS = ["Electronics", "Beauty-Products", "Home-Decor", "Books", "Garden", "Toys & Games",
            "Sports", "Grocery", "Fashion", "Automotive", "Music", "Pets"]
START = 1_764_547_200  # 2025-12-01T00:00:00Z, an hour boundary


# The padding's words: events carry text (names, paths, user agents) that compresses like prose,
# not like one repeated byte.
WORDS = [f"{a}{b}{c}" for a in "bcdfghklmnprstvw" for b in "aeiou" for c in "lnrstx"]


def event(i, arrival, size, sections):
    """Retail event `i` of about `size` bytes, its event time the arrival time."""
    rng = random.Random(i)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(arrival))
    body = {
        "metadata": {"uuid": f"{i:012x}", "section": rng.choice(SECTIONS[:sections]),
                     "event_time": stamp},
        "payload": {"userid": str(rng.randrange(100_000)), "page": "/cart", "pad": ""},
    }
    line = json.dumps(body, separators=(",", ":"))
    room = max(0, size - len(line) - 1)
    # Three-letter words and their spaces: enough of them, then cut to the byte.
    body["payload"]["pad"] = " ".join(rng.choices(WORDS, k=room // 4 + 1))[:room]
    return json.dumps(body, separators=(",", ":"))


def envelope_bytes(partition_key_bytes):
    """What Lambda's Kinesis event adds to each record's base64 data: its JSON, compact, with a
    56-digit sequence number (the size real ones have) and typical ARNs."""
    sequence = "4959033827149025660855969253836157109592157598913658" + "8898"
    record = {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k" * partition_key_bytes,
                    "sequenceNumber": sequence, "data": "",
                    "approximateArrivalTimestamp": 1764547200.123},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}", "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/weir-IngestFunctionRole-1A2B3C4D5E6F",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/weir-retail-events",
    }
    return len(json.dumps(record, separators=(",", ":"))) + 1  # and the comma between records


def produce(args, rate, seconds):
    """Kinesis records as the producer writes them: [(arrival in Kinesis, data bytes, [(event
    index, event time)])]. Without aggregation one event per record; with the KPL's, the events
    of each buffering interval in one record, flushed early when the next would pass
    `aggregate_max` (a KPL aggregate: 4-byte magic, protobuf, 16-byte MD5 trailer); with gzip
    frames, the events of each interval compressed into one record."""
    size, aggregate_s, aggregate_max = (args.event_bytes, args.aggregate_ms / 1000,
                                        args.aggregate_max_bytes)
    count = int(rate * seconds)
    times = [START + i / rate for i in range(count)]
    if args.gzip_ms > 0:
        return gzip_frames(args, times, args.gzip_ms / 1000)
    if aggregate_s <= 0:
        return [(t, size, [(i, t)]) for i, t in enumerate(times)]
    records, events, started, nbytes = [], [], 0.0, 0
    overhead, per_event = 20 + 2 + 38, size + 8  # framing and one key; per record: tags, lengths
    for i, t in enumerate(times):
        if events and (t - started >= aggregate_s or nbytes + per_event > aggregate_max):
            records.append((min(t, started + aggregate_s), nbytes, events))
            events = []
        if not events:
            started, nbytes = t, overhead
        events.append((i, t))
        nbytes += per_event
    if events:
        records.append((started + aggregate_s, nbytes, events))
    return records


def gzip_frames(args, times, interval):
    """One gzip frame per interval, as `weir send --gzip` writes them (each line an event),
    split when it would pass 1 MiB of raw events (a frame must stay below Kinesis' 1 MiB).
    The function's CPU to expand them is measured here (zlib; the host's zlib-rs is as fast)
    and kept in `args.expand_cpu`."""
    records, frame, started = [], [], 0.0
    def flush(close):
        text = "".join(event(i, t, args.event_bytes, args.sections) + "\n" for i, t in frame)
        blob = gzip.compress(text.encode(), 6)
        before = time.process_time()
        gzip.decompress(blob)
        args.expand_cpu += time.process_time() - before
        records.append((close, len(blob), frame))
    for i, t in enumerate(times):
        if frame and (t - started >= interval or len(frame) * args.event_bytes >= 1 << 20):
            flush(min(t, started + interval))
            frame = []
        if not frame:
            started = t
        frame.append((i, t))
    if frame:
        flush(started + interval)
    return records


def play_mapping(records, batch_size, window, lanes, envelope):
    """Batches as the mapping cuts them: [(close time, [(event index, event time)])]."""
    open_batches = [[] for _ in range(lanes)]
    payload = [0] * lanes
    opened_at = [0.0] * lanes
    batches = []
    rng = random.Random(7)
    for arrival, nbytes, events in records:
        lane = rng.randrange(lanes)
        batch = open_batches[lane]
        # The window closes a batch even when no record comes to find it full.
        if batch and arrival - opened_at[lane] >= window:
            batches.append((opened_at[lane] + window, batch))
            batch = open_batches[lane] = []
        record_payload = envelope + 4 * ((nbytes + 2) // 3)
        if batch and payload[lane] + record_payload > MAX_PAYLOAD:
            batches.append((arrival, batch))
            batch = open_batches[lane] = []
        if not batch:
            opened_at[lane], payload[lane] = arrival, 0
        batch.append(events)
        payload[lane] += record_payload
        if len(batch) >= batch_size:
            batches.append((arrival, batch))
            open_batches[lane] = []
    # Batches still open when the simulated time ends are left out: on a stream that goes on,
    # the next records would close them sooner than the window does, so counting them as
    # closed by the window would put a wait in the latency that a steady stream never sees.
    # Each batch as its events, in order.
    return [(close, [e for events in batch for e in events]) for close, batch in batches]


def run_pipeline(args, batches, work):
    """Runs `weir run` over the cuts: (lake objects, failed objects, bytes stored, lake
    partitions, CPU seconds, event bytes)."""
    inputs = work / "batches"
    inputs.mkdir()
    data_bytes = 0
    for n, (_, batch) in enumerate(batches):
        with open(inputs / f"{n:06}.ndjson", "w") as out:
            for i, arrival in batch:
                line = event(i, arrival, args.event_bytes, args.sections)
                data_bytes += len(line) + 1
                out.write(line + "\n")
    lake, failed = work / "lake", work / "failed"
    # Each file is its own source, so each batch stays the mapping's cut.
    files = sorted(str(f) for f in inputs.iterdir())
    cpu = weir_cpu(args, files, lake, failed)
    # Less what a process start costs (loading the module), which a warm function never pays.
    (work / "one.ndjson").write_text(event(0, START, args.event_bytes, args.sections) + "\n")
    cpu -= weir_cpu(args, [str(work / "one.ndjson")], work / "l0", work / "f0")
    counts, stored, partitions = {lake: 0, failed: 0}, 0, set()
    for root in (lake, failed):
        for path in root.rglob("*"):
            # Table descriptors (`_weir/`) are written once per process, not per batch.
            hidden = any(part.startswith("_") for part in path.relative_to(root).parts)
            if path.is_file() and not hidden:
                counts[root] += 1
                stored += path.stat().st_size
                if root == lake:
                    partitions.add(path.parent)
    return counts[lake], counts[failed], stored, len(partitions), cpu, data_bytes


def weir_cpu(args, inputs, lake, failed):
    """CPU seconds (user + system) of one `weir run` over `inputs`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [args.weir, "run", "--input", *inputs, "--transform", args.wasm,
         "--lake", str(lake), "--failed", str(failed), "--format", args.format,
         # The model cut the batches already: one file, one invocation, however large (gzip
         # frames expand past 10,000 events and 6 MB).
         "--batch-size", "1000000", "--batch-bytes", str(1 << 30)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(args, rate):
    # Enough simulated time for a fair sample, but at most ~200,000 events.
    seconds = min(args.hours * 3600, max(args.window * 20, 200_000 / rate))
    args.expand_cpu = 0.0
    records = produce(args, rate, seconds)
    batches = play_mapping(records, args.batch_size, args.window, args.parallelization,
                           envelope_bytes(args.partition_key_bytes))
    work = Path(tempfile.mkdtemp(prefix="weir-cost.", dir=args.scratch))
    try:
        lake_objects, failed_objects, stored, partitions, cpu, data_bytes = run_pipeline(
            args, batches, work)
        cpu += args.expand_cpu
    finally:
        shutil.rmtree(work, ignore_errors=True)
    invocations = len(batches)
    per_gb = GB / data_bytes
    # A warm invocation: the ledger's open (committing the previous batch), then the objects,
    # written at once. With more than one lane the commit is its own PUT after them.
    ledger_puts = 1 if args.parallelization == 1 else 2
    round_trips = 1 + ledger_puts
    duration = cpu / invocations + round_trips * args.s3_latency_ms / 1000
    latencies = [close - arrival + duration for close, batch in batches for _, arrival in batch]
    puts = lake_objects + failed_objects + ledger_puts * invocations
    gb_seconds = invocations * duration * args.memory_mb / 1024
    cost = {
        "s3": puts * per_gb * PRICES["s3_put"],
        "lambda_requests": invocations * per_gb * PRICES["lambda_request"],
        "lambda_compute": gb_seconds * per_gb * PRICES["lambda_gb_second"],
    }
    # Firehose at the lowest latency it allows, or this window if longer: one object per
    # active partition (each section) per buffer interval.
    interval = max(60.0, args.window)
    firehose_objects_per_gb = args.sections * GB / (interval * rate * args.event_bytes)
    firehose = (PRICES["firehose_gb"] + PRICES["firehose_partitioning_gb"]
                + firehose_objects_per_gb * PRICES["firehose_object"])
    # Event times are arrival times, so each partition is one section's hour.
    covered = max(close for close, _ in batches) - START  # the time the counted batches span
    lake_objects_per_hour = lake_objects * 3600 / covered
    return {
        "events_per_second": rate,
        "window_s": args.window,
        "batch_size": args.batch_size,
        "parallelization": args.parallelization,
        "format": args.format,
        "aggregate_ms": args.aggregate_ms,
        "gzip_ms": args.gzip_ms,
        "kinesis_bytes_per_event": round(sum(n for _, n, _ in records) / len(times_of(records)), 1),
        "kinesis_records_per_event": round(len(records) / sum(len(e) for _, _, e in records), 4),
        "mean_batch": round(sum(len(b) for _, b in batches) / invocations, 1),
        "s3_puts_per_gb": round(puts * per_gb),
        "lambda_requests_per_gb": round(invocations * per_gb),
        "gb_seconds_per_gb": round(gb_seconds * per_gb, 3),
        "cpu_ms_per_invocation": round(1000 * cpu / invocations, 2),
        "usd_per_gb": round(sum(cost.values()), 4),
        "usd_per_gb_parts": {k: round(v, 5) for k, v in cost.items()},
        "latency_p50_s": round(percentile(latencies, 0.50), 2),
        "latency_p99_s": round(percentile(latencies, 0.99), 2),
        "objects_per_partition_hour": round(lake_objects_per_hour / args.sections, 1),
        "stored_bytes_per_gb": round(stored * per_gb),
        "firehose_usd_per_gb": round(firehose, 4),
        "firehose_latency_s": interval,
    }


def times_of(records):
    return [t for _, _, events in records for _, t in events]


def table(rows):
    header = ("| events/s per shard | window | mean batch | S3 PUTs per GB | Lambda requests per GB "
              "| GB-s per GB | $ per GB | p50 / p99 latency | objects per partition-hour "
              "| Firehose $ per GB (latency) |")
    lines = [header, "| " + " | ".join(["---:"] * 10) + " |"]
    for r in rows:
        lines.append(
            f"| {r['events_per_second']:,g} | {r['window_s']:g} s | {r['mean_batch']:,.0f} "
            f"| {r['s3_puts_per_gb']:,} | {r['lambda_requests_per_gb']:,} | {r['gb_seconds_per_gb']} "
            f"| ${r['usd_per_gb']:.4f} | {r['latency_p50_s']} / {r['latency_p99_s']} s "
            f"| {r['objects_per_partition_hour']} | ${r['firehose_usd_per_gb']:.3f} ({r['firehose_latency_s']:g} s) |")
    return "\n".join(lines)


def producer(args):
    if args.gzip_ms:
        return f"gzip frames over {args.gzip_ms:g} ms"
    if args.aggregate_ms:
        return f"KPL aggregation over {args.aggregate_ms:g} ms"
    return "no aggregation"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weir", required=True)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--rate", default="10,100,1000",
                        help="events/s per shard, comma-separated (default 10,100,1000)")
    parser.add_argument("--event-bytes", type=int, default=850)
    parser.add_argument("--sections", type=int, default=8, help="sections the events touch")
    parser.add_argument("--batch-size", type=int, default=10_000, help="the mapping's BatchSize")
    parser.add_argument("--window", type=float, default=60,
                        help="MaximumBatchingWindowInSeconds (default 60)")
    parser.add_argument("--parallelization", type=int, default=1)
    parser.add_argument("--partition-key-bytes", type=int, default=36,
                        help="the producer's Kinesis partition keys (default 36, a UUID)")
    parser.add_argument("--aggregate-ms", type=float, default=0,
                        help="KPL aggregation: the producer's RecordMaxBufferedTime (0: none)")
    parser.add_argument("--aggregate-max-bytes", type=int, default=51_200,
                        help="KPL AggregationMaxSize (default 51,200, the KPL's)")
    parser.add_argument("--gzip-ms", type=float, default=0,
                        help="gzip frames (weir send --gzip): the producer's buffering time "
                             "(0: none)")
    parser.add_argument("--format", default="json", choices=["json", "json-zstd", "parquet"])
    parser.add_argument("--memory-mb", type=int, default=512, help="the function's memory")
    parser.add_argument("--s3-latency-ms", type=float, default=30,
                        help="assumed S3 round trip (default 30 ms)")
    parser.add_argument("--hours", type=float, default=1, help="simulated time at most")
    parser.add_argument("--scratch", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--json", help="also write the rows to this file")
    for name, value in PRICES.items():
        parser.add_argument(f"--price-{name.replace('_', '-')}", type=float, default=value)
    args = parser.parse_args()
    for name in PRICES:
        PRICES[name] = getattr(args, f"price_{name}")
    rows = [measure(args, float(rate)) for rate in args.rate.split(",")]
    ledger = "1 ledger PUT" if args.parallelization == 1 else "2 ledger PUTs"
    print(f"assumed: warm function ({ledger} per invocation), {args.memory_mb} MB, "
          f"S3 round trip {args.s3_latency_ms:g} ms, "
          f"{args.event_bytes}-byte events over {args.sections} sections, format {args.format}, "
          f"BatchSize {args.batch_size}, ParallelizationFactor {args.parallelization}, "
          f"{producer(args)}, "
          f"{envelope_bytes(args.partition_key_bytes)} bytes of Lambda event per Kinesis record")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
