//! Generates a realistic CTS corpus of any size, reproducibly from a seed.
//!
//! ```sh
//! cargo run --release --example gen_corpus -- --records 2000000 --seed 7 --out corpus/big.jsonl
//! cargo run --release --example gen_corpus -- --records 50000 --form obs --out corpus/obs   # OBS tree of .json.gz
//! cargo run --release --example gen_corpus -- --records 900000 --billing-share 1.0 --out corpus/cbc.jsonl  # a CBC folder
//! cargo run --release --example sign_trail -- corpus/obs tests/keys/test-signing-key.pem > corpus/obs.sig  # its digests
//! ```
//!
//! Records follow ../shared/reference/cts-trace-format.md: most are other
//! services' traffic (ECS, EVS, OBS, IAM), about 8% are billing operations
//! drawn from the catalog, some fail with CBC.* codes, about 1% are
//! re-deliveries of an earlier trace, and `user` alternates between an
//! object and a JSON-encoded string as real exports do. `--billing-share F`
//! makes that share billing instead, 95 % of it reads (bill and balance
//! queries) as in a real CBC folder.

use flate2::{write::GzEncoder, Compression};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

const OTHER: &[(&str, &str, &str)] = &[
    ("createServer", "ECS", "ecs"),
    ("deleteServer", "ECS", "ecs"),
    ("deleteVolume", "EVS", "evs"),
    ("listAllMyBucket", "OBS", "bucket"),
    ("login", "IAM", "user"),
    ("createBucket", "OBS", "bucket"),
    ("updatePort", "VPC", "port"),
];
const USERS: &[(&str, &str)] = &[
    ("alice", "User"),
    ("bob", "User"),
    ("dev-bot", "User"),
    ("acme/ops-agency", "AssumedAgency"),
    ("idp1/carol", "ExternalUser"),
];
const CODES: &[&str] = &[
    "CBC.0151",
    "CBC.0100",
    "CBC.99005003",
    "CBC.99003651",
    "CBC.0999",
];

struct Args {
    records: u64,
    seed: u64,
    form: String,
    out: PathBuf,
    /// `--billing-share F`: this share of records are billing, 95 % of them
    /// reads (a CBC folder); `None` keeps the mixed corpus of earlier
    /// benchmarks (8 % billing, drawn from the whole catalog).
    billing_share: Option<f64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        records: 100_000,
        seed: 1,
        form: "jsonl".into(),
        out: PathBuf::from("corpus/corpus.jsonl"),
        billing_share: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--records" => args.records = value.parse().map_err(|e| format!("--records: {e}"))?,
            "--seed" => args.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            "--form" => args.form = value,
            "--out" => args.out = PathBuf::from(value),
            "--billing-share" => {
                let share: f64 = value.parse().map_err(|e| format!("--billing-share: {e}"))?;
                if !(0.0..=1.0).contains(&share) {
                    return Err("--billing-share takes a share from 0.0 to 1.0".into());
                }
                args.billing_share = Some(share);
            }
            _ => {
                return Err(format!(
                "unknown flag {flag}; use --records N --seed S --form jsonl|array|obs --out PATH [--billing-share F]"
            ))
            }
        }
    }
    Ok(args)
}

fn uuid(rng: &mut StdRng) -> String {
    let v: u128 = rng.random();
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The catalog split for `--billing-share`: reads (nothing to flag) and the rest.
struct Billing<'c> {
    all: Vec<&'c cts_audit::catalog::Entry>,
    reads: Vec<&'c cts_audit::catalog::Entry>,
    others: Vec<&'c cts_audit::catalog::Entry>,
    share: Option<f64>,
}

fn record(rng: &mut StdRng, time: i64, billing: &Billing<'_>) -> Value {
    let (user, user_type) = USERS[rng.random_range(0..USERS.len())];
    let (name, service, resource_type) = if rng.random_bool(billing.share.unwrap_or(0.08)) {
        let pool = match billing.share {
            None => &billing.all,
            // A CBC folder: mostly bill and balance queries, a few changes.
            Some(_) if rng.random_bool(0.95) => &billing.reads,
            Some(_) => &billing.others,
        };
        let e = pool[rng.random_range(0..pool.len())];
        (
            e.trace_name,
            if e.scope == cts_audit::catalog::Scope::Audit {
                "CTS"
            } else {
                "CBC"
            },
            e.resource_type,
        )
    } else {
        OTHER[rng.random_range(0..OTHER.len())]
    };
    let failed = rng.random_bool(0.03);
    let user_info = json!({"name": user, "id": format!("{:032x}", rng.random::<u128>()), "type": user_type,
        "principal_is_root_user": "false", "domain": {"name": "acme-finance", "id": "25fe78d91e0448f6a37f35427c6a420b"}});
    let request = json!({"server": {"name": "ecs-prod", "flavorRef": "sn3.small.1", "extendparam": {"chargingMode": "0"}}}).to_string();
    let response = if failed {
        json!({"error_code": CODES[rng.random_range(0..CODES.len())], "error_msg": "request failed"}).to_string()
    } else {
        json!({"job_id": format!("{:032x}", rng.random::<u128>()), "status": "SUCCESS", "error_code": null}).to_string()
    };
    json!({
        "trace_id": uuid(rng), "trace_name": name, "resource_type": resource_type,
        "trace_rating": if failed { "warning" } else { "normal" }, "api_version": "1.0",
        "source_ip": format!("203.0.113.{}", rng.random_range(1..255)), "domain_id": "25fe78d91e0448f6a37f35427c6a420b",
        "trace_type": if rng.random_bool(0.5) { "ConsoleAction" } else { "ApiCall" }, "service_type": service,
        "event_type": "system", "project_id": "07066c6fc90025a02f6dc01e105b286e", "read_only": false, "tracker_name": "system",
        "time": time, "record_time": time + 150, "resource_name": "res-01", "resource_id": uuid(rng),
        "user": if rng.random_bool(0.5) { user_info } else { Value::String(user_info.to_string()) },
        "code": if failed { json!(403) } else { json!(200) }, "request": request, "response": response, "message": "success", "request_id": "null"
    })
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("gen_corpus: {message}");
            std::process::exit(2);
        }
    };
    let all: Vec<_> = cts_audit::catalog::entries().iter().collect();
    let is_read = |e: &&cts_audit::catalog::Entry| e.severity <= cts_audit::catalog::Severity::Info;
    let billing = Billing {
        reads: all.iter().copied().filter(is_read).collect(),
        others: all.iter().copied().filter(|e| !is_read(e)).collect(),
        all,
        share: args.billing_share,
    };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut time = 1_718_000_000_000i64;
    let mut previous: Vec<Value> = Vec::new();
    let mut next = |rng: &mut StdRng| {
        time += rng.random_range(0..2_000);
        if !previous.is_empty() && rng.random_bool(0.01) {
            return previous[rng.random_range(0..previous.len())].clone(); // an at-least-once re-delivery
        }
        let r = record(rng, time, &billing);
        if previous.len() < 1024 {
            previous.push(r.clone());
        } else {
            let i = rng.random_range(0..previous.len());
            previous[i] = r.clone();
        }
        r
    };
    let result = match args.form.as_str() {
        "jsonl" | "array" => (|| -> std::io::Result<()> {
            if let Some(parent) = args.out.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&args.out)?);
            let array = args.form == "array";
            if array {
                out.write_all(b"[")?;
            }
            for i in 0..args.records {
                if array && i > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut out, &next(&mut rng))?;
                if !array {
                    out.write_all(b"\n")?;
                }
            }
            if array {
                out.write_all(b"]")?;
            }
            out.flush()
        })(),
        "obs" => (|| -> std::io::Result<()> {
            // 5-minute transfer files of a few hundred traces each, as OBS holds them.
            let per_file = 500;
            let mut written = 0;
            let mut file_no = 0u64;
            while written < args.records {
                let n = per_file.min(args.records - written);
                let traces: Vec<Value> = (0..n).map(|_| next(&mut rng)).collect();
                // 288 five-minute files a day; the name's time matches its day folder.
                let day = 1 + file_no / 288 % 28;
                let dir = args.out.join(format!(
                    "CloudTraces/ap-southeast-1/2024/06/{day:02}/system/CBC"
                ));
                std::fs::create_dir_all(&dir)?;
                let name = format!(
                    "cts_CloudTrace_ap-southeast-1_2024-06-{day:02}T{:02}-{:02}-00Z_{:016x}.json.gz",
                    file_no / 12 % 24,
                    file_no % 12 * 5,
                    file_no
                );
                let mut gz = GzEncoder::new(
                    std::fs::File::create(dir.join(name))?,
                    Compression::default(),
                );
                serde_json::to_writer(&mut gz, &traces)?;
                gz.finish()?;
                written += n;
                file_no += 1;
            }
            Ok(())
        })(),
        other => {
            eprintln!("gen_corpus: unknown --form {other}; use jsonl, array or obs");
            std::process::exit(2);
        }
    };
    if let Err(err) = result {
        eprintln!("gen_corpus: {err}");
        std::process::exit(1);
    }
}
