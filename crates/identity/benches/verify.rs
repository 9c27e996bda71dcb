//! Verification cost of a Pomerium ES256 assertion: cold (full signature and
//! claim checks, token cache disabled) and warm (verified-token cache hit).
//! Targets on the 2-core box: cold ≤ 60 µs, warm ≤ 2 µs.
//! Run: `cargo bench -p jit-identity -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
use jit_identity::{Verifier, VerifierConfig};

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for alg in [Alg::Es256, Alg::Rs256] {
        let signer = Signer::new(alg).unwrap();
        let server = runtime.block_on(JwksServer::start(signer.clone())).unwrap();
        let config = VerifierConfig::new(&server.url()).unwrap();
        let cold = Verifier::new(config.clone().with_token_cache_capacity(0)).unwrap();
        let warm = Verifier::new(config).unwrap();
        let token = signer.mint(&server.host(), &TestUser::admin());
        runtime.block_on(cold.refresh_keys()).unwrap();
        runtime.block_on(warm.verify(&token)).unwrap();

        c.bench_function(&format!("verify {alg} cold (signature + claims)"), |b| {
            b.iter(|| runtime.block_on(cold.verify(black_box(&token))).unwrap())
        });
        c.bench_function(&format!("verify {alg} warm (token cache hit)"), |b| {
            b.iter(|| runtime.block_on(warm.verify(black_box(&token))).unwrap())
        });
        runtime.block_on(server.shutdown()).unwrap();
    }
}

criterion_group!(benches, verify);
criterion_main!(benches);
