#![forbid(unsafe_code)]

use clap::Parser;
use lockstep::cli::{AuditCommand, Cli, Command};

/// jemalloc rather than the C library's allocator: glibc's per-thread arenas held about half of
/// the RSS at 10,000 ExternalSecrets, and musl's (the image's) is slow under contention.
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
