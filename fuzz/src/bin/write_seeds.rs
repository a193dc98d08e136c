//! Writes each target's seeds into `DIR/<target>/seed-N`, for libFuzzer to
//! start from: `write-seeds DIR`.

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: write-seeds DIR");
        std::process::exit(2);
    };
    for (target, _) in doorstep_fuzz::TARGETS {
        let target_dir = std::path::Path::new(&dir).join(target);
        std::fs::create_dir_all(&target_dir)?;
        for (n, seed) in doorstep_fuzz::seeds::seeds(target).iter().enumerate() {
            std::fs::write(target_dir.join(format!("seed-{n}")), seed)?;
        }
    }
    Ok(())
}
