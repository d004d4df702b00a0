//! scratch
use trackly_mock::{Dataset, DatasetConfig};
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let t = std::time::Instant::now();
    let d = Dataset::generate(&DatasetConfig {
        contacts: n,
        ..Default::default()
    });
    eprintln!("generated {} in {:?}", d.len(), t.elapsed());
    let show: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    for i in 0..show.min(d.len()) {
        println!("{}", String::from_utf8_lossy(d.contact_json(i)));
    }
    let total: usize = (0..d.len()).map(|i| d.contact_json(i).len()).sum();
    eprintln!("avg bytes {}", total / d.len().max(1));
}
