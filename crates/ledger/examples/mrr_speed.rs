use expansa_ledger::*;
fn main() {
    let n = 6_000_000u32;
    let inputs = ["99", "1188", "0", "10", "1", "249.90"];
    let t = std::time::Instant::now();
    for i in 0..n {
        let s = std::hint::black_box(inputs[(i % 6) as usize]);
        let b = s.as_bytes();
        let mut m = 0u64;
        let mut scale = 0u32;
        let mut point = false;
        for &c in b {
            if c == b'.' {
                point = true
            } else {
                m = m * 10 + (c - b'0') as u64;
                scale += point as u32;
            }
        }
        std::hint::black_box(Decimal::from_i128_with_scale(m as i128, scale));
    }
    println!("from_i128_with_scale path {:?}", t.elapsed() / n);
    let t = std::time::Instant::now();
    for i in 0..n {
        let s = std::hint::black_box(inputs[(i % 6) as usize]);
        let b = s.as_bytes();
        let mut m = 0u64;
        let mut scale = 0u32;
        let mut point = false;
        for &c in b {
            if c == b'.' {
                point = true
            } else {
                m = m * 10 + (c - b'0') as u64;
                scale += point as u32;
            }
        }
        std::hint::black_box(Decimal::new(m as i64, scale));
    }
    println!("Decimal::new path {:?}", t.elapsed() / n);
    let t = std::time::Instant::now();
    for i in 0..n {
        let s = std::hint::black_box(inputs[(i % 6) as usize]);
        std::hint::black_box(SmallDecimal::new(std::hint::black_box(Decimal::new(
            s.len() as i64,
            1,
        ))));
    }
    println!("SmallDecimal::new {:?}", t.elapsed() / n);
}
