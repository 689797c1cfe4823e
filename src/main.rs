//! The `fixbench` binary: parse the command line, run the command, map errors to exit codes.

use clap::Parser;
use fixbench::{cli, error};

fn main() {
    // Before any thread: the server's key is kept, and hidden from every process started.
    fixbench::telemetry::client::keep_api_key();
    let cli = cli::Cli::parse();
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            error::exit_code_for(&err)
        }
    };
    std::process::exit(code);
}
