//! The `jobmail` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    jobmail::cli::run(jobmail::cli::Cli::parse())
}
