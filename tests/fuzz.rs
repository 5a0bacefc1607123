//! A bounded, deterministic fuzz run of every target in fuzz/targets.rs on
//! stable Rust: the committed corpus, then mutations of it (bit flips, byte
//! insertions and deletions, splices of tokens the parsers care about) from
//! a fixed seed, so a failure is reproducible. `cargo fuzz` (fuzz/README.md)
//! runs the same targets coverage-guided.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::PathBuf;

/// Mutations per corpus entry and target.
const ROUNDS: usize = 1500;

const TOKENS: &[&[u8]] = &[
    b"0000:",
    b"pci_",
    b"_",
    b":",
    b".",
    b"?",
    b"&",
    b"=",
    b"/",
    b"..",
    b"\0",
    b"\n",
    b"%00",
    b"\xff",
    b"root=",
    b"statedir=",
    b"policy=",
    b"modprobe=0",
    b"lockdown=1",
    b"test:///",
    b"nodedev:///system",
    b"vfio",
    b"kvm",
    b"xen",
    b"<capability type='mdev'>",
    b"</device>",
    b"&#x",
    b"<!--",
    b"vfio-pci",
    b"\x82\x01\x00",
    b"\x90\x04\x00RV\x01",
    b"\x91\x03\x00",
    b"\x78",
    b"e1000",
    b"class 0x",
    b"allow ",
    b"deny ",
    b"lockdown yes",
    b"\"driver\": ",
    b"\"iommu_group\": ",
    b"\"devices\": [",
    b"\"physfn\": ",
    b"null",
    b"-1",
    b"65536",
    b"ffff",
    b"0x",
    b"\x00\x00\x01\x00",
    b"\xff\xff\xff\xff",
    // uevents
    b"@/devices/",
    b"ACTION=",
    b"DEVPATH_OLD=",
    b"SUBSYSTEM=net",
    b"/net/",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let end = (at + rng.below(8)).min(v.len());
                v.drain(at.min(end)..end);
            }
            2 => v.insert(at, rng.next() as u8),
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            _ => {
                // Repeat a slice: long names, deep paths.
                let start = rng.below(v.len() + 1);
                let end = (start + rng.below(16)).min(v.len());
                let piece = v[start..end].to_vec();
                v.splice(at..at, piece.iter().copied().cycle().take(piece.len() * rng.below(8)));
            }
        }
    }
    v.truncate(16 * 1024);
    v
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut rng = Rng(0x6e6f_6465_6465_7600);
    let mut total = 0;
    for (name, target) in targets::TARGETS {
        let dir = corpus.join(name);
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no corpus for {name}");
        // Host descriptions are slow to build: fewer rounds for them.
        let rounds = if *name == "host_spec" { ROUNDS / 10 } else { ROUNDS };
        let mut runs = 0;
        for seed in &seeds {
            target(seed);
            runs += 1;
            for _ in 0..rounds {
                target(&mutate(&mut rng, seed));
                runs += 1;
            }
        }
        println!("fuzz {name}: {runs} executions");
        total += runs;
    }
    println!("fuzz: {total} executions in all");
}
