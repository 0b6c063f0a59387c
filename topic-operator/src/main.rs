//! Entry point of the Oxbow topic-operator. For now it only reports its version; later issues fill it.

fn main() {
    println!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
}
