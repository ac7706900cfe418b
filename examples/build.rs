//! tavern's gRPC service and client code, from the service described here in Rust (the
//! messages are prost structs in tavern/worker.rs), so no protoc is needed.

fn main() {
    let method = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(input)
            .output_type(output)
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let worker = tonic_build::manual::Service::builder()
        .name("Worker")
        .package("tavern.v1")
        .method(method(
            "poll",
            "Poll",
            "crate::worker::PollRequest",
            "crate::worker::ActivityTask",
        ))
        .method(method(
            "complete",
            "Complete",
            "crate::worker::ActivityResult",
            "crate::worker::Ack",
        ))
        .build();
    tonic_build::manual::Builder::new().compile(&[worker]);
    println!("cargo:rerun-if-changed=build.rs");
}
