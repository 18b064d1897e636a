fn main() {
    kiln_buildinfo::emit_code_hash();
}
