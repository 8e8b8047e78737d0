//! The `reflow` binary: everything lives in the library; see `reflow::cli`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    reflow::cli::main()
}
