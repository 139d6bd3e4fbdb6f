//! Compiles proto/push.proto (Loki's `logproto` push messages) with prost-build.
//!
//! protox is a pure-Rust protobuf compiler, so no `protoc` binary is needed on
//! the build machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/push.proto");
    let descriptors = protox::compile(["proto/push.proto"], ["proto"])?;
    prost_build::Config::new()
        // Lines and structured metadata decode as `Bytes` slices of the request
        // buffer: no allocation per entry on the push path.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
