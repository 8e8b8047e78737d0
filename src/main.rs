//! The `reflow` binary: everything lives in the library; see `reflow::cli`.

fn main() -> std::process::ExitCode {
    reflow::cli::main()
}
