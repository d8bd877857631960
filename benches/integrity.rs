//! `verify`'s parts: hashing stored bytes (MD5), one digest's signature
//! check, and a whole signed trail of 200 trace files verified end to end.
//! The 2,000-file comparison with `md5sum` is in docs/BENCHMARKS.md.

#[path = "../tests/common/trail.rs"]
mod trail;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cts_audit::integrity::{md5_hex, parse_signatures, verify, Digest, PublicKey, SignatureCheck};
use std::io::Write;

/// A trail of `files` gzip'd trace files, one every five minutes, signed.
fn signed_trail(files: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let record = r#"{"trace_id":"ID","trace_name":"payOrder","service_type":"CBC","resource_type":"cloudresouce","time":1718777931170,"trace_rating":"normal","trace_type":"ConsoleAction","code":200,"source_ip":"203.0.113.10","user":"{\"name\":\"alice\",\"domain\":{\"name\":\"acme\"}}"}"#;
    for n in 0..files {
        let minutes = n as i64 * 5;
        let time = chrono::DateTime::from_timestamp(1_718_755_200 + minutes * 60, 0).unwrap();
        let folder = dir.path().join(format!(
            "CloudTraces/ap-southeast-1/{}/system/CBC",
            time.format("%Y/%-m/%-d")
        ));
        std::fs::create_dir_all(&folder).unwrap();
        let records: Vec<String> = (0..200)
            .map(|i| record.replace("ID", &format!("{n}-{i}")))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(format!("[{}]", records.join(",")).as_bytes())
            .unwrap();
        let name = format!(
            "cts_CloudTrace_ap-southeast-1_{}_{n:016x}.json.gz",
            time.format("%Y-%m-%dT%H-%M-%SZ")
        );
        std::fs::write(folder.join(name), gz.finish().unwrap()).unwrap();
    }
    let written = trail::sign_tree(dir.path(), &trail::Signer::test_key(), &|_| true);
    (dir, trail::newest_signatures(&written))
}

fn integrity(c: &mut Criterion) {
    let mut group = c.benchmark_group("integrity");
    let block = vec![0x5au8; 1 << 20];
    group.throughput(Throughput::Bytes(block.len() as u64));
    group.bench_function("md5 of 1 MiB", |b| b.iter(|| md5_hex(&block)));

    let (dir, signatures) = signed_trail(200);
    let key = PublicKey::parse(include_bytes!("../tests/keys/test-public-key.pem")).unwrap();
    let signatures = parse_signatures(&signatures).unwrap();
    let paths = vec![dir.path().to_path_buf()];
    let report = verify(&paths, &key, &signatures);
    assert_eq!(report.stats.problems, 0);
    assert_eq!(report.stats.verified, 200);

    let digest_path = walkdir::WalkDir::new(dir.path())
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.path().to_string_lossy().contains("CloudTrace-Digest"))
        .unwrap()
        .into_path();
    let stored = std::fs::read(&digest_path).unwrap();
    let digest = Digest::read(&stored).unwrap();
    let message = digest.signed_message(&md5_hex(&stored));
    let signature = trail::Signer::test_key().sign(&message);
    group.throughput(Throughput::Elements(1));
    group.bench_function("read one digest and check its signature", |b| {
        b.iter(|| {
            let digest = Digest::read(&stored).unwrap();
            let message = digest.signed_message(&md5_hex(&stored));
            assert_eq!(
                key.check(message.as_bytes(), &signature),
                SignatureCheck::Valid
            );
        })
    });

    let bytes: u64 = walkdir::WalkDir::new(dir.path())
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(20);
    group.bench_function("verify a signed trail of 200 trace files", |b| {
        b.iter(|| verify(&paths, &key, &signatures))
    });
    group.finish();
}

criterion_group!(benches, integrity);
criterion_main!(benches);
