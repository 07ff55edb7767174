use expansa_ledger::*;
use std::str::FromStr;
fn main() {
    let q = Decimal::from(2);
    let p = Decimal::from_str("249").unwrap();
    let d = Decimal::from_str("10").unwrap();
    let n = 2_000_000u32;
    let t = std::time::Instant::now();
    let mut acc = Money::ZERO;
    for i in 0..n {
        let m = line_mrr(
            std::hint::black_box(q),
            std::hint::black_box(p),
            std::hint::black_box(d),
            1 + (i % 2) * 11,
            Decimal::ONE,
        )
        .unwrap();
        acc += m;
    }
    println!("line_mrr {:?} per call", t.elapsed() / n);
    let t = std::time::Instant::now();
    let mut acc2 = Money::ZERO;
    for i in 0..n {
        let m = Money::from_scaled(std::hint::black_box(i as i128 * 12345)).unwrap();
        acc2 += m;
    }
    println!("from_scaled+add {:?} per call", t.elapsed() / n);
    let t = std::time::Instant::now();
    let mut x = Decimal::ZERO;
    for _ in 0..n {
        x = std::hint::black_box(Decimal::ONE_HUNDRED - std::hint::black_box(d));
    }
    println!("decimal sub {:?} per call", t.elapsed() / n);
    let t = std::time::Instant::now();
    for i in 0..n {
        std::hint::black_box(
            PackedMoney::new(Money::from_scaled(i as i128).unwrap())
                .unwrap()
                .get(),
        );
    }
    println!(
        "pack/unpack {:?} per call {}",
        t.elapsed() / n,
        acc + acc2 + Money::from_decimal(x)
    );
}
