use clap::Parser;

fn main() -> std::process::ExitCode {
    helio::run(helio::cli::Cli::parse())
}
