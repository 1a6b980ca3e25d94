// The migrations are embedded at compile time (`embed_migrations!`); without this, adding a
// migration directory does not rebuild the crate and a stale set of migrations is embedded.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
