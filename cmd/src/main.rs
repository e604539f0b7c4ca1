mod cr;
mod mounts;

fn main() {
    println!("ferry");
}
