//! Signs a CTS download tree as CTS would: hourly digests for every service
//! folder, chained and signed, written beside the trace files. It made the
//! signed samples and signs the benchmark corpus; the tests sign with the
//! same code (tests/common/trail.rs).
//!
//! ```sh
//! cargo run --example sign_trail -- samples tests/keys/test-signing-key.pem > tests/keys/samples-signatures.txt
//! ```
//!
//! Prints the newest digest of each folder with its signature, as `verify
//! --signatures` reads them (a plain download loses a digest's own
//! signature: it is OBS metadata).

#[path = "../tests/common/trail.rs"]
mod trail;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, key] = args.as_slice() else {
        eprintln!("usage: sign_trail ROOT PRIVATE_KEY.pem   (ROOT holds CloudTraces/)");
        std::process::exit(2);
    };
    let pem = match std::fs::read_to_string(key) {
        Ok(pem) => pem,
        Err(err) => {
            eprintln!("sign_trail: {key}: {err}");
            std::process::exit(2);
        }
    };
    let signer = trail::Signer::from_pem(&pem);
    let written = trail::sign_tree(root.as_ref(), &signer, &|_| true);
    eprintln!("sign_trail: wrote {} digests", written.len());
    print!("{}", trail::newest_signatures(&written));
}
