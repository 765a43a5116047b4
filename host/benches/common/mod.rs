//! What the benchmarks share: the generated events, decoding them into batches, and CPU-time
//! medians.

use std::hint::black_box;
use std::time::Duration;
use weir::source::record::{Batch, Record, Timestamp};
use weir::source::sequence::Position;

const SECTIONS: [&str; 6] = [
    "Electronics",
    "Beauty-Products",
    "Home-Decor",
    "Books",
    "Garden",
    "Toys & Games",
];

/// Median of several runs' CPU time, after a warm-up.
pub(crate) fn measure(mut run: impl FnMut() -> usize) -> Duration {
    black_box(run());
    let mut times: Vec<Duration> = (0..9)
        .map(|_| {
            let start = cpu_time();
            black_box(run());
            cpu_time() - start
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// CPU time of the whole process (every thread: the pipeline's blocking tasks too). Unlike
/// wall-clock time it does not count the moments a busy machine gives the core to others.
pub(crate) fn cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the process CPU clock is readable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Events like the seed samples: ~1 KB, six sections, event times over two days.
pub(crate) fn generate(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 1100);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let section = SECTIONS[(state % 6) as usize];
        let seconds = 1_700_000_000 + (state >> 8) % (2 * 86_400);
        let time = Timestamp::from_unix_millis(seconds as i64 * 1000);
        let event = format!(
            r#"{{"metadata":{{"uuid":"{i:08x}-{state:016x}","section":"{section}","event_time":"{time}"}},"payload":{{"userid":"{}","email_id":"user{i}@example.com","contact":"81465112","session_time":"2.3","legacy_account":"nan","membership_status":"active","is_cart_empty":"False","sys_type":"PC windows xyz","menuitem":[{{"value":"New","onclick":"CreateNewDoc()"}},{{"value":"Open","onclick":"OpenDoc()"}},{{"value":"Close","onclick":"CloseDoc()"}}],"text":{{"data":"Click Here","size":36,"style":"bold","name":"text1","hOffset":250,"vOffset":100,"alignment":"center","onMouseUp":"sun1.opacity = (sun1.opacity / 100) * 90;"}},"cart":[{{"sku":"{:x}","qty":{},"price":19.99}},{{"sku":"{:x}","qty":1,"price":5.0}}],"referrer":"https://shop.example.com/c/{section}?page={}","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","session":{{"id":"{state:x}","landing":"/home","pages_viewed":{},"consent":true,"ab_bucket":"B"}}}}}}"#,
            state % 100_000,
            state >> 20,
            state % 5 + 1,
            state >> 24,
            i % 40,
            state % 17
        );
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The decode stage for line-oriented input: NDJSON bytes to batches of records.
pub(crate) fn decode(ndjson: &[u8], batch: usize) -> Vec<Batch> {
    let arrival = Timestamp::from_unix_millis(1_700_000_000_000);
    let records: Vec<Record> = ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            Record::new(
                line.to_vec(),
                "bench".into(),
                Position::from_index(i as u64 + 1),
                arrival,
            )
        })
        .collect();
    records
        .chunks(batch)
        .map(|c| Batch {
            source: "bench".into(),
            stream: None,
            records: c.to_vec(),
        })
        .collect()
}
