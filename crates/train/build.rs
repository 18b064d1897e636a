fn main() {
    kiln_buildinfo::emit_code_hash();
    // The libraries the binary links, for the ML-BOM; burn's CUDA backend only with
    // `--features cuda`.
    kiln_buildinfo::dependencies::emit_dependencies(&[
        ("cuda", "burn-cuda"),
        ("cuda", "cubecl-cuda"),
    ]);
}
