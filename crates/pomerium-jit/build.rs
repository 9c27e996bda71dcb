//! Release builds of the binary link the code a running service uses first
//! and together (`hot-code.ld`, made by `scripts/hot-code.sh`): the kernel
//! maps code in blocks of up to 64 KiB around each page touched, so code
//! spread over the whole binary keeps most of it resident, and the
//! instruction cache and TLB serve fewer pages under load.

fn main() {
    let script = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("hot-code.ld");
    println!("cargo::rerun-if-changed={}", script.display());
    println!("cargo::rerun-if-env-changed=POMERIUM_JIT_CODE_LAYOUT");
    // Debug builds (the tests) link faster without it; the layout changes
    // nothing but where functions sit. lld and GNU ld read the script; a
    // linker that does not (mold) needs POMERIUM_JIT_CODE_LAYOUT=off.
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let off = std::env::var("POMERIUM_JIT_CODE_LAYOUT").is_ok_and(|v| v == "off");
    if release && linux && !off {
        println!("cargo::rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
