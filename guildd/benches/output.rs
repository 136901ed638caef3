//! The output path's own cost per line: the splitter and the scalar parser over the
//! lines `bench/launch_and_capture.sh` prints (`line N of the output, loss: X`, which
//! end like a pair and are turned away), Keras progress lines (three pairs each) and
//! plain text. Best of 5 passes over 300,000 lines, in ns per line.
//!   cargo bench -p guildd --bench output

use std::time::Instant;

use guildd::runs::output::{LineSplitter, ScalarParser};

const LINES: usize = 300_000;

fn per_line(name: &str, text: &[u8]) {
    let mut best = f64::MAX;
    let mut scalars = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let mut splitter = LineSplitter::new();
        let mut parser = ScalarParser::new();
        let mut found = 0;
        splitter.feed(text, &mut |line| found += parser.parse(&line).len());
        best = best.min(start.elapsed().as_secs_f64());
        scalars = found;
    }
    println!("{name:<28} {:>7.1} ns/line  ({scalars} scalars)", best * 1e9 / LINES as f64);
}

fn main() {
    let mut printer = Vec::new();
    let mut keras = Vec::new();
    let mut plain = Vec::new();
    for i in 0..LINES {
        printer.extend_from_slice(format!("line {i} of the output, loss: {:.4}\n", i as f64 * 0.001).as_bytes());
        keras.extend_from_slice(
            format!("3/3 [==============================] - 1s 10ms/step - loss: 0.{i:04} - acc: 0.9000 - val_loss: 0.31\n")
                .as_bytes(),
        );
        plain.extend_from_slice(format!("Epoch {i} done in 12.5 seconds, nothing to see\n").as_bytes());
    }
    per_line("printer (no scalars)", &printer);
    per_line("keras (3 scalars a line)", &keras);
    per_line("plain text", &plain);
}
