"""Writes N retail-shaped events (~1 KB each, 6 sections, event times over 2 days) as NDJSON:
the same shape as the Rust benchmark's generator, for `scripts/bench`. Event times rise
through the file with a minute of jitter, as they arrive on a stream, so a batch covers a few
hours' partitions rather than all 288.

    python3 host/benches/generate_events.py 100000 target/bench/events.ndjson
"""

import json
import random
import sys
from datetime import datetime, timezone

SECTIONS = ["Electronics", "Beauty-Products", "Home-Decor", "Books", "Garden", "Toys & Games"]


def event(i: int, rng: random.Random, count: int = 1) -> dict:
    section = rng.choice(SECTIONS)
    seconds = 1_700_000_000 + i * 2 * 86_400 // count + rng.randrange(60)
    time = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = rng.getrandbits(64)
    return {
        "metadata": {"uuid": f"{i:08x}-{state:016x}", "section": section, "event_time": time},
        "payload": {
            "userid": str(state % 100_000),
            "email_id": f"user{i}@example.com",
            "contact": "81465112",
            "session_time": "2.3",
            "legacy_account": "nan",
            "membership_status": "active",
            "is_cart_empty": "False",
            "sys_type": "PC windows xyz",
            "menuitem": [
                {"value": "New", "onclick": "CreateNewDoc()"},
                {"value": "Open", "onclick": "OpenDoc()"},
                {"value": "Close", "onclick": "CloseDoc()"},
            ],
            "text": {"data": "Click Here", "size": 36, "style": "bold", "name": "text1",
                     "hOffset": 250, "vOffset": 100, "alignment": "center",
                     "onMouseUp": "sun1.opacity = (sun1.opacity / 100) * 90;"},
            "cart": [{"sku": f"{state >> 20:x}", "qty": state % 5 + 1, "price": 19.99},
                     {"sku": f"{state >> 24:x}", "qty": 1, "price": 5.0}],
            "referrer": f"https://shop.example.com/c/{section}?page={i % 40}",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                          "(KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "session": {"id": f"{state:x}", "landing": "/home", "pages_viewed": state % 17,
                        "consent": True, "ab_bucket": "B"},
        },
    }


def main() -> None:
    count, path = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(count):
            out.write(json.dumps(event(i, rng, count), separators=(",", ":")))
            out.write("\n")


if __name__ == "__main__":
    main()
