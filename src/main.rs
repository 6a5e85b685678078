#![forbid(unsafe_code)]

use clap::Parser;
use lockstep::cli::{AuditCommand, Cli, Command};

/// jemalloc rather than the C library's allocator: with glibc's, lockstep held 114 MiB at 10,000
/// ExternalSecrets, with jemalloc about 90 MiB (BENCHMARKS.md, session 4); and the image (musl)
/// gets the same allocator as the measured build.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    lockstep::cli::init_tracing(&cli.log_format);
    match cli.command {
        Command::Crds(args) => lockstep::crdgen::run(&args),
        Command::Run(args) => lockstep::run::run(&args).await,
        Command::Audit(AuditCommand::Verify { file }) => match lockstep::audit::verify::file(&file)
        {
            Ok(summary) => {
                println!("{summary}");
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1)
            }
        },
    }
}
