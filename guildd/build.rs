fn main() {
    // sqlx::migrate! embeds these folders; rebuild when a migration changes.
    println!("cargo:rerun-if-changed=../migrations");
}
